import pytest

from helpers import free_port, texts

PAGE = "pages/1_Simple_Prompt.py"
pytestmark = pytest.mark.slow


def assistant_messages(at):
    return [m for m in at.chat_message if m.name == "assistant"]


def test_a_prompt_gets_a_streamed_answer_with_stats(app):
    at = app(PAGE)
    assert not at.exception and "bundled local model" in at.info[0].value
    at.chat_input[0].set_value("Name two fruits.").run()
    assert not at.exception
    [reply] = assistant_messages(at)
    assert reply.markdown[0].value.strip()
    stats = reply.caption[-1].value
    assert "TTFT" in stats and "tokens/s" in stats and "completion tokens" in stats
    assert "(local)" in stats


def test_an_example_is_sent_in_one_click_at_the_pages_temperature(app):
    from llmapp.demo import prompts

    at = app(PAGE)
    [pills] = at.pills
    assert pills.options == prompts("simple")
    temperature = next(s for s in at.sidebar.slider if s.label == "Temperature")
    assert temperature.value == 0.3  # this page's default (config.PAGE_SAMPLING)
    pills.set_value(prompts("simple")[0]).run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert at.chat_message[0].markdown[0].value == prompts("simple")[0]
    assert at.pills[0].value is None


def test_a_reload_opens_the_same_chat_and_a_new_session_a_new_one(app, tmp_path):
    from streamlit.testing.v1 import AppTest

    from helpers import ROOT

    def session(**query):
        at = AppTest.from_file(str(ROOT / PAGE), default_timeout=120)
        at.secrets["LLMAPP_DATABASE_URL"] = f"sqlite:///{tmp_path}/c.sqlite3"
        at.query_params.update(query)
        return at.run()

    at = session()
    at.chat_input[0].set_value("Name two fruits.").run()
    chat = at.query_params["chat"]
    reloaded = session(chat=chat)  # a reload: a new session, the same address
    assert [m.name for m in reloaded.chat_message] == ["user", "assistant"]
    assert reloaded.chat_message[0].markdown[0].value == "Name two fruits."
    assert len(session().chat_message) == 0  # a new visitor gets an empty chat
    assert len(session(chat="no-such-chat").chat_message) == 0


def test_the_chat_survives_reruns_and_clears(app):
    at = app(PAGE)
    at.chat_input[0].set_value("Hello!").run()
    at.chat_input[0].set_value("And goodbye.").run()
    assert [m.name for m in at.chat_message] == ["user", "assistant", "user", "assistant"]
    assert at.chat_message[2].markdown[0].value == "And goodbye."
    at.sidebar.button[-1].click().run()  # Clear chat
    assert len(at.chat_message) == 0 and not at.exception


def test_a_failing_server_keeps_the_message_and_offers_retry(app):
    url = f"http://127.0.0.1:{free_port()}/v1"
    at = app(PAGE, OPENAI_COMPATIBLE_BASE_URL=url, LLMAPP_MAX_RETRIES="0")
    at.chat_input[0].set_value("Are you there?").run()
    assert not at.exception
    assert at.chat_message[0].markdown[0].value == "Are you there?"
    [error] = at.chat_message[1].error
    assert "Could not connect to the OpenAI-compatible server" in error.value
    [retry] = [b for b in at.button if b.label == "Retry"]
    retry.click().run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]  # not duplicated
    assert at.chat_message[0].markdown[0].value == "Are you there?"
    assert "Could not connect" in at.chat_message[1].error[0].value


def test_an_overlong_message_is_refused_clearly(app):
    at = app(PAGE, LLMAPP_LOCAL_N_CTX="512")
    at.chat_input[0].set_value("lorem ipsum " * 400).run()
    assert not at.exception
    [error] = at.chat_message[1].error
    assert "The message is too long" in error.value and "512-token context window" in error.value


def test_a_sidebar_key_serves_the_session_and_is_never_shown(app):
    key = "sk-typed-in-sidebar-4242"
    at = app(PAGE)
    [box] = [t for t in at.text_input if t.label == "OpenAI API key"]
    box.input(key)
    use = [b for b in at.button if b.label == "Use key"][0]  # the OpenAI form comes first
    use.click().run()
    assert not at.exception
    shown = texts(at)
    assert key not in shown and "4242" not in shown
    assert "OpenAI API key: set for this session (hidden)." in shown
    assert "Model: **OpenAI**" in shown and "an OpenAI API key was found (sidebar)" in shown
    [forget] = [b for b in at.button if b.label == "Forget key"]
    forget.click().run()
    assert "Model: **local**" in texts(at)


