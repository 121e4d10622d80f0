"""Resolve requirements.txt as a plain Linux pip would, and judge it.

This machine's pip finds local CPU wheels (torch among them) and cached
builds, which hide what users get. This check ignores all pip configuration
(``--isolated``), resolves from PyPI only, for CPython 3.12 on manylinux
x86_64 with glibc 2.31 (Community Cloud: Debian 11, Python 3.12 by default),
wheels only, each package
exactly as pinned (``--no-deps``, as the README installs it), and fails when:

* a package has no wheel for that platform (it would compile at install);
* a package needs another that the set lacks (other than those that
  ``[tool.uv] override-dependencies`` in pyproject.toml leaves out on purpose);
* the set contains ``torch``, ``triton`` or any ``nvidia-*`` package (PyPI's
  Linux torch is the CUDA build, ~2.7 GB of downloads).

It prints each package with its download size, and the total.

    python scripts/check_linux_install.py [--python 3.12] [--platform manylinux_2_31_x86_64]

Exit code 0 when the set is clean, 1 when it is not, 2 when it cannot resolve.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPI = "https://pypi.org/simple"
FORBIDDEN = re.compile(r"^(torch|triton|nvidia-.*)$")


def platform_tags(platform: str) -> list[str]:
    """``manylinux_2_31_x86_64`` and every older glibc tag it can install
    (pip takes ``--platform`` literally), with the legacy aliases."""
    match = re.fullmatch(r"manylinux_2_(\d+)_(\w+)", platform)
    if match is None:
        return [platform]
    glibc, arch = int(match[1]), match[2]
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc, 4, -1)]
    aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    return tags + [f"{alias}_{arch}" for minor, alias in aliases.items() if minor <= glibc]


def _clean_env(home: str) -> dict[str, str]:
    """No ``PIP_*`` variables and an empty home (``--isolated`` ignores pip's
    config files), keeping PATH and the TLS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(HOME=home, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def resolve(requirements: list[str], python: str, platform: str) -> list[dict]:
    """pip's install report for ``requirements`` on that platform: one dict per
    package (``metadata.name``, ``metadata.version``, ``download_info.url``).

    Raises:
        subprocess.CalledProcessError: pip could not resolve (for example, a
            package with no wheel for the platform).
    """
    with tempfile.TemporaryDirectory() as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text("\n".join(requirements) + "\n")
        report = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--quiet",
             "--ignore-installed", "--no-deps", "--report", str(report),
             "--only-binary=:all:",
             *[arg for tag in platform_tags(platform) for arg in ("--platform", tag)],
             "--python-version", python, "--implementation", "cp",
             "--index-url", PYPI, "--target", str(Path(tmp) / "target"), "-r", str(reqs)],
            check=True, env=_clean_env(tmp))
        return json.loads(report.read_text())["install"]


def _environment(python: str, platform: str) -> dict[str, str]:
    machine = platform.rsplit("_", 1)[-1] if not platform.endswith("x86_64") else "x86_64"
    return {"python_version": python, "python_full_version": f"{python}.0",
            "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
            "platform_machine": machine, "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "extra": ""}


def left_out_on_purpose() -> set[str]:
    """Names that pyproject.toml's uv overrides remove (marker never true)."""
    import tomllib

    from packaging.requirements import Requirement

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    overrides = data.get("tool", {}).get("uv", {}).get("override-dependencies", [])
    return {canonical(Requirement(o).name) for o in overrides if "'never'" in o}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_requirements(packages: list[dict], python: str, platform: str) -> list[str]:
    """Requirements of the set's packages, on that platform, that no package of
    the set satisfies (by name and version)."""
    from packaging.requirements import Requirement

    env = _environment(python, platform)
    versions = {canonical(p["metadata"]["name"]): p["metadata"]["version"] for p in packages}
    skip = left_out_on_purpose()
    missing = []
    for package in packages:
        for line in package["metadata"].get("requires_dist") or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = canonical(req.name)
            if name in skip:
                continue
            if name not in versions or not req.specifier.contains(versions[name],
                                                                  prereleases=True):
                missing.append(f"{package['metadata']['name']} needs {line}")
    return missing


def size_of(url: str) -> int:
    """Bytes of one wheel, from a HEAD request to the index."""
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.headers.get("Content-Length", 0))


def locked_requirements(path: Path) -> list[str]:
    """The pins of requirements.txt, without comments and the project line."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines
            if line and not line.startswith("#") and line not in (".", "-e .")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", type=Path, default=ROOT / "requirements.txt")
    parser.add_argument("--python", default="3.12")
    parser.add_argument("--platform", default="manylinux_2_31_x86_64")
    args = parser.parse_args()
    try:
        packages = resolve(locked_requirements(args.requirements), args.python, args.platform)
    except subprocess.CalledProcessError:
        print(f"FAIL: pip could not resolve {args.requirements.name} from wheels alone for "
              f"CPython {args.python} on {args.platform} (see pip's message above).")
        return 2
    urls = [p["download_info"]["url"] for p in packages]
    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(size_of, urls))
    rows = sorted(zip(packages, sizes), key=lambda row: -row[1])
    for package, size in rows:
        meta = package["metadata"]
        print(f"{size / 1e6:9.1f} MB  {meta['name']}=={meta['version']}")
    total = sum(sizes)
    print(f"{total / 1e6:9.1f} MB  in all, {len(packages)} wheels, CPython {args.python}, "
          f"{args.platform}")
    bad = [p["metadata"]["name"] for p in packages
           if FORBIDDEN.match(p["metadata"]["name"].lower())]
    missing = missing_requirements(packages, args.python, args.platform)
    for line in missing:
        print(f"FAIL: {line}, which the set lacks")
    if missing:
        return 1
    if bad:
        print(f"FAIL: the runtime set contains {', '.join(sorted(bad))}: PyPI's Linux torch is "
              "the CUDA build.")
        return 1
    print("OK: wheels only; no torch, triton or nvidia-* package.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
