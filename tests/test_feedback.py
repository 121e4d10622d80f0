"""Feedback on replies, on SQLite and PostgreSQL (llmapp.feedback)."""

import pytest

from llmapp.chat import ChatMessage, ChatStore
from llmapp.conversations import ConversationStore
from llmapp.feedback import DOWN, UP, feedback_for, list_feedback, save_feedback
from llmapp.storage import Database, StoreError
from llmapp.streaming import ReplyStats


@pytest.fixture
def database(database_url):
    db = Database(database_url)
    yield db
    db.close()


def chat(page="simple"):
    store = ChatStore()
    store.page = page
    store.system_prompt = "Be brief."
    store.add_user("What is the capital of France?")
    reply = store.add(ChatMessage("assistant", "Paris.",
                                  stats=ReplyStats(provider="local", model="smollm2")))
    store.add_user("And of Italy?")
    second = store.add(ChatMessage("assistant", "Rome."))
    return store, reply, second


def test_a_rating_is_saved_with_what_the_reply_answered(database):
    store, reply, second = chat()
    saved = save_feedback(database, store, second, rating=UP)
    assert saved.rating == UP and saved.correction is None and saved.page == "simple"
    assert saved.context == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"}]
    assert saved.reply == "Rome." and saved.model is None
    assert save_feedback(database, store, reply, rating=DOWN).model == "local:smollm2"
    assert {f.id: f.rating for f in list_feedback(database)} == {second.id: UP, reply.id: DOWN}


def test_changing_and_taking_back_feedback(database):
    store, reply, _ = chat()
    save_feedback(database, store, reply, rating=DOWN)
    corrected = save_feedback(database, store, reply, correction="  Paris, on the Seine.  ")
    assert corrected.rating == DOWN and corrected.correction == "Paris, on the Seine."
    up = save_feedback(database, store, reply, rating=UP)
    assert up.correction == "Paris, on the Seine."  # left out: kept
    assert up.created_at == corrected.created_at <= up.updated_at
    assert save_feedback(database, store, reply, rating=None).correction  # still corrected
    assert save_feedback(database, store, reply, correction="") is None  # nothing left
    assert feedback_for(database, [reply.id]) == {}


def test_examples_come_from_approved_and_corrected_replies(database):
    store, reply, second = chat()
    assert save_feedback(database, store, reply, rating=DOWN).example() is None
    corrected = save_feedback(database, store, reply, correction="Paris.")
    assert corrected.example()["messages"][-1] == {"role": "assistant", "content": "Paris."}
    approved = save_feedback(database, store, second, rating=UP).example()
    assert [m["role"] for m in approved["messages"]] == [
        "system", "user", "assistant", "user", "assistant"]
    assert approved["messages"][-1]["content"] == "Rome."


def test_bad_feedback_is_refused_and_nothing_is_stored(database):
    store, reply, _ = chat()
    failed = store.add(ChatMessage("assistant", "", error="The server is down."))
    withdrawn = ChatMessage("assistant", "Bad words", withheld=True)
    for message in (failed, withdrawn, store.messages[0]):
        with pytest.raises(StoreError, match="Only a finished reply"):
            save_feedback(database, store, message, rating=UP)
    with pytest.raises(StoreError, match="1 \\(up\\), -1 \\(down\\)"):
        save_feedback(database, store, reply, rating=5)
    with pytest.raises(StoreError, match="at most 20,000 characters"):
        save_feedback(database, store, reply, correction="x" * 20_001)
    assert list_feedback(database) == []


def test_feedback_in_a_stored_conversation_keeps_its_reply_across_reloads(database_url):
    db = ConversationStore(database_url)
    conv = db.create()
    store = db.load(conv.id)
    store.page = "memory"
    store.add_user("My name is Ada.")
    store.add(ChatMessage("assistant", "Nice to meet you, Ada."))
    reloaded = db.load(conv.id)  # a new session opens the conversation
    reloaded.page = "memory"
    reply = reloaded.messages[-1]
    assert reply.id == store.messages[-1].id
    saved = save_feedback(db.database, reloaded, reply, rating=UP)
    assert saved.conversation_id == conv.id and saved.page == "memory"
    db.delete(conv.id)  # feedback outlives the conversation, for datasets
    assert feedback_for(db.database, [reply.id])[reply.id].reply == "Nice to meet you, Ada."
    db.close()
