"""The Fine-tuning page: dataset sources with preview and checks, a real
training run with progress, the tuned model in the sidebar, side by side
and before/after."""

import pytest
from helpers import texts

PAGE = "pages/7_Fine-tuning.py"
pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMAPP_MODELS_PATH", str(tmp_path / "models"))
    monkeypatch.setenv("LLMAPP_DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite3")
    return tmp_path


def test_the_demo_dataset_is_previewed_and_checked(app, env):
    at = app(PAGE)
    assert not at.exception
    [preview] = [d for d in at.dataframe if "question" in d.value.columns]
    assert len(preview.value) == 95 and set(preview.value["source"]) == {
        "file: short_answer.jsonl"}
    assert preview.value["answer"][0].startswith("**In short:**")
    assert "95 usable examples" in texts(at)
    assert "No tuned model yet." in texts(at)
    train = next(b for b in at.button if b.label == "Train")
    assert not train.disabled  # the tune extra is installed for the tests


def test_feedback_becomes_a_dataset_and_an_empty_source_says_what_to_do(app, env):
    from llmapp.chat import ChatMessage, ChatStore
    from llmapp.feedback import UP, save_feedback
    from llmapp.storage import Database

    at = app(PAGE)
    at.radio(key="tune_source").set_value("Feedback from the chat pages").run()
    assert "Nothing to train on from this source yet" in texts(at)
    assert next(b for b in at.button if b.label == "Train").disabled
    database = Database(f"sqlite:///{env}/db.sqlite3")
    store = ChatStore()
    store.add_user("Name two fruits.")
    save_feedback(database, store, store.add(ChatMessage("assistant", "Apples and pears.")),
                  rating=UP)
    at.run()
    [preview] = [d for d in at.dataframe if "question" in d.value.columns]
    assert list(preview.value["source"]) == ["feedback: approved (chat)"]
    assert "too_few_examples" in texts(at)  # one example is not enough to train
    assert next(b for b in at.button if b.label == "Train").disabled
    database.close()


def test_the_upload_source_asks_for_a_file(app, env):
    at = app(PAGE)
    at.radio(key="tune_source").set_value("Upload a JSONL file").run()
    assert "Nothing to train on" in texts(at)


def test_a_trained_model_is_listed_picked_and_compared(app, env):
    from llmapp.settings import resolve
    from llmapp.tuning import jobs
    from llmapp.tuning.train import TrainConfig

    data = env / "small.jsonl"
    from helpers import ROOT

    lines = (ROOT / "data" / "tuning" / "short_answer.jsonl").read_text().splitlines(True)
    data.write_text("".join(lines[:16]))
    settings = resolve(environ={"LLMAPP_MODELS_PATH": str(env / "models")}, env_file={})
    assert jobs.start(settings, TrainConfig("tiny", epochs=1), data, 0.25).wait(600)[
        "status"] == "done"
    at = app(PAGE)
    assert not at.exception
    shown = texts(at)
    assert "**tiny** registered: 1 epoch, 2 steps" in shown
    assert "On **4 held-out examples**, base → tuned: in the trained form" in shown
    [models] = [d for d in at.dataframe if "model" in d.value.columns]
    assert list(models.value["model"]) == ["SmolLM2-135M + tiny"]
    at.sidebar.selectbox(key="_w_LLMAPP_LOCAL_ADAPTER").set_value("tiny").run()
    assert "SmolLM2-135M-Instruct (Q4_1 GGUF) + tiny" in texts(at)  # the sidebar's model line
    [ask] = [b for b in at.button if b.label == "Ask the base and the tuned model"]
    ask.click().run()
    assert not at.exception
    assert {"**Base**", "**SmolLM2-135M + tiny**"} <= {m.value for m in at.markdown}
    [compare] = [b for b in at.button if b.label.startswith("Compare on 4 held-out")]
    compare.click().run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert labels == ["In the reference's form", "Similarity to the reference", "Tokens/s"]
    [rows] = [d for d in at.dataframe if "reference" in d.value.columns]
    assert len(rows.value) == 4 and all(rows.value["tuned"])
