import json

import pytest

from helpers import texts

pytestmark = pytest.mark.slow


@pytest.fixture
def scripted(tmp_path, monkeypatch):
    def use(*replies):
        path = tmp_path / f"script-{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps(list(replies)))
        monkeypatch.setenv("LLMAPP_SCRIPTED_MODEL", str(path))
    return use


@pytest.fixture
def agent_page(app, tmp_path):
    return lambda page="pages/6_Agent.py": app(
        page, LLMAPP_CHROMA_PATH=str(tmp_path / "chroma"),
        LLMAPP_DATABASE_URL=f"sqlite:///{tmp_path}/conversations.sqlite3")


def statuses(message):
    return [s.label for s in message.status]


def test_agent_steps_show_and_survive_a_rerun(scripted, agent_page):
    scripted({"tool": "calculator", "args": {"expression": "23*19"}},
             {"tool": "calculator", "args": {"expression": ""}},
             {"answer": "23 × 19 = **437**."})
    at = agent_page()
    assert not at.exception and "scripted test model" in texts(at)
    at.chat_input[0].set_value("What is 23*19?").run()
    assert not at.exception
    reply = at.chat_message[1]
    assert statuses(reply) == ["2 tool call(s)"]
    shown = texts(at)
    assert '🔧 **calculator** `{"expression": "23*19"}`' in shown
    assert "⚠️ result of **calculator**" in shown  # the empty expression came back as an error
    assert any(c.value == "437" for c in at.code)
    assert any("The expression is empty" in c.value for c in at.code)
    assert reply.markdown[-1].value == "23 × 19 = **437**."
    at.run()  # a rerun redraws the kept steps, collapsed
    assert statuses(at.chat_message[1]) == ["2 tool call(s)"]
    assert '🔧 **calculator** `{"expression": "23*19"}`' in texts(at)
    at.feedback[0].set_value(1).run()  # thumbs up, kept with the stored conversation
    assert not at.exception
    from llmapp.feedback import list_feedback
    from llmapp.storage import Database

    database = Database(at.secrets["LLMAPP_DATABASE_URL"])
    [saved] = list_feedback(database)
    assert (saved.page, saved.rating, saved.reply) == ("agent", 1, "23 × 19 = **437**.")
    assert saved.conversation_id and saved.context[-1]["content"] == "What is 23*19?"
    database.close()


def test_a_limit_shows_a_stop_card(scripted, agent_page):
    scripted(*[{"tool": "word_count", "args": {"text": "again"}}] * 10)
    at = agent_page()
    at.sidebar.slider(key="agent_model_calls").set_value(2).run()
    at.chat_input[0].set_value("Loop forever").run()
    assert not at.exception
    assert statuses(at.chat_message[1]) == ["2 tool call(s) · stopped"]
    assert any(e.value for e in at.chat_message[1].error)


def test_memory_across_turns_comes_from_the_conversation(scripted, agent_page, tmp_path):
    scripted({"answer": "Noted, Ada."}, {"answer": "You are Ada."})
    at = agent_page()
    at.chat_input[0].set_value("My name is Ada.").run()
    at.chat_input[0].set_value("Who am I?").run()
    assert [m.markdown[-1].value for m in at.chat_message] == [
        "My name is Ada.", "Noted, Ada.", "Who am I?", "You are Ada."]
    from llmapp.conversations import ConversationStore

    [conv] = ConversationStore(tmp_path / "conversations.sqlite3").list()
    assert conv.messages == 4


def test_the_agent_opens_its_own_conversation_not_the_memory_pages(agent_page, tmp_path):
    from llmapp.chat import ChatMessage
    from llmapp.conversations import ConversationStore

    db = ConversationStore(tmp_path / "conversations.sqlite3")
    memory = db.create()
    db.append(memory.id, ChatMessage("user", "Hi! My name is Priya."))
    at = agent_page()
    assert not at.exception and len(at.chat_message) == 0  # not the Memory page's chat
    assert at.sidebar.radio[0].options == ["New conversation · 0 msgs"]  # the agent's own
    assert [c.page for c in db.list()] == ["agent", "memory"]


def test_two_visitors_at_once_never_share_a_conversation(scripted, agent_page, tmp_path):
    from llmapp.conversations import ConversationStore

    scripted({"answer": "Noted, Ada."}, {"answer": "Noted, Bo."})
    first, second = agent_page(), agent_page()  # both arrive before either writes
    first.chat_input[0].set_value("My name is Ada.").run()
    second.chat_input[0].set_value("My name is Bo.").run()
    assert [m.markdown[0].value for m in first.chat_message][0] == "My name is Ada."
    assert [m.markdown[0].value for m in second.chat_message][0] == "My name is Bo."
    db = ConversationStore(tmp_path / "conversations.sqlite3")
    assert sorted(c.messages for c in db.list()) == [2, 2]
    third = agent_page()  # a later visitor opens an empty one; theirs are listed
    assert len(third.chat_message) == 0 and len(third.sidebar.radio[0].options) == 3


