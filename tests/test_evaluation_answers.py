"""Answer evaluation: question sets, exact aggregation with a scripted judge,
a real judge over llama.cpp's HTTP server (malformed output included), runs
saved on SQLite and PostgreSQL, and the CLI."""

import json

import pytest
from helpers import ROOT, chroma_settings, compatible_settings, run_cli

from llmapp.evaluation import EvaluationError
from llmapp.evaluation.answers import (
    AnswerQuestion,
    Row,
    RunConfig,
    judge_settings,
    load_answer_set,
    parse_answer_set,
    run_answers,
    summarize,
)
from llmapp.evaluation.judge import JUDGE_PARAMS, METRICS, Judgement, judge, judge_group
from llmapp.evaluation.runs import comparison, list_runs, load_run, rows_csv, save_run
from llmapp.providers import GenerationParams
from llmapp.rag.chunking import ChunkSettings
from llmapp.rag.store import knowledge_base
from llmapp.storage import Database

SAMPLE = ROOT / "data" / "eval" / "handbook.jsonl"


@pytest.fixture(scope="module")
def handbook(tmp_path_factory):
    settings = chroma_settings(tmp_path_factory.mktemp("chroma"))
    kb = knowledge_base(settings)
    for path in sorted((ROOT / "data" / "handbook").iterdir()):
        kb.ingest("handbook", path.read_bytes(), path.name, ChunkSettings())
    return kb, settings


def test_the_sample_set_and_bad_sets():
    questions = load_answer_set(SAMPLE)
    assert len(questions) == 8 and all(q.reference and q.source for q in questions)
    with pytest.raises(EvaluationError, match="line 2: not JSON"):
        parse_answer_set('{"question": "a", "reference": "b"}\n{oops', "set.jsonl")
    with pytest.raises(EvaluationError, match='line 1: needs "question" and "reference"'):
        parse_answer_set('{"question": "a"}', "set.jsonl")
    with pytest.raises(EvaluationError, match="no questions"):
        parse_answer_set("\n\n", "set.jsonl")
    assert parse_answer_set('{"question": "q", "reference": "r"}')[0].source == ""


def scripted_grader(scores):
    """A judge at llmapp's boundary: metric -> the scores it gives, in turn;
    None gives an unscored judgement."""
    given = {m: list(s) for m, s in scores.items()}

    def one(metric):
        score = given[metric].pop(0)
        if score is None:
            return Judgement(metric, None, "Unscored: not JSON.", "{oops", 2)
        return Judgement(metric, score, f"{metric} is {score}.", json.dumps({"score": score}))

    def grade(_settings, metrics, answer, **_):
        return {m: one(m) for m in metrics}
    return grade


def test_a_run_aggregates_exactly(handbook):
    kb, settings = handbook
    questions = [AnswerQuestion("What is time to first token?", "The wait before anything "
                                "appears.", "01_roadmap.md"),
                 AnswerQuestion("How many rounds does chain of density take?", "Five.",
                                "02_prompting.txt"),
                 AnswerQuestion("What is the launch code?", "Not in the documents.",
                                "nowhere.md")]
    grader = scripted_grader({"correctness": [3, 1, None], "faithfulness": [2, 2, 0],
                              "relevance": [3, 3, 3], "readability": [1, 2, 3]})
    config = RunConfig("scripted", "local:m", "scripted", "handbook", {"k": 3}, "sys")
    seen = []
    run = run_answers(questions, kb, settings, settings, config, grader=grader,
                      on_row=lambda i, row: seen.append(i))
    assert seen == [0, 1, 2] and run.status == "complete"
    t = run.totals
    assert (t["correctness"], t["correctness_scored"], t["correctness_unscored"]) == (2.0, 2, 1)
    assert t["faithfulness"] == pytest.approx(4 / 3, abs=1e-3)
    assert (t["relevance"], t["readability"]) == (3.0, 2.0)
    assert t["hit@3"] == pytest.approx(2 / 3, abs=1e-3)  # the third source is nowhere
    assert run.rows[2].scores["correctness"] is None and run.rows[2].raw["correctness"] == "{oops"
    assert all(r.answer and len(r.sources) == 3 for r in run.rows)
    stopped = run_answers(questions, kb, settings, settings, config,
                          grader=scripted_grader({m: [1] * 3 for m in METRICS}),
                          should_stop=lambda: len(seen) >= 4, on_row=lambda i, r: seen.append(i))
    assert stopped.status == "stopped" and len(stopped.rows) == 1


