import pytest
from helpers import texts

from llmapp.evaluation.answers import EvalRun, Row, RunConfig, summarize
from llmapp.evaluation.judge import METRICS
from llmapp.evaluation.runs import list_runs, save_run
from llmapp.storage import Database

PAGE = "pages/9_Evaluation.py"
pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/db.sqlite3"
    monkeypatch.setenv("LLMAPP_DATABASE_URL", url)
    monkeypatch.setenv("LLMAPP_CHROMA_PATH", str(tmp_path / "chroma"))
    return Database(url)


def test_one_question_runs_end_to_end_and_is_saved(app, env):
    at = app("pages/9_Evaluation.py")
    assert not at.exception
    assert "its scores are noise" in texts(at)  # the bundled judge, said plainly
    at.number_input(key="eval_limit").set_value(1).run()
    [run] = [b for b in at.button if b.label == "Run the evaluation"]
    run.click().run()
    assert not at.exception
    assert any("saved: 1 questions" in s.value for s in at.success)
    [saved] = list_runs(env)
    assert saved.totals["questions"] == 1 and saved.status == "complete"
    [table] = [d for d in at.dataframe if "question" in d.value.columns]
    assert table.value["question"][0] == "What is time to first token?"
    assert {m for m in METRICS} <= set(table.value.columns)
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["CSV", "JSON"]


def test_two_runs_compare_with_charts(app, env):
    for name, score in (("baseline", 1), ("bigger k", 3)):
        rows = [Row("q", "r", "a.md", answer="x", rank=1, scores={m: score for m in METRICS},
                    reasons={m: "ok" for m in METRICS})]
        config = RunConfig(name, "local:m", "local:m", "handbook", {"k": 4}, "sys")
        save_run(env, EvalRun(config, rows, summarize(rows, list(METRICS), 4)))
    at = app(PAGE)
    assert not at.exception
    frames = [d.value for d in at.dataframe if "run" in d.value.columns]
    assert [list(f["name"]) for f in frames] == [["bigger k", "baseline"]]
    assert len(at.get("arrow_vega_lite_chart")) + len(at.get("vega_lite_chart")) >= 2


def test_a_new_run_is_the_one_shown(app, env):
    rows = [Row("q", "r", "a.md", answer="x", rank=1, scores={m: 2 for m in METRICS})]
    config = RunConfig("older", "local:m", "local:m", "handbook", {"k": 4}, "sys")
    save_run(env, EvalRun(config, rows, summarize(rows, list(METRICS), 4)))
    at = app(PAGE)
    assert at.selectbox(key="eval_run").value == 1
    at.number_input(key="eval_limit").set_value(1).run()
    [run] = [b for b in at.button if b.label == "Run the evaluation"]
    run.click().run()
    assert not at.exception and at.selectbox(key="eval_run").value == 2


def test_the_judge_is_checked_against_peoples_feedback(app, env):
    from llmapp.chat import ChatMessage, ChatStore
    from llmapp.feedback import DOWN, UP, save_feedback

    at = app(PAGE)
    assert "No feedback yet" in texts(at)
    store = ChatStore()
    store.add_user("Name two fruits.")
    good = store.add(ChatMessage("assistant", "Apples and pears."))
    store.add_user("What colour is the sky?")
    bad = store.add(ChatMessage("assistant", "Fruits."))
    save_feedback(env, store, good, rating=UP)
    save_feedback(env, store, bad, rating=DOWN, correction="Blue, on a clear day.")
    at.run()
    assert "2 replies have feedback: 2 rated, 1 corrected." in texts(at)
    [check] = [b for b in at.button if b.label == "Check the judge"]
    check.click().run()
    assert not at.exception
    labels = {m.label: m.value for m in at.metric}
    assert set(labels) == {"Agreement with thumbs", "Cohen's kappa", "Same verdict both ways"}
    [table] = [d for d in at.dataframe if "thumb" in d.value.columns]
    assert list(table.value["thumb"]) == ["up", "down"]
    assert all(score in (0, 1, 2, 3) for score in table.value["judge"])
    assert table.value["correction second / first"][0] == ""
    assert " / " in table.value["correction second / first"][1]


def test_stop_always_answers(app, env):
    """Found in a walk: Stop gave no feedback when no question had finished."""
    at = app(PAGE)
    [stop] = [b for b in at.button if b.label == "Stop the run"]
    stop.click().run()
    assert any(i.value.startswith("No run is going") for i in at.info)
    # a run interrupted before its first answer: its (empty) progress is in the session
    config = RunConfig("r", "local:m", "local:m", "handbook", {"k": 4}, "{question}")
    at.session_state["_llmapp_eval_partial"] = {"config": config, "rows": []}
    [stop] = [b for b in at.button if b.label == "Stop the run"]
    stop.click().run()
    shown = [i.value for i in at.info]
    assert any(s.startswith("The run was stopped before its first question") for s in shown)
    assert not any(s.startswith("No run is going") for s in shown)
    assert list_runs(env) == []
