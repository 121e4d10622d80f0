"""Fine-tuning datasets from feedback, stored conversations, files and
distillation (llmapp.tuning.datasets), and llmapp tune distill."""

import json

import pytest
from helpers import run_cli

from llmapp.chat import ChatMessage, ChatStore
from llmapp.conversations import ConversationStore
from llmapp.feedback import DOWN, UP, save_feedback
from llmapp.tuning.datasets import (
    distill,
    from_conversations,
    from_feedback,
    from_file,
    write_jsonl,
)


def test_feedback_gives_approved_and_corrected_replies_only(database_url):
    db = ConversationStore(database_url)
    store = ChatStore()
    store.page = "simple"
    for question, reply, rating, correction in (
            ("Name a fruit.", "An apple.", UP, None),
            ("Name a colour.", "Seven.", DOWN, "Blue."),
            ("Name a planet.", "A cat.", DOWN, None)):
        store.add_user(question)
        message = store.add(ChatMessage("assistant", reply))
        save_feedback(db.database, store, message, rating=rating, correction=correction)
    rows = from_feedback(db.database)
    assert [(r.source, r.question, r.answer) for r in rows] == [
        ("feedback: approved (simple)", "Name a fruit.", "An apple."),
        ("feedback: corrected (simple)", "Name a colour.", "Blue.")]
    db.close()


def test_conversations_and_files_round_trip(database_url, tmp_path):
    db = ConversationStore(database_url)
    conv = db.create()
    store = db.load(conv.id)
    store.add_user("My name is Ada.")
    store.add(ChatMessage("assistant", "Hello, Ada."))
    db.create()  # an empty one gives nothing
    [row] = from_conversations(db)
    assert row.source == "conversation: My name is Ada." and row.answer == "Hello, Ada."
    path = write_jsonl([row], tmp_path / "out" / "set.jsonl")
    assert json.loads(path.read_text()) == row.example  # only the messages go to the file
    path.write_text(path.read_text() + "not json\n{}\n")
    [again] = from_file(path)
    assert again.example == row.example and again.source == "file: set.jsonl"
    db.close()


@pytest.mark.slow
def test_distillation_keeps_what_the_judge_passes(local_settings):
    seen = []
    kept = distill(["Name two fruits.", "What colour is the sky?"], local_settings,
                   local_settings, min_score=0, on_row=lambda i, row, why: seen.append(i))
    assert seen == [0, 1] and len(kept) == 2  # score >= 0: every graded answer
    assert all(r.source.startswith("distilled: relevance") and r.answer for r in kept)
    assert kept[0].example["messages"][0] == {"role": "user", "content": "Name two fruits."}
    none = distill(["Name two fruits."], local_settings, local_settings, min_score=4)
    assert none == []


@pytest.mark.slow
def test_llmapp_tune_distill(tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text("Name two fruits.\n\n" + json.dumps({"question": "Say hi."}) + "\n")
    out = tmp_path / "d.jsonl"
    done = run_cli("tune", "distill", str(questions), "--teacher", "local", "--min-score", "0",
                   "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "2 of 2 answers kept" in done.stdout and "[2/2] kept" in done.stderr
    assert len(out.read_text().splitlines()) == 2
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    bad = run_cli("tune", "distill", str(empty), "--teacher", "local", "--out", str(out))
    assert bad.returncode == 2 and "holds no questions" in bad.stderr
    wrong = run_cli("tune", "distill", str(questions), "--teacher", "gpt", "--out", str(out))
    assert wrong.returncode == 2 and "PROVIDER[:MODEL]" in wrong.stderr