def test_summaries_count_errors_and_flags():
    rows = [Row("q", "r", "s.md", answer="a", rank=1, scores={"correctness": 3}, flagged=True),
            Row("q2", "r", "s.md", error="Nothing in the collection is close enough."),
            Row("q3", "r", "", answer="b", scores={"correctness": 1}, flagged=False)]
    totals = summarize(rows, ["correctness"], 4)
    assert totals["correctness"] == 2.0 and totals["answered"] == 2
    assert totals["hit@4"] == 1.0  # only rows with a source and an answer count
    assert totals["flagged"] == 0.5


def test_metrics_without_context_are_graded_in_one_call(local_settings):
    grades = judge_group(local_settings, ["correctness", "faithfulness", "readability"],
                         "Time to first token is the wait before anything appears.",
                         question="What is TTFT?", reference="The wait before anything appears.",
                         context="[1] (a.md)\nTTFT is the wait before anything appears.")
    assert list(grades) == ["correctness", "faithfulness", "readability"]
    assert grades["correctness"].raw == grades["readability"].raw  # one reply for both
    assert grades["faithfulness"].raw != grades["correctness"].raw
    assert all(g.score is None or 0 <= g.score <= 3 for g in grades.values())


def test_a_real_judge_over_http_scores_and_marks_malformed_output_unscored(llama_server):
    settings = judge_settings(compatible_settings(llama_server), "openai-compatible")
    good = judge(settings, "relevance", "Time to first token is the wait before anything "
                 "appears.", question="What is time to first token?")
    assert good.scored and 0 <= good.score <= 3 and good.reason
    cut = judge(settings, "relevance", "An answer.", question="A question?",
                params=GenerationParams(temperature=0.0, max_tokens=4))
    assert cut.score is None and cut.attempts == 2
    assert cut.reason.startswith("Unscored") and cut.raw  # the raw text is kept
    assert JUDGE_PARAMS.max_tokens >= 64


def test_runs_are_saved_listed_compared_and_exported(database_url):
    db = Database(database_url)
    from llmapp.evaluation.answers import EvalRun

    def make(name, score):
        rows = [Row("q", "r", "a.md", answer="x", rank=1,
                    scores={m: score for m in METRICS}, reasons={m: "ok" for m in METRICS})]
        config = RunConfig(name, "local:m", "local:m", "handbook", {"k": 4}, "sys")
        return EvalRun(config, rows, summarize(rows, list(METRICS), 4))

    first, second = save_run(db, make("first", 1)), save_run(db, make("second", 3))
    assert [r.name for r in list_runs(db)] == ["second", "first"]
    again = load_run(db, first)
    assert again.rows[0].scores["correctness"] == 1 and again.config.metrics == tuple(METRICS)
    table = comparison([load_run(db, first), load_run(db, second)], list(METRICS))
    assert [(t["name"], t["correctness"]) for t in table] == [("first", 1.0), ("second", 3.0)]
    csv = rows_csv(again)
    assert csv.splitlines()[0].startswith("question,reference,source,answer,rank,correctness")
    with pytest.raises(EvaluationError, match="no evaluation run 999"):
        load_run(db, 999)
    db.close()


def test_llmapp_eval_answers_and_runs(handbook, tmp_path):
    _, settings = handbook
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(SAMPLE.read_text().splitlines()[:1]) + "\n")
    env = {"LLMAPP_CHROMA_PATH": settings.chroma_path,
           "LLMAPP_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    result = run_cli("eval", "answers", str(questions), "--collection", "handbook",
                     "--metrics", "relevance", "readability", "--json", **env)
    assert result.returncode == 0, result.stderr
    assert "its grades are noise" in result.stderr and "[1/1]" in result.stderr
    run = json.loads(result.stdout)
    assert run["config"]["judge"].startswith("local:") and len(run["rows"]) == 1
    assert set(run["rows"][0]["scores"]) == {"relevance", "readability"}
    listed = json.loads(run_cli("eval", "runs", "--json", **env).stdout)
    assert listed[0]["run"] == run["id"] and listed[0]["relevance"] == run["totals"]["relevance"]
    assert run_cli("eval", "answers", str(questions), "--collection", "nothing",
                   **env).returncode == 1
    assert run_cli("eval", "answers", str(questions), "--judge", "gpt", **env).returncode == 2
