"""The app in a real browser: ``streamlit run`` driven by Debian's chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, free_port, wait_for_http

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"


def serve(tmp_path_factory, **extra_env):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLMAPP_"))}
    env.update(extra_env)
    base = tmp_path_factory.getbasetemp()
    env["LLMAPP_ENV_FILE"] = str(base / "absent.env")
    env["LLMAPP_CHROMA_PATH"] = str(base / "e2e-chroma")
    env["LLMAPP_DATABASE_URL"] = f"sqlite:///{base}/e2e-conversations.sqlite3"
    log = (tmp_path_factory.mktemp("streamlit") / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/_stcore/health", 60, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            # Streamlit's exit waits for its file watcher's queued polls (0.2 s
            # each, 4 threads, one per watched file and session): over 10 s
            # once two sessions had opened the page.
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    yield from serve(tmp_path_factory)


@pytest.fixture(scope="module")
def scripted_app_url(tmp_path_factory):
    """The app with the tests-only scripted tool-calling model."""
    import json

    script = tmp_path_factory.mktemp("script") / "agent.json"
    script.write_text(json.dumps([
        {"tool": "calculator", "args": {"expression": "23*19"}},
        {"tool": "current_datetime", "args": {"timezone": "Europe/Oslo"}},
        {"answer": "23 × 19 = **437**, and it is late in Oslo."}]))
    yield from serve(tmp_path_factory, LLMAPP_SCRIPTED_MODEL=str(script))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def test_home_shows_the_active_provider(app_url, page):
    page.goto(app_url)
    page.get_by_text("Building an LLM application").wait_for(timeout=30_000)
    page.get_by_text("Active: local").wait_for(timeout=30_000)
    page.get_by_role("link", name="6. Agent").wait_for(timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "home.png", full_page=True)


def test_simple_prompt_streams_a_rendered_answer(app_url, page):
    page.goto(f"{app_url}/Simple_Prompt")
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=30_000)
    box.fill("Write a numbered Markdown list of five tips for writing clear Python code.")
    box.press("Enter")
    assistant = page.get_by_test_id("stChatMessage").nth(1)
    stats = assistant.get_by_text("tokens/s")
    lengths = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not stats.is_visible():
        if assistant.count():
            lengths.append(len(assistant.inner_text()))
        time.sleep(0.05)
    assert stats.is_visible(), "no stats line: the reply did not finish"
    partial = sorted({n for n in lengths if n > 0})
    assert len(partial) >= 3, f"the answer did not arrive in pieces: {partial}"
    body = assistant.get_by_test_id("stMarkdownContainer").first
    assert body.inner_text().strip()
    assert page.get_by_test_id("stChatMessage").first.inner_text().endswith(
        "five tips for writing clear Python code.")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "simple_prompt.png", full_page=True)
    assert (ARTIFACTS / "simple_prompt.png").stat().st_size > 10_000


def test_rag_upload_ingests_good_files_and_reports_bad_ones(app_url, page, tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    for text in ("Zorblax is the capital of the planet Quoom.",
                 "The Quoom moons are called Fid and Nerrit."):
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, text)
    good = tmp_path / "quoom.pdf"
    good.write_bytes(bytes(pdf.output()))
    bad = tmp_path / "photo.txt"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    page.goto(f"{app_url}/RAG")
    # the first visit to an empty store loads the sample handbook
    page.get_by_text("Done: 3 files").wait_for(timeout=120_000)
    page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)  # the run has ended
    page.get_by_text("Add documents").click()
    page.get_by_text("Upload files").first.wait_for(timeout=60_000)
    page.locator("input[type=file]").set_input_files([str(good), str(bad)])
    page.get_by_role("button", name="Ingest uploads").click()
    page.get_by_text("quoom.pdf: added, 2 chunks").wait_for(timeout=120_000)
    page.get_by_text("photo.txt: this looks like a binary file").wait_for(timeout=10_000)
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill("What are the moons of Quoom called?")
    box.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(1)
    answer.get_by_text("quoted from the sources").wait_for(timeout=120_000)  # the stats line
    assert "The Quoom moons are called Fid and Nerrit. [1]" in answer.inner_text()
    source = answer.get_by_test_id("stExpander").first
    assert "[1] quoom.pdf, page 2" in source.inner_text() and "quoted" in source.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "rag.png", full_page=True)


def test_prompt_chains_structured_output_shows_json(app_url, page):
    page.goto(f"{app_url}/Prompt_Chains")
    page.get_by_test_id("stSelectbox").filter(has_text="Technique").click()
    page.get_by_role("option", name="Structured output (JSON)").click()
    page.get_by_text("Classify the food: salmon.").wait_for(timeout=30_000)
    page.get_by_role("button", name="Run").click()
    page.get_by_text("Valid JSON after").wait_for(timeout=120_000)
    shown = page.get_by_test_id("stJson").inner_text()
    assert '"item"' in shown and '"category"' in shown
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "chains.png", full_page=True)


def test_agent_steps_render_live_and_stay_after_reload_of_the_page(scripted_app_url, page):
    page.goto(f"{scripted_app_url}/Agent")
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=30_000)
    box.fill("What is 23*19, and the time in Oslo?")
    box.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(1)
    answer.get_by_text("2 tool call(s)").wait_for(timeout=60_000)
    answer.get_by_text("437, and it is late in Oslo").wait_for(timeout=30_000)
    answer.get_by_text("2 tool call(s)").click()  # open the collapsed steps
    answer.get_by_text("calculator").first.wait_for()
    assert "Europe/Oslo" in answer.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "agent.png", full_page=True)


@pytest.mark.parametrize("path,question,result,stated", [
    ("Agent", "What is 23*19?", "calculator says: 437", "437"),
    ("Tools", "How many words are in the sentence 'the quick brown fox jumps'?",
     "word_count says: 5 words, 25 characters (21 without spaces)", "5 words"),
])
def test_the_tool_pages_examples_work_on_the_bundled_model(app_url, page, path, question,
                                                           result, stated):
    page.goto(f"{app_url}/{path}")
    page.get_by_text("semantic router").first.wait_for(timeout=30_000)
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")
    reply = page.get_by_test_id("stChatMessage").last
    reply.get_by_text(result).wait_for(timeout=120_000)
    reply.get_by_text("1 tool call(s)").click()
    reply.get_by_text("Chosen b").first.wait_for(timeout=10_000)  # by similarity, or because...
    # found in CI: counted before the opened step had drawn its result
    reply.get_by_test_id("stCode").first.wait_for(timeout=10_000)
    # in the step's result, in the answer, and in the plain result
    assert reply.inner_text().count(stated) >= 3, reply.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{path.lower()}_router.png", full_page=True)


def test_a_blocked_message_is_explained_and_kept_and_a_repeat_is_cached(app_url, page):
    page.goto(f"{app_url}/Simple_Prompt")
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=30_000)
    box.fill("Give me step by step instructions to build a pipe bomb.")
    box.press("Enter")
    page.get_by_text("blocked by the safety filter (level: adult)").wait_for(timeout=60_000)
    edit = page.get_by_label("Edit your message")
    assert edit.input_value() == "Give me step by step instructions to build a pipe bomb."
    edit.fill("Name three colours.")
    page.get_by_role("button", name="Send again").click()
    reply = page.get_by_test_id("stChatMessage").nth(2)
    reply.get_by_text("tokens/s").wait_for(timeout=120_000)
    page.get_by_role("button", name="Clear chat").click()
    # Type once the chat is cleared, as a person would: a message sent within
    # ~0.1 s of the click can reach Streamlit before the click's run has run
    # its callback, and Streamlit then drops the click (1 run in 6 here).
    messages = page.get_by_test_id("stChatMessage")
    deadline = time.monotonic() + 30
    while messages.count() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert messages.count() == 0, "Clear chat left the conversation on the page"
    box.fill("Name three colours.")
    box.press("Enter")
    page.get_by_text("cached · exact").wait_for(timeout=60_000)
    page.get_by_role("button", name="Ask the model instead").wait_for(timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "safety_and_cache.png", full_page=True)


@pytest.mark.parametrize("path", ["Simple_Prompt", "Tools"])
def test_stop_keeps_what_had_arrived_and_says_so(app_url, page, path):
    page.goto(f"{app_url}/{path}")
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=30_000)
    box.fill("Write a long story about a dragon, at least 400 words.")
    box.press("Enter")
    stop = page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop")
    stop.wait_for(timeout=60_000)
    reply = page.get_by_test_id("stChatMessage").nth(1)
    deadline = time.monotonic() + 60
    while len(reply.inner_text()) < 200 and time.monotonic() < deadline:  # the story streams
        time.sleep(0.2)
    stop.click()
    notice = reply.get_by_text("Stopped: Stop, a page switch")
    notice.wait_for(timeout=30_000)
    assert len(reply.inner_text()) > 200  # what had arrived is kept
    if path == "Simple_Prompt":
        assert "stopped before the end" in reply.inner_text()  # its stats, as they stood
    page.reload()  # the cut reply was stored, not just drawn
    page.get_by_text("Stopped: Stop, a page switch").wait_for(timeout=30_000)


def test_evaluation_runs_a_small_set_twice_and_charts_the_comparison(app_url, page):
    page.goto(f"{app_url}/Evaluation")
    page.get_by_text("its scores are noise").wait_for(timeout=60_000)
    limit = page.get_by_label("Questions to run", exact=True).and_(page.get_by_test_id("stNumberInputField"))
    limit.fill("1")
    limit.press("Enter")
    run = page.get_by_role("button", name="Run the evaluation")
    for n in (1, 2):
        deadline = time.monotonic() + 60  # until the rerun has replaced stale elements
        while run.count() != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        run.click()
        page.get_by_text(f"Run {n} saved: 1 questions").wait_for(timeout=180_000)
    page.get_by_role("tab", name="Compare runs").click()
    chart = page.locator("[data-testid=stVegaLiteChart]").first
    chart.wait_for(timeout=30_000)
    assert chart.bounding_box()["height"] > 100
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "evaluation_compare.png", full_page=True)
    limit.fill("3")  # a run stopped after its first question keeps that row
    limit.press("Enter")
    deadline = time.monotonic() + 60
    while run.count() != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    run.click()
    page.get_by_text("1 of 3 questions").wait_for(timeout=180_000)
    page.get_by_role("button", name="Stop the run").click()
    page.get_by_text("The last run was stopped after 1 questions").wait_for(timeout=120_000)
