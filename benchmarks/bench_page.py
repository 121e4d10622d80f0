"""The app as users run it: a fresh clone, the README's first command, a real
browser. Page streaming speed against the CLI's, idle CPU, first render, peak
memory, and four sessions at once.

1. ``git clone`` this repository (its last commit) into a new folder and run
   the README's install, the venv inside the folder, as the README puts it.
2. ``.venv/bin/streamlit run Home.py`` there, nothing else changed.
3. Debian's Chromium, driven by Playwright, then measures:

   * **first render**: from opening Home to the provider status drawn;
   * **idle CPU**: the server's CPU time over 10 s with the page open, idle;
   * **page tokens/s against CLI tokens/s**: the same prompt at the page's
     default settings, alternately on the Simple Prompt page (tokens/s as the
     reader sees them: completion tokens over the time from the first to the
     last change of the text on screen) and with ``llmapp chat`` (its own
     stats line); the ratio of the medians;
   * **peak RSS** of the server (``VmHWM``) after Home, Simple Prompt (one
     reply) and RAG (the sample handbook, loaded on the first visit, then one
     answer);
   * **four sessions at once**: four browser sessions send the prompt
     together; each one's first token, and the tokens/s of all four.

    python benchmarks/bench_page.py [--runs 3] [--clone DIR]

Needs Playwright (the test extra) and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from results_file import save

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
README_INSTALL = "python3 -m venv .venv && .venv/bin/pip install --no-deps -r requirements.txt"
PROMPT = "Write a detailed essay about the history of sailing ships."
RAG_QUESTION = "What is chunk overlap?"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLMAPP_"))}


def prepare(clone: Path | None) -> tuple[Path, dict]:
    """A fresh clone with the README's venv in it (or an existing clone)."""
    info: dict = {}
    if clone is not None and (clone / ".venv").is_dir():
        for step in (["fetch", "--quiet", str(ROOT), "HEAD"], ["reset", "--quiet", "--hard",
                                                                 "FETCH_HEAD"]):
            subprocess.run(["git", "-C", str(clone), *step], check=True)
        return clone, info
    folder = clone or Path(tempfile.mkdtemp(prefix="llmapp-bench-")) / "llmapp"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(folder)], check=True)
    started = time.perf_counter()
    subprocess.run(README_INSTALL, shell=True, cwd=folder, check=True, env=clean_env(),
                   stdout=subprocess.DEVNULL)
    info["install_s"] = time.perf_counter() - started
    out = subprocess.run(["du", "-sm", str(folder / ".venv")], capture_output=True, text=True)
    info["venv_mb"] = int(out.stdout.split()[0])
    return folder, info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path, port: int) -> subprocess.Popen:
    log = (folder / "streamlit-bench.log").open("w")
    proc = subprocess.Popen([str(folder / ".venv/bin/streamlit"), "run", "Home.py",
                             "--server.port", str(port), "--server.headless", "true"],
                            cwd=folder, env=clean_env(), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("streamlit did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def completion_tokens(stats: str) -> int:
    match = re.search(r"(\d+) completion tokens", stats)
    if match is None:
        raise RuntimeError(f"no token count in {stats!r}")
    return int(match.group(1))


def ask_on_page(page, url: str, prompt: str, timeout_s: float = 180) -> dict:
    """Send ``prompt`` on the Simple Prompt page; watch the reply render."""
    page.goto(f"{url}/Simple_Prompt")
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=60_000)
    box.fill(prompt)
    sent = time.perf_counter()
    box.press("Enter")
    return watch_reply(page, sent, timeout_s)


def watch_reply(page, sent: float, timeout_s: float, marker: str = "tokens/s") -> dict:
    """TTFT and tokens/s of the first reply on the page, until its stats
    line (which contains ``marker``) shows. An answer quoted by llmapp (the
    RAG page's extractive answers) has no token count: its tokens are 0."""
    reply = page.get_by_test_id("stChatMessage").nth(1)
    stats = reply.get_by_text(marker)
    first = last = None
    seen = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stats.count() and stats.first.is_visible():
            break
        if reply.count():
            body = reply.get_by_test_id("stMarkdownContainer").first
            length = len(body.inner_text()) if body.count() else 0
            if length != seen:
                now = time.perf_counter()
                first = first or now
                last = now
                seen = length
        time.sleep(0.02)
    else:
        raise RuntimeError("the reply did not finish in time")
    text = stats.first.inner_text()
    tokens = completion_tokens(text) if "completion tokens" in text else 0
    return {"ttft_s": first - sent, "tokens": tokens,
            "tokens_per_s": (tokens - 1) / (last - first) if tokens and last and last > first
            else 0.0,
            "end": last}


def ask_cli(folder: Path, prompt: str) -> dict:
    out = subprocess.run([str(folder / ".venv/bin/llmapp"), "chat", prompt, "--cache", "off"], cwd=folder,
                         env=clean_env(), capture_output=True, text=True, check=True)
    rate = re.search(r"(\d+) tokens/s", out.stderr)
    ttft = re.search(r"TTFT ([\d.]+) s", out.stderr)
    return {"tokens_per_s": float(rate.group(1)), "ttft_s": float(ttft.group(1)),
            "tokens": completion_tokens(out.stderr)}


def four_at_once(browser, url: str) -> dict:
    contexts = [browser.new_context() for _ in range(4)]
    pages = [c.new_page() for c in contexts]
    boxes = []
    for page in pages:
        page.goto(f"{url}/Simple_Prompt")
        box = page.get_by_test_id("stChatInputTextArea")
        box.wait_for(timeout=60_000)
        box.fill(PROMPT)
        boxes.append(box)
    for box in boxes:
        box.press("Enter")
    firsts, tokens, ends = [], 0, []
    for page in pages:  # each page keeps streaming while another is watched
        page.get_by_test_id("stChatMessage").nth(1).get_by_text("tokens/s").wait_for(
            timeout=300_000)
        caption = page.get_by_test_id("stChatMessage").nth(1).get_by_text("tokens/s")
        text = caption.inner_text()
        tokens += completion_tokens(text)
        firsts.append(float(re.search(r"TTFT ([\d.]+) s", text).group(1)))
        ends.append(float(re.search(r"([\d.]+) s total", text).group(1)))
    for c in contexts:
        c.close()
    return {"first_token_s": sorted(round(f, 2) for f in firsts),
            "aggregate_tokens_per_s": tokens / max(ends), "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clone", type=Path, help="reuse (or make) this clone")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    folder, result = prepare(args.clone)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(folder, port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking"])
            page = browser.new_page()
            started = time.perf_counter()
            page.goto(url)
            page.get_by_text("Active: local").wait_for(timeout=60_000)
            result["first_render_s"] = time.perf_counter() - started
            time.sleep(2)
            before = cpu_seconds(server.pid)
            time.sleep(10)
            result["idle_cpu_share"] = (cpu_seconds(server.pid) - before) / 10
            pages, clis = [], []
            for _ in range(args.runs):
                clis.append(ask_cli(folder, PROMPT))
                context = browser.new_context()
                pages.append(ask_on_page(context.new_page(), url, PROMPT))
                context.close()
            result["page"] = {k: statistics.median(r[k] for r in pages)
                              for k in ("tokens_per_s", "ttft_s", "tokens")}
            result["cli"] = {k: statistics.median(r[k] for r in clis)
                             for k in ("tokens_per_s", "ttft_s", "tokens")}
            result["page_cli_ratio"] = (result["page"]["tokens_per_s"]
                                        / result["cli"]["tokens_per_s"])
            page.goto(f"{url}/RAG")
            box = page.get_by_test_id("stChatInputTextArea")
            box.wait_for(timeout=120_000)
            page.get_by_placeholder("Ask the handbook collection").wait_for(timeout=120_000)
            box.fill(RAG_QUESTION)
            sent = time.perf_counter()
            box.press("Enter")
            result["rag"] = watch_reply(page, sent, 180, marker="s total")
            result["rag"].pop("end")
            result["peak_rss_mb"] = peak_rss_mb(server.pid)
            result["four_sessions"] = four_at_once(browser, url)
            result["peak_rss_mb_after_four"] = peak_rss_mb(server.pid)
            browser.close()
    finally:
        server.terminate()
        try:
            result["server_exit_s"] = _stopped_within(server, 20)
        except subprocess.TimeoutExpired:
            server.kill()
            result["server_exit_s"] = None
            print("the server did not stop within 20 s of SIGTERM; killed", file=sys.stderr)
        if args.clone is None:
            shutil.rmtree(folder.parent, ignore_errors=True)
    report(result)


def _stopped_within(server: subprocess.Popen, timeout_s: float) -> float:
    """Seconds the server took to exit after SIGTERM."""
    started = time.perf_counter()
    server.wait(timeout_s)
    return time.perf_counter() - started


def report(r: dict) -> None:
    if "install_s" in r:
        print(f"README install: {r['install_s']:.0f} s, venv {r['venv_mb']} MB")
    print(f"first render of Home: {r['first_render_s']:.2f} s")
    print(f"idle server CPU over 10 s: {r['idle_cpu_share'] * 100:.1f}% of a core "
          "(target < 5%)")
    print(f"tokens/s, page {r['page']['tokens_per_s']:.1f} vs CLI {r['cli']['tokens_per_s']:.1f}"
          f" (medians, ~{r['page']['tokens']:.0f} tokens): ratio {r['page_cli_ratio']:.2f} "
          "(target >= 0.75)")
    rag = r["rag"]
    speed = (f"{rag['tokens_per_s']:.1f} tokens/s, {rag['tokens']} tokens" if rag["tokens"]
             else "quoted from the chunks (no tokens generated)")
    print(f"RAG answer on the page: first text at {rag['ttft_s']:.2f} s, {speed}")
    print(f"peak server RSS after Home, Simple Prompt and RAG: {r['peak_rss_mb']:.0f} MB "
          "(target <= 690 MB)")
    four = r["four_sessions"]
    print(f"4 page sessions at once: {four['aggregate_tokens_per_s']:.1f} tokens/s in all, "
          f"first tokens at {four['first_token_s']} s; peak RSS then "
          f"{r['peak_rss_mb_after_four']:.0f} MB")
    save("page.json", r)


if __name__ == "__main__":
    main()
