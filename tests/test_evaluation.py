"""Retrieval metrics, the question-set loader and ``llmapp eval retrieval``
on a real collection of real HTML docs."""

import json
import math

import pytest
from helpers import ROOT
from helpers import run_cli as run

from llmapp.evaluation import EvaluationError
from llmapp.evaluation.retrieval import (
    RetrievalQuestion,
    evaluate,
    is_source,
    load_questions,
    score,
)


def test_rank_and_ndcg_by_hand():
    # relevant at ranks 2 and 4, the document has 3 chunks
    rank, ndcg = score(["x", "a/doc.html", "y", "doc.html", "z"], "doc.html", 5, 3)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert rank == 2 and ndcg == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert score(["x", "y"], "doc.html", 5, 1) == (None, 0.0)
    assert score(["doc.html"], "doc.html", 5, 1) == (1, 1.0)


def test_sources_match_by_path_suffix_only():
    assert is_source("corpus/click/options.html", "click/options.html")
    assert is_source("options.html", "options.html")
    assert not is_source("corpus/click/suboptions.html", "options.html")


def test_totals_over_a_question_set():
    questions = [RetrievalQuestion("q1", "a"), RetrievalQuestion("q2", "b"),
                 RetrievalQuestion("q3", "c")]
    ranked = {"q1": ["a", "x"], "q2": ["x", "b"], "q3": ["x", "y"]}
    report = evaluate(questions, ranked.get, 2, {"a": 1, "b": 1, "c": 1}, "t")
    assert report.hit == pytest.approx(2 / 3) and report.mrr == pytest.approx(0.5)
    assert [r.rank for r in report.results] == [1, 2, None]
    assert report.to_dict()["mrr@2"] == 0.5


@pytest.mark.parametrize("content,words", [
    ('{"question": "q"}\n', 'line 1: needs "question" and "source"'),
    ('{"question": "q", "source": "a"}\nnot json\n', "line 2: not JSON"),
    ("\n\n", "no questions"),
])
def test_bad_question_files_name_the_line(tmp_path, content, words):
    path = tmp_path / "q.jsonl"
    path.write_text(content)
    with pytest.raises(EvaluationError, match=words):
        load_questions(path)
    with pytest.raises(EvaluationError, match="cannot be read"):
        load_questions(tmp_path / "missing.jsonl")


def test_the_shipped_question_set_is_well_formed():
    questions = load_questions(ROOT / "tests" / "data" / "retrieval_questions.jsonl")
    assert len(questions) >= 60
    assert all(q.source.startswith(("click/", "flask/")) for q in questions)
    assert len({q.question for q in questions}) == len(questions)


@pytest.mark.slow
def test_eval_retrieval_command_on_real_html(tmp_path):
    env = {"LLMAPP_CHROMA_PATH": str(tmp_path / "chroma")}
    ingest = run("ingest", str(ROOT / "tests" / "data" / "html"), "--collection", "docs", "-q",
                 **env)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"question": "How do I limit the size of uploaded files?", '
        '"source": "flask-fileuploads.html"}\n'
        '{"question": "How do I make a --shout / --no-shout switch?", '
        '"source": "click-options.html"}\n')
    table = run("eval", "retrieval", str(questions), "--collection", "docs", "--k", "3",
                "--compare", "hybrid", "dense", "lexical", **env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "2 questions, collection 'docs', k=3"
    assert lines[1].split() == ["retriever", "hit@3", "MRR@3", "nDCG@3", "p50", "ms"]
    assert [line.split()[0] for line in lines[2:]] == ["hybrid", "dense", "lexical"]
    assert float(lines[2].split()[1]) == 1.0  # both found
    data = json.loads(run("eval", "retrieval", str(questions), "--collection", "docs",
                          "--json", **env).stdout)
    assert data[0]["name"] == "hybrid" and [q["rank"] for q in data[0]["questions"]] == [1, 1]
    bad = run("eval", "retrieval", str(tmp_path / "none.jsonl"), "--collection", "docs", **env)
    assert bad.returncode == 1 and bad.stderr.startswith("llmapp: ") and "cannot be read" in \
        bad.stderr and "Traceback" not in bad.stderr
    zero = run("eval", "retrieval", str(questions), "--k", "0", "--collection", "docs", **env)
    assert zero.returncode == 2 and "--k must be at least 1" in zero.stderr
