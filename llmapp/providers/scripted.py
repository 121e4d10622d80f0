"""A scripted tool-calling chat model, for tests of the pages only.

It is active only when the environment variable ``LLMAPP_SCRIPTED_MODEL``
names a JSON file: a list of replies, each ``{"tool": name, "args": {...}}``
or ``{"answer": text}``, given in order, one per model call, across the
process. No user can pick it in the UI; tests set the variable.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

ENV = "LLMAPP_SCRIPTED_MODEL"
_POSITIONS: dict[str, int] = {}
_LOCK = threading.Lock()


def script_path() -> str | None:
    """The script file, when the scripted model is switched on."""
    return os.environ.get(ENV) or None


class ScriptedChatModel(BaseChatModel):
    """Replies from the script in order; ``bind_tools`` is accepted as is."""

    path: str

    @property
    def _llm_type(self) -> str:
        return "llmapp-scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        script = json.loads(Path(self.path).read_text())
        with _LOCK:
            n = _POSITIONS.get(self.path, 0)
            _POSITIONS[self.path] = n + 1
        step = script[n] if n < len(script) else {"answer": "(script ended)"}
        if "tool" in step:
            message = AIMessage("", tool_calls=[{"name": step["tool"], "args": step["args"],
                                                 "id": f"call_{n}", "type": "tool_call"}])
        else:
            message = AIMessage(step["answer"])
        return ChatResult(generations=[ChatGeneration(message=message)])
