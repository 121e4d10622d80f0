"""Rebuild the retrieval evaluation corpus: Click's and Flask's HTML
documentation, as Debian ships it (python-click-doc, python-flask-doc; both
BSD-3-Clause), about 100 pages.

    python scripts/build_docs_corpus.py [--out benchmarks/corpus]

Needs ``apt-get`` and ``dpkg-deb`` (Debian, Ubuntu, the devcontainer and CI)
and the Debian archive, nothing else. Pages that are not documentation
(search, index of names, 404) and Sphinx's support folders are left out. The
questions are ``tests/data/retrieval_questions.jsonl``; their ``source`` is
``click/<page>`` or ``flask/<page>``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"click": "python-click-doc", "flask": "python-flask-doc"}
SKIP_PAGES = {"genindex.html", "search.html", "404.html", "py-modindex.html"}
SKIP_DIRS = {"_static", "_sources", "_images"}


def build(out: Path) -> dict[str, int]:
    """Download, unpack and copy the pages into ``out/<name>/``; returns
    pages per name.

    Raises:
        SystemExit: apt-get or dpkg-deb is missing or fails.
    """
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: this script needs Debian or Ubuntu.")
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # apt-get downloads as the _apt user where it can
        subprocess.run(["apt-get", "download", *PACKAGES.values()], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
        for name, package in PACKAGES.items():
            deb = next(work.glob(f"{package}_*.deb"))
            unpacked = work / name
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
            html = unpacked / "usr" / "share" / "doc" / package / "html"
            target = out / name
            shutil.rmtree(target, ignore_errors=True)
            counts[name] = 0
            for page in sorted(html.rglob("*.html")):
                relative = page.relative_to(html)
                if page.name in SKIP_PAGES or SKIP_DIRS & set(relative.parts):
                    continue
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(page, target / relative)
                counts[name] += 1
            print(f"{deb.name}: {counts[name]} pages -> {target}")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "corpus")
    args = parser.parse_args()
    counts = build(args.out)
    return 0 if all(counts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
