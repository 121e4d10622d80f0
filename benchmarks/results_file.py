"""Where the benchmark scripts write their figures: ``benchmarks/results/``
(git-ignored), one JSON file per script, read by people and by
``tests/test_benchmarks.py``."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def save(name: str, data: object, indent: int = 2) -> Path:
    """Write ``data`` as JSON to ``benchmarks/results/<name>``; return the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=indent))
    return path