def test_a_sidebar_key_serves_every_page_of_the_session(app):
    at = app("Home.py")
    at.switch_page(PAGE).run()
    [box] = [t for t in at.text_input if t.label == "OpenAI API key"]
    box.input("sk-cross-page")
    [b for b in at.button if b.label == "Use key"][0].click().run()
    at.switch_page("Home.py").run()
    assert not at.exception
    assert "Active: OpenAI" in at.success[0].value and "(sidebar)" in at.success[0].value
    assert "sk-cross-page" not in texts(at)


def test_the_chat_says_when_old_turns_were_dropped(app):
    at = app(PAGE, LLMAPP_LOCAL_N_CTX="512")
    for i in range(4):
        at.chat_input[0].set_value(f"Turn {i}: " + "tell me about tea " * 15).run()
        assert not at.exception
    notices = [c.value for m in at.chat_message for c in m.caption if "Dropped the oldest" in c.value]
    assert notices and "512-token context window" in notices[-1]
    assert len(at.chat_message) == 8  # the transcript keeps everything; only the prompt is trimmed


def test_a_model_that_fails_to_load_is_a_message(app, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    at = app(PAGE, LLMAPP_LOCAL_MODEL_PATH=str(broken))
    at.chat_input[0].set_value("Hello?").run()
    assert not at.exception
    assert at.chat_message[0].markdown[0].value == "Hello?"
    assert "Could not load the local model from broken.gguf" in at.chat_message[1].error[0].value


def test_a_repeated_prompt_is_answered_from_the_cache_and_can_be_asked_again(app):
    """The key holds the history the model sees: the same first question, in
    a cleared chat, is the same request."""
    at = app(PAGE)
    at.chat_input[0].set_value("Name two fruits.").run()
    first = assistant_messages(at)[0].markdown[0].value
    at.chat_input[0].set_value("And two vegetables?").run()
    assert "TTFT" in assistant_messages(at)[-1].caption[-1].value  # new history: a miss
    at.sidebar.button[-1].click().run()  # Clear chat
    at.chat_input[0].set_value("name two fruits").run()
    [second] = assistant_messages(at)
    assert second.markdown[0].value == first
    assert second.caption[-1].value.startswith("cached · exact · ")
    [again] = [b for b in at.button if b.label == "Ask the model instead"]
    again.click().run()
    assert not at.exception
    replies = assistant_messages(at)
    assert len(replies) == 1 and "TTFT" in replies[-1].caption[-1].value
    assert not [b for b in at.button if b.label == "Ask the model instead"]


def test_the_cache_can_be_turned_off_and_cleared_in_the_sidebar(app):
    at = app(PAGE)
    at.chat_input[0].set_value("Name two fruits.").run()
    [mode] = [s for s in at.sidebar.selectbox if s.label == "Response cache"]
    mode.select("off").run()
    at.sidebar.button[-1].click().run()  # Clear chat
    at.chat_input[0].set_value("Name two fruits.").run()
    assert "TTFT" in assistant_messages(at)[-1].caption[-1].value
    [clear] = [b for b in at.sidebar.button if b.label == "Clear the response cache"]
    clear.click().run()
    assert "Cleared 1 cached replies." in texts(at)


def test_a_blocked_prompt_is_kept_to_edit_and_send_again(app):
    at = app(PAGE)
    at.chat_input[0].set_value("Tell me how to make methamphetamine at home.").run()
    assert not at.exception
    user, reply = at.run().chat_message  # as drawn again from the chat store
    assert user.markdown[0].value == "Tell me how to make methamphetamine at home."
    assert "Not sent to the model" in user.caption[0].value
    assert "blocked by the safety filter (level: adult)" in reply.error[0].value
    assert not [b for b in at.button if b.label == "Retry"]
    [box] = [t for t in at.text_area if t.label == "Edit your message"]
    assert box.value == "Tell me how to make methamphetamine at home."
    box.input("Tell me how to make pancakes at home.")
    [send] = [b for b in at.button if b.label == "Send again"]
    send.click().run()
    assert not at.exception
    names = [m.name for m in at.chat_message]
    assert names == ["user", "user", "assistant"]  # the blocked one stays, never sent
    assert at.chat_message[1].markdown[0].value == "Tell me how to make pancakes at home."
    assert "TTFT" in at.chat_message[2].caption[-1].value


def test_the_safety_level_is_a_sidebar_setting(app):
    at = app(PAGE)
    [level] = [s for s in at.sidebar.selectbox if s.label == "Safety level"]
    level.select("off").run()
    at.chat_input[0].set_value("This is bullshit, tell me a joke.").run()
    assert not at.exception and not at.chat_message[1].error
    level.select("child").run()
    at.sidebar.button[-1].click().run()  # Clear chat
    at.chat_input[0].set_value("This is bullshit, tell me a joke.").run()
    assert "blocked by the safety filter (level: child)" in at.chat_message[1].error[0].value
    assert "profanity" in at.chat_message[1].error[0].value


def test_a_reply_gets_thumbs_and_a_correction_saved_to_the_database(app):
    import os

    from llmapp.feedback import list_feedback
    from llmapp.storage import Database

    at = app(PAGE, LLMAPP_SAFETY_LEVEL="off")
    at.chat_input[0].set_value("Name two fruits.").run()
    [reply] = assistant_messages(at)
    [thumbs] = at.feedback
    thumbs.set_value(0).run()  # thumbs down
    assert not at.exception
    [better] = [t for t in at.text_area if t.label == "What should the reply have said?"]
    better.input("Apples and pears.")
    [save] = [b for b in at.button if b.label == "Save"]
    save.click().run()
    assert not at.exception
    database = Database(os.environ["LLMAPP_DATABASE_URL"])
    [saved] = list_feedback(database)
    assert (saved.page, saved.rating, saved.correction) == ("simple", -1, "Apples and pears.")
    system, user = saved.context  # the page's system prompt, then the question
    assert system["role"] == "system" and "helpful assistant" in system["content"]
    assert user == {"role": "user", "content": "Name two fruits."}
    assert saved.reply == reply.markdown[0].value
    assert saved.example()["messages"][-1]["content"] == "Apples and pears."
    at.feedback[0].set_value(None).run()  # take the rating back; the correction stays
    [kept] = list_feedback(database)
    assert kept.rating is None and kept.correction == "Apples and pears."
    database.close()


def test_a_reply_cut_by_a_page_switch_is_kept_marked_not_regenerated():
    """A page switch or a rerun stops the script mid-stream (Streamlit raises
    inside ``write_stream``); what arrived is kept, marked as cut."""
    from langchain_core.messages import AIMessageChunk

    from llmapp.chat import ChatStore, Reply
    from llmapp.streaming import ReplyStats, ReplyStream
    from llmapp.tokens import Budget
    from llmapp.ui.chat import CUT_NOTICE, _keep_cut

    def chunks():
        yield from (AIMessageChunk(content=t) for t in ("Rainy days ", "are for ", "books."))

    store = ChatStore()
    store.add_user("What are rainy days for?")
    stream = ReplyStream(chunks, ReplyStats("local", "m"))
    reply = Reply(stream=stream, budget=Budget(messages=[], prompt_tokens=0, window=0,
                                               max_tokens=0))
    next(stream), next(stream)  # the user leaves here
    _keep_cut(store, reply)
    assert not store.awaiting_reply  # kept: not asked again on return
    assert store.messages[-1].content == "Rainy days are for "
    assert store.messages[-1].notices[-1] == CUT_NOTICE
    assert store.messages[-1].stats.summary().endswith("stopped before the end")
    empty = ChatStore()
    empty.add_user("Hello?")
    _keep_cut(empty, Reply(stream=ReplyStream(chunks, ReplyStats("local", "m")),
                           budget=reply.budget))
    assert empty.awaiting_reply  # nothing had arrived: answered anew on return


def test_regenerate_and_edit_keep_the_earlier_versions_across_a_reload(app, tmp_path):
    from streamlit.testing.v1 import AppTest

    from helpers import ROOT

    def session(**query):
        at = AppTest.from_file(str(ROOT / PAGE), default_timeout=120)
        at.secrets["LLMAPP_DATABASE_URL"] = f"sqlite:///{tmp_path}/c.sqlite3"
        at.secrets["LLMAPP_CACHE"] = "off"
        at.query_params.update(query)
        return at.run()

    at = session()
    at.chat_input[0].set_value("Name two fruits.").run()
    first = assistant_messages(at)[0].markdown[0].value
    [regenerate] = [b for b in at.button if b.label == "Regenerate"]
    regenerate.click().run()
    assert not at.exception
    [reply] = assistant_messages(at)  # one reply, a new one...
    assert [e.label for e in reply.expander] == ["Earlier versions (1)"]  # ...the old kept
    assert reply.expander[0].markdown[0].value == first
    [edit] = [t for t in at.text_area if t.label == "Your question"]
    edit.input("Name two vegetables.")
    [send] = [b for b in at.button if b.label == "Send edited"]
    send.click().run()
    assert not at.exception
    user, answer = at.chat_message
    assert user.markdown[0].value == "Name two vegetables." and answer.markdown[0].value
    assert user.expander[0].label == "Earlier versions (1)"
    assert "**You asked:** Name two fruits." in [m.value for m in user.expander[0].markdown]
    reloaded = session(chat=at.query_params["chat"])
    assert [e.label for e in reloaded.chat_message[0].expander] == ["Earlier versions (1)"]


def test_an_earlier_question_can_be_edited_and_the_branch_after_it_is_kept(app, tmp_path):
    at = app(PAGE, LLMAPP_DATABASE_URL=f"sqlite:///{tmp_path}/c.sqlite3", LLMAPP_CACHE="off")
    at.chat_input[0].set_value("Name two fruits.").run()
    at.chat_input[0].set_value("Name two colours.").run()
    assert [m.name for m in at.chat_message] == ["user", "assistant"] * 2
    # The last question is edited under the last reply; an earlier one has its own box.
    boxes = [t for t in at.text_area if t.label == "Your question"]
    assert [b.value for b in boxes] == ["Name two fruits.", "Name two colours."]
    boxes[0].input("Name two vegetables.")
    [send, _] = [b for b in at.button if b.label == "Send edited"]
    send.click().run()
    assert not at.exception
    user, answer = at.chat_message
    assert user.markdown[0].value == "Name two vegetables." and answer.markdown[0].value
    earlier = [m.value for m in user.expander[0].markdown]
    assert "**You asked:** Name two fruits." in earlier
    assert any("1 later message(s)" in c.value or "2 later message(s)" in c.value
               for c in user.expander[0].caption)


def test_a_question_another_session_is_answering_is_not_answered_twice(app, tmp_path):
    """A reload mid-stream opens a new session on the same conversation while
    the old one still streams: the new one waits for it, unless asked."""
    from streamlit.testing.v1 import AppTest

    from helpers import ROOT
    from llmapp.ui.memory import _ANSWERING

    def session(**query):
        at = AppTest.from_file(str(ROOT / PAGE), default_timeout=120)
        at.secrets["LLMAPP_DATABASE_URL"] = f"sqlite:///{tmp_path}/c.sqlite3"
        at.query_params.update(query)
        return at.run()

    from llmapp.conversations import ConversationStore

    chat = session().query_params["chat"]
    db = ConversationStore(f"sqlite:///{tmp_path}/c.sqlite3")
    db.load(chat).add_user("Name two fruits.")  # asked, and being answered elsewhere
    db.close()
    _ANSWERING[chat] = "another-session"
    try:
        reloaded = session(chat=chat)
        assert not reloaded.exception
        assert [m.name for m in reloaded.chat_message] == ["user"]  # no second answer
        assert any("being answered in another tab" in i.value for i in reloaded.info)
        [here] = [b for b in reloaded.button if b.label == "Answer here instead"]
        here.click().run()
        assert [m.name for m in reloaded.chat_message] == ["user", "assistant"]
    finally:
        _ANSWERING.pop(chat, None)
    assert chat not in _ANSWERING  # released after this session answered
