"""llmapp in a Jupyter notebook: :class:`Chatbot`.

A view like the pages and the CLI: it calls :func:`llmapp.chat.start_reply`
(or, with a collection, :func:`llmapp.rag.answer.start_answer`) and renders.
In a Jupyter kernel the answer streams live as Markdown into one display
handle (``IPython.display.display(..., display_id=True)``, then
``handle.update``), coalesced like the pages' stream; anywhere else it is
printed as it arrives. The stats line follows the answer.

IPython is not a dependency of llmapp: a notebook brings it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from llmapp import config
from llmapp.chat import ChatMessage, ChatStore, start_reply
from llmapp.errors import ConfigError, LlmappError
from llmapp.memory import Memory
from llmapp.providers import GenerationParams
from llmapp.settings import Settings, resolve_choices
from llmapp.streaming import coalesce

SAVE_VERSION = 1
"""Version of the file :meth:`Chatbot.save` writes."""
NOTEBOOK_RENDER_INTERVAL_S = 0.1
"""Seconds between two updates of the streamed answer in a notebook: each
update re-renders the whole Markdown in the browser."""


def in_jupyter() -> bool:
    """True inside a Jupyter kernel (where Markdown renders), False in a
    terminal IPython or plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class Chatbot:
    """A conversation with a model, for notebooks and scripts.

    Args:
        provider: ``local``, ``openai`` or ``openai-compatible``; default:
            what the settings choose (the bundled model when nothing is set).
        model: the provider's model name (for local: a GGUF path).
        system_prompt: sent first on every turn.
        max_tokens: completion tokens at most, per answer.
        temperature: 0 to 2.
        memory: ``token-budget`` (default: the newest turns that fit the
            window), ``window`` (the last ``k`` turns), ``summary`` or
            ``full``; see :mod:`llmapp.memory`.
        k: turns kept verbatim by ``window`` and ``summary``.
        collection: answer from this Chroma collection, with numbered
            sources (stage 3), instead of from the model alone.
        settings: resolved settings; default the environment and ``.env``
            (:func:`llmapp.settings.resolve`), with ``provider`` and ``model``
            on top.
        live: stream into a Jupyter display handle; default when in Jupyter.

    Raises:
        ConfigError: an unknown provider or memory strategy, or a bad value.
    """

    def __init__(self, provider: str | None = None, model: str | None = None, *,
                 system_prompt: str = config.DEFAULT_SYSTEM_PROMPT,
                 max_tokens: int = config.DEFAULT_MAX_TOKENS,
                 temperature: float = config.DEFAULT_TEMPERATURE,
                 memory: str = "token-budget", k: int = 4, collection: str | None = None,
                 settings: Settings | None = None, live: bool | None = None) -> None:
        self.settings = settings or resolve_choices(provider=provider, model=model,
                                                    label="notebook")
        self.system_prompt = system_prompt
        self.params = GenerationParams(temperature=temperature, max_tokens=max_tokens)
        self.memory = Memory(memory.replace("-", "_"), k)
        self.collection = collection
        self.live = in_jupyter() if live is None else live
        self.store = ChatStore()
        self._kb = None
        self._guard: Any = False

    @property
    def history(self) -> list[dict[str, str]]:
        """The conversation as ``{"role", "content"}`` dicts, oldest first
        (failed replies and what the safety filter withheld left out)."""
        return self.store.history()

    @property
    def last(self) -> ChatMessage | None:
        """The last message, with its stats, sources and notices."""
        return self.store.messages[-1] if self.store.messages else None

    def reset(self) -> None:
        """Forget the conversation (the settings stay)."""
        self.store.clear()

    def ask(self, question: str) -> str:
        """Ask, stream the answer, and return its text.

        The answer streams into the notebook (or stdout) with the stats line
        under it. A failure is shown as one line, not a traceback, and kept
        in the transcript; the question stays and the method returns "".
        """
        if not question or not question.strip():
            self._show_error("Ask something: the question is empty.")
            return ""
        self.store.add_user(question)
        try:
            pending = self._start()
            text = self._render(pending.stream)
            message = pending.message()
        except LlmappError as exc:
            failed = ChatMessage("assistant", "", error=str(exc),
                                 retryable=getattr(exc, "retryable", False))
            self.store.add(failed)
            self._show_error(str(exc))
            return ""
        self.store.add(message)
        self._show_footer(message)
        return "" if message.withheld else text or message.content

    def _start(self):
        guard = self._guard_once()
        if self.collection:
            from llmapp.rag.answer import start_answer

            return start_answer(self._knowledge_base(), self.collection, self.store,
                                self.settings, self.params, guard=guard)
        reply = start_reply(self.store, self.settings, self.params, self.system_prompt,
                            memory=self.memory, summary_state=self.store.summary_state,
                            guard=guard)
        state = getattr(reply.budget, "summary_state", None)
        if state is not None:
            self.store.summary_state = state
        self.store.last_budget = reply.budget
        return reply

    def _guard_once(self):
        if self._guard is False:
            from llmapp.safety import load_guard

            self._guard, _ = load_guard(self.settings)
        return self._guard

    def _knowledge_base(self):
        if self._kb is None:
            from llmapp.rag.store import knowledge_base

            self._kb = knowledge_base(self.settings)
        return self._kb

    def _render(self, stream: Iterable[str]) -> str:
        parts: list[str] = []
        if self.live:
            from IPython.display import Markdown, display

            handle = display(Markdown(""), display_id=True)
            for piece in coalesce(stream, NOTEBOOK_RENDER_INTERVAL_S):
                parts.append(piece)
                handle.update(Markdown("".join(parts)))
        else:
            for piece in stream:
                parts.append(piece)
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
        return "".join(parts)

    def _footer_lines(self, message: ChatMessage) -> list[str]:
        lines = list(message.notices)
        if message.sources:
            from llmapp.rag.answer import source_line

            lines += [source_line(s) for s in message.sources]
        if message.stats is not None:
            lines.append(message.stats.summary())
        return lines

    def _show_footer(self, message: ChatMessage) -> None:
        lines = self._footer_lines(message)
        if not lines:
            return
        if self.live:
            from IPython.display import Markdown, display

            display(Markdown("  \n".join(f"<small>{_escape(line)}</small>" for line in lines)))
        else:
            print("\n".join(lines), file=sys.stderr)

    def _show_error(self, text: str) -> None:
        if self.live:
            from IPython.display import Markdown, display

            display(Markdown(f"**⚠️ {_escape(text)}**"))
        else:
            print(f"llmapp: {text}", file=sys.stderr)

    def save(self, path: str | Path) -> Path:
        """Write the conversation as JSON (messages with their stats, the
        summary state; never a setting or a key). Returns the path.

        Raises:
            OSError: the file cannot be written.
        """
        path = Path(path)
        data = {"version": SAVE_VERSION, "messages": [m.to_dict() for m in self.store],
                "summary_state": list(self.store.summary_state)}
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    def load(self, path: str | Path) -> Chatbot:
        """Replace the conversation with one :meth:`save` wrote; returns self.

        Raises:
            OSError: the file cannot be read.
            ConfigError: it is not a saved conversation (the current one is
                kept).
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != SAVE_VERSION:
                raise ValueError(f"not a version-{SAVE_VERSION} llmapp conversation")
            messages = [ChatMessage.from_dict(m) for m in data["messages"]]
            summary, folded = data.get("summary_state", ["", 0])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} cannot be loaded: {exc}.") from None
        self.store.clear()
        self.store.messages = messages
        self.store.summary_state = (str(summary), int(folded))
        return self


def _escape(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")
