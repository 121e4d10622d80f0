import json
import sqlite3
import subprocess
import sys

import pytest

from llmapp.chat import ChatMessage
from llmapp.conversations import ConversationStore, StoreError
from llmapp.export import ExportError, finetune_record, to_finetune_jsonl, to_json, to_markdown
from llmapp.streaming import ReplyStats


@pytest.fixture
def store(database_url):
    """A store on each kind of database: SQLite, then PostgreSQL."""
    s = ConversationStore(database_url)
    yield s
    s.close()


def chat(store, conv, *turns):
    for user, assistant in turns:
        store.append(conv.id, ChatMessage("user", user))
        store.append(conv.id, ChatMessage("assistant", assistant,
                                          stats=ReplyStats("local", "m", ttft_s=0.1, total_s=0.5,
                                                           prompt_tokens=9, completion_tokens=4)))


def test_create_append_list_and_title_from_the_first_message(store):
    a = store.create()
    chat(store, a, ("What is   RAG?", "Retrieval-augmented generation."))
    b = store.create("Kept title")
    chat(store, b, ("hi", "hello"))
    listed = store.list()
    assert [c.id for c in listed] == [b.id, a.id]  # most recent first
    assert listed[1].title == "What is RAG?" and listed[0].title == "Kept title"
    assert listed[1].messages == 2
    [user, reply] = store.messages(a.id)
    assert (user.role, user.content) == ("user", "What is   RAG?")
    assert reply.stats.ttft_s == 0.1 and reply.stats.completion_tokens == 4


def test_failed_replies_are_not_stored(store):
    conv = store.create()
    store.append(conv.id, ChatMessage("user", "hi"))
    store.append(conv.id, ChatMessage("assistant", "", error="boom"))
    assert [m.role for m in store.messages(conv.id)] == ["user"]


def test_rename_and_delete(store):
    conv = store.create()
    store.rename(conv.id, "  Trip planning ")
    assert store.get(conv.id).title == "Trip planning"
    with pytest.raises(StoreError, match="blank"):
        store.rename(conv.id, "   ")
    chat(store, conv, ("a", "b"))
    store.delete(conv.id)
    assert store.list() == [] and store.messages(conv.id) == []
    with pytest.raises(StoreError, match="no longer exists"):
        store.append(conv.id, ChatMessage("user", "late"))


def test_conversations_survive_a_process_restart(database_url):
    path = database_url
    code = ("import sys; from llmapp.conversations import ConversationStore as S; "
            "from llmapp.chat import ChatMessage as M; s = S(sys.argv[1]); c = s.create(); "
            "s.append(c.id, M('user', 'remember me')); s.append(c.id, M('assistant', 'ok')); "
            "s.save_summary_state(c.id, ('a summary', 2)); print(c.id)")
    made = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, check=True).stdout.strip()
    again = ConversationStore(path)
    assert [c.id for c in again.list()] == [made]
    assert [m.content for m in again.load(made)] == ["remember me", "ok"]
    assert again.summary_state(made) == ("a summary", 2)


def test_a_damaged_file_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "conversations.sqlite3"
    junk = b"this is not a database" * 100
    path.write_bytes(junk)
    with pytest.raises(StoreError) as err:
        ConversationStore(path)
    assert "damaged" in str(err.value) and "left untouched" in str(err.value)
    assert path.read_bytes() == junk


def test_a_locked_file_is_reported(tmp_path, monkeypatch):
    import llmapp.storage.database as database

    path = tmp_path / "c.sqlite3"
    monkeypatch.setattr(database, "LOCK_TIMEOUT_S", 0.2)
    store = ConversationStore(path)
    conv = store.create()
    other = sqlite3.connect(path)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked by another process"):
            store.append(conv.id, ChatMessage("user", "hi"))
    finally:
        other.rollback()
        other.close()
    store.append(conv.id, ChatMessage("user", "hi"))  # usable again once released
    assert len(store.messages(conv.id)) == 1


def test_exports(store):
    conv = store.create()
    chat(store, conv, ("Hello **there**", "Hi! | a | b |"), ("Bye", "Goodbye."))
    conv = store.get(conv.id)
    messages = store.messages(conv.id)
    md = to_markdown(conv, messages)
    assert md.startswith("# Hello **there**") and "## Assistant\n\nGoodbye." in md
    data = json.loads(to_json(conv, messages))
    assert data["id"] == conv.id and [x["role"] for x in data["messages"]] == [
        "user", "assistant", "user", "assistant"]
    assert data["messages"][1]["stats"]["prompt_tokens"] == 9


