"""Helpers shared by the tests (``tests/`` is on pytest's pythonpath)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from llmapp.settings import Settings, resolve

ROOT = Path(__file__).resolve().parents[1]
SERVER_KEY = "test-key-0123456789"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers (any HTTP status), the process dies, or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers, even if with 401
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout_s} s")


@dataclass
class Server:
    base_url: str
    key: str


def compatible_settings(server: Server, key: str | None = None, **extra: str) -> Settings:
    """Settings that point the openai-compatible provider at ``server``."""
    values = {"OPENAI_COMPATIBLE_BASE_URL": server.base_url, "OPENAI_COMPATIBLE_MODEL": "smollm2",
              "OPENAI_COMPATIBLE_CONTEXT_WINDOW": "2048",
              "OPENAI_COMPATIBLE_API_KEY": server.key if key is None else key, **extra}
    return resolve(environ=values, env_file={})


def texts(at) -> str:
    """Everything the page shows as text, for searching."""
    parts = []
    for kind in ("markdown", "caption", "error", "success", "info", "warning", "title",
                 "text_input", "text_area"):
        for element in getattr(at, kind):
            parts.append(str(element.value))
            parts.append(str(getattr(element, "label", "")))
    return "\n".join(parts)


class ScriptedChatModel:
    """A chat model at llmapp's boundary: returns scripted replies in order and
    records every prompt it was given (as text)."""

    def __init__(self, replies):
        from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
        from langchain_core.messages import AIMessage

        self.prompts: list[str] = []
        self._model = GenericFakeChatModel(messages=iter(AIMessage(r) for r in replies))

    def invoke(self, prompt):
        self.prompts.append(prompt if isinstance(prompt, str) else str(prompt))
        return self._model.invoke(prompt)


class LengthCounter:
    """Counts one token per character of content; messages add no overhead.
    Makes budgets easy to read in tests."""

    name = "length"
    exact = True

    def count_text(self, text):
        return len(text)

    def count_message(self, message):
        return len(message["content"])

    def count_messages(self, messages):
        return sum(len(m["content"]) for m in messages)


def chroma_settings(path, **extra):
    """Settings with the on-disk Chroma store at ``path``."""
    return resolve(environ={"LLMAPP_CHROMA_PATH": str(path), **extra}, env_file={})


def make_pdf(pages: list[str]) -> bytes:
    """A real PDF with one page per string (fpdf2)."""
    from fpdf import FPDF

    pdf = FPDF()
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def encrypt_pdf(data: bytes, password: str = "secret") -> bytes:
    """The PDF, password-protected (pypdf)."""
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def recording_chat_model(reply, delay_s: float = 0.0):
    """A LangChain chat model at llmapp's boundary: ``reply(prompt_text)`` gives
    each answer; every call's prompt and start/end times are recorded in
    ``model.calls`` as ``(prompt_text, start, end)``."""
    import threading

    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    lock = threading.Lock()

    class Recording(BaseChatModel):
        calls: list = []

        @property
        def _llm_type(self) -> str:
            return "recording"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            text = "\n".join(f"{m.type}: {m.text}" for m in messages)
            start = time.monotonic()
            time.sleep(delay_s)
            with lock:
                self.calls.append((text, start, time.monotonic()))
            return ChatResult(generations=[ChatGeneration(message=AIMessage(reply(text)))])

    return Recording(calls=[])


def scripted_tool_model(script):
    """A tool-calling chat model at llmapp's boundary: it returns the scripted
    ``AIMessage`` values in order (with ``tool_calls`` or an answer) and records
    the messages it was given in ``model.seen``."""
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class Scripted(BaseChatModel):
        script: list = []
        seen: list = []

        @property
        def _llm_type(self) -> str:
            return "scripted-tools"

        def bind_tools(self, tools, **kwargs):
            return self

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            self.seen.append(list(messages))
            message = self.script.pop(0) if self.script else AIMessage("(script ended)")
            return ChatResult(generations=[ChatGeneration(message=message)])

    return Scripted(script=list(script), seen=[])


def call(name, id_, **args):
    """An AIMessage asking for one tool call."""
    from langchain_core.messages import AIMessage

    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": id_}])


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``python -m llmapp ARGS`` with ``env`` added, no stdin; output as text."""
    return subprocess.run([sys.executable, "-m", "llmapp", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env},
                          stdin=subprocess.DEVNULL)
