from helpers import free_port
from helpers import texts


def test_home_with_no_key_shows_the_local_model_and_the_roadmap(app):
    at = app("Home.py")
    assert not at.exception
    assert "Active: local" in at.success[0].value
    assert "no OpenAI key or OpenAI-compatible server is configured" in at.success[0].value
    shown = texts(at)
    assert "· _not built yet_" not in shown  # every stage has its page now
    assert "production pieces of an LLM system" in shown
    assert "runs saved and compared in charts" in shown
    links = [link.proto.label for link in at.get("page_link")]
    assert links[:6] == ["**1. Simple prompt**", "**2. Prompt chains**",
                         "**3. RAG over Chroma**", "**4. Memory**", "**5. Tools**", "**6. Agent**"]
    assert "**Safety filter**" in links[6:] and "**Evaluation**" in links[6:]
    assert "❌ **openai**" in shown and "✅ **local**" in shown
    menu = [link.proto.label for link in at.sidebar.get("page_link")]  # llmapp's own menu
    assert menu == ["Home", "1 · Simple prompt", "2 · Prompt chains", "3 · RAG over Chroma",
                    "4 · Memory", "5 · Tools", "6 · Agent", "7 · Fine-tuning", "Safety filter",
                    "Evaluation"]


def test_home_reports_an_unreachable_server_from_secrets(app):
    url = f"http://127.0.0.1:{free_port()}/v1"
    at = app("Home.py", OPENAI_COMPATIBLE_BASE_URL=url)
    assert not at.exception
    assert "Active: OpenAI-compatible" in at.error[0].value
    assert "cannot run" in at.error[0].value and "unreachable" in at.error[0].value


def test_a_malformed_setting_is_a_message_not_a_traceback(app):
    at = app("Home.py", LLMAPP_LOCAL_N_CTX="lots")
    assert not at.exception
    assert any("LLMAPP_LOCAL_N_CTX (from secrets)" in e.value for e in at.error)