def test_conversations_left_empty_for_a_week_are_dropped(tmp_path):
    from llmapp.conversations import ConversationStore

    db = ConversationStore(tmp_path / "c.sqlite3")
    old, used, recent = (db.create(page="agent") for _ in range(3))
    from llmapp.chat import ChatMessage

    db.append(used.id, ChatMessage("user", "hi"))
    assert db.drop_empty("agent", older_than_s=0.0) == 2
    assert [c.id for c in db.list()] == [used.id]
    db.create(page="agent")
    assert db.drop_empty("agent", older_than_s=3600.0) == 0


def test_tools_page_runs_one_tool_round_and_the_console(scripted, agent_page):
    scripted({"tool": "current_datetime", "args": {"timezone": "Asia/Tokyo"}},
             {"answer": "It is evening in Tokyo."})
    at = agent_page("pages/5_Tools.py")
    at.chat_input[0].set_value("What time is it in Tokyo?").run()
    assert not at.exception
    assert statuses(at.chat_message[1]) == ["1 tool call(s)"]
    assert any("(Asia/Tokyo, UTC+0900)" in c.value for c in at.code)
    at.selectbox(key="console_tool").select("calculator").run()
    at.text_input(key="console_calculator_expression").input("6*7").run()
    next(b for b in at.button if b.label == "Call").click().run()
    assert any(c.value == "42" for c in at.code)


def test_the_bundled_model_is_described_honestly(app, tmp_path):
    at = app("pages/6_Agent.py", LLMAPP_CHROMA_PATH=str(tmp_path / "chroma"),
             LLMAPP_DATABASE_URL=f"sqlite:///{tmp_path}/c.sqlite3")
    notice = at.info[0].value
    assert "far too small to plan tool calls" in notice and "semantic router" in notice
    at.selectbox(key="tool_choice").select("model").run()
    assert "far too small to plan tool calls" in at.warning[0].value
    assert not any("semantic router" in i.value for i in at.info)


@pytest.mark.parametrize("page,question,result", [
    ("pages/6_Agent.py", "What is 23*19?", "437"),
    ("pages/5_Tools.py", "How many words are in the sentence 'the quick brown fox jumps'?",
     "5 words, 25 characters (21 without spaces)"),
])
def test_the_pages_examples_work_on_the_bundled_model(agent_page, page, question, result):
    at = agent_page(page)
    at.chat_input[0].set_value(question).run()
    reply = at.chat_message[1]
    assert statuses(reply) == ["1 tool call(s)"]
    assert any(c.value.startswith(("Chosen by similarity to examples (",
                                   "Chosen because the question writes its arithmetic out"))
               for c in reply.caption)
    shown = [s.value for s in reply.success]
    assert any(s.endswith(f"says: {result}") for s in shown), shown
    assert result in reply.markdown[-1].value  # the answer, stated from the tool's result
    assert any("s total · stated from the tool's result (llmapp)" in c.value
               for c in reply.caption)  # a stats line, as under every reply
    assert not at.exception
    at.run()  # a rerun redraws the steps, the result and the stats from the store
    again = at.chat_message[1]
    assert any(s.value.endswith(f"says: {result}") for s in again.success)
    assert any("stated from the tool's result" in c.value for c in again.caption)
    # the stats line comes last, under the result, as when it was drawn live
    order = [n.type for n in again.children.values()]
    assert order.index("markdown") < order.index("success") < order.index("caption"), order


def test_an_agent_reply_can_be_regenerated_and_its_question_edited(scripted, agent_page):
    scripted({"answer": "First answer."}, {"answer": "Second answer."},
             {"answer": "Third answer."})
    at = agent_page()
    at.chat_input[0].set_value("What is 2+2?").run()
    [regenerate] = [b for b in at.button if b.label == "Regenerate"]
    regenerate.click().run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    reply = at.chat_message[1]
    assert reply.markdown[0].value == "Second answer."
    [earlier] = [e for e in reply.expander if e.label.startswith("Earlier versions")]
    assert "First answer." in [m.value for m in earlier.markdown]
    [edit] = [t for t in at.text_area if t.label == "Your question"]
    edit.set_value("What is 3+3?")
    [send] = [b for b in at.button if b.label == "Send edited"]
    send.click().run()
    assert not at.exception
    assert at.chat_message[0].markdown[0].value == "What is 3+3?"
    assert at.chat_message[1].markdown[0].value == "Third answer."
    at.run()  # redrawn from the store: one question, one reply, the earlier ones kept
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert any(e.label.startswith("Earlier versions") for e in at.chat_message[0].expander)