def test_finetune_jsonl_matches_the_chat_format(store):
    a, b, empty = store.create(), store.create(), store.create()
    chat(store, a, ("2+2?", "4"))
    chat(store, b, ("Capital of France?", "Paris"))
    store.append(b.id, ChatMessage("user", "unanswered"))
    text = to_finetune_jsonl([store.messages(c.id) for c in (a, b, empty)], "Be brief.")
    lines = text.splitlines()
    assert len(lines) == 2 and text.endswith("\n")
    for line in lines:
        record = json.loads(line)
        assert set(record) == {"messages"}
        roles = [x["role"] for x in record["messages"]]
        assert roles[0] == "system" and roles[-1] == "assistant"
        assert set(roles) <= {"system", "user", "assistant"}
        assert all(isinstance(x["content"], str) and x["content"] for x in record["messages"])
    assert json.loads(lines[1])["messages"][-1]["content"] == "Paris"


def test_exporting_an_empty_conversation_is_a_clear_message(store):
    conv = store.create()
    with pytest.raises(ExportError, match="empty"):
        to_markdown(conv, [])
    with pytest.raises(ExportError, match="empty"):
        to_json(conv, [])
    with pytest.raises(ExportError, match="nothing to fine-tune"):
        to_finetune_jsonl([[]])
    assert finetune_record([ChatMessage("user", "only a question")]) is None


def test_regenerated_replies_and_edited_questions_keep_their_earlier_versions(store):
    conv = store.create(page="simple")
    chat = store.load(conv.id)
    chat.add_user("Name two fruits.")
    chat.add(ChatMessage("assistant", "Apples and pears."))
    chat.regenerate()
    assert chat.awaiting_reply and len(store.messages(conv.id)) == 1
    chat.add(ChatMessage("assistant", "Plums and figs."))
    assert chat.edit_last_user("   ") is None  # a blank edit changes nothing
    chat.edit_last_user("Name two vegetables.")
    chat.add(ChatMessage("assistant", "Leeks and beans."))
    question, answer = store.messages(conv.id)  # as a reload reads them back
    assert question.content == "Name two vegetables." and answer.content == "Leeks and beans."
    assert question.earlier == [{"content": "Name two fruits.", "reply": "Plums and figs."}]
    assert store.list(page="simple")[0].messages == 2 and store.list(page="memory") == []
    again = store.load(conv.id)
    again.regenerate()
    again.add(ChatMessage("assistant", "Carrots and peas."))
    assert store.messages(conv.id)[-1].earlier == [{"content": "Leeks and beans."}]


def test_an_earlier_question_edited_takes_back_what_came_after_it(store):
    conv = store.create(page="simple")
    chat = store.load(conv.id)
    first = chat.add_user("Name two fruits.")
    chat.add(ChatMessage("assistant", "Apples and pears."))
    chat.add_user("And two more?")
    chat.add(ChatMessage("assistant", "Plums and figs."))
    assert chat.edit_user("no-such-id", "Name two vegetables.") is None
    assert chat.edit_user(first.id, "  ") is None and len(chat) == 4
    edited = chat.edit_user(first.id, "Name two vegetables.")
    assert chat.awaiting_reply and [m.content for m in chat] == ["Name two vegetables."]
    assert edited.earlier == [{"content": "Name two fruits.", "reply": "Apples and pears.",
                               "later": 2}]
    [stored] = store.messages(conv.id)  # the database dropped the same messages
    assert stored.content == "Name two vegetables." and stored.earlier == edited.earlier


def test_a_withdrawn_reply_can_be_regenerated_without_showing_its_text(store):
    from llmapp.chat import WITHDRAWN_VERSION

    chat = store.load(store.create(page="simple").id)
    chat.add_user("Write a short poem about a cat.")
    chat.add(ChatMessage("assistant", "the withdrawn words", withheld=True,
                         notices=["This reply was blocked by the safety filter"]))
    assert chat.can_regenerate
    chat.regenerate()
    assert chat.awaiting_reply
    again = chat.add(ChatMessage("assistant", "A cat sleeps in the sun."))
    assert again.earlier == [{"content": WITHDRAWN_VERSION}]
    blocked = store.load(store.create(page="simple").id)
    blocked.add_user("a blocked question")
    blocked.withhold_last_user()
    blocked.add(ChatMessage("assistant", "", error="blocked by the safety filter"))
    assert not blocked.can_regenerate  # a question never sent is edited, not regenerated
