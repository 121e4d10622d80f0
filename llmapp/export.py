"""Exports of conversations: Markdown and JSON transcripts, and OpenAI
fine-tuning data (JSONL).

The fine-tuning file has one line per conversation, ``{"messages": [...]}``,
with roles ``system``, ``user`` and ``assistant``, the chat format of OpenAI's
supervised fine-tuning (platform.openai.com/docs/guides/fine-tuning, "Preparing
your dataset"). A conversation needs at least one assistant reply to teach
anything, so empty ones are left out, and a trailing unanswered user message is
dropped. Stats travel in the JSON transcript only; keys never appear anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from llmapp.chat import ChatMessage
from llmapp.conversations import Conversation
from llmapp.errors import LlmappError


class ExportError(LlmappError):
    """Nothing to export, with what to do about it."""


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _require(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    kept = [m for m in messages if m.error is None]
    if not kept:
        raise ExportError("This conversation is empty: send a message before exporting it.")
    return kept


def to_markdown(conversation: Conversation, messages: Sequence[ChatMessage]) -> str:
    """A readable transcript: a heading, then each message under its role.

    Raises:
        ExportError: the conversation has no messages.
    """
    lines = [f"# {conversation.title}", "",
             f"_Created {_when(conversation.created_at)}, updated "
             f"{_when(conversation.updated_at)}._", ""]
    for message in _require(messages):
        lines += [f"## {message.role.capitalize()}", "", message.content, ""]
        if message.stats is not None:
            lines += [f"<sub>{message.stats.summary()}</sub>", ""]
    return "\n".join(lines)


def to_json(conversation: Conversation, messages: Sequence[ChatMessage]) -> str:
    """The transcript as JSON: ``{id, title, created_at, updated_at,
    messages: [{role, content, stats}]}``, times in ISO 8601 UTC.

    Raises:
        ExportError: the conversation has no messages.
    """
    def iso(ts: float) -> str:
        return datetime.fromtimestamp(ts, timezone.utc).isoformat()

    data = {
        "id": conversation.id, "title": conversation.title,
        "created_at": iso(conversation.created_at), "updated_at": iso(conversation.updated_at),
        "messages": [{"role": m.role, "content": m.content,
                      "stats": m.stats.to_dict() if m.stats else None}
                     for m in _require(messages)],
    }
    return json.dumps(data, ensure_ascii=False, indent=2)


def finetune_record(messages: Sequence[ChatMessage], system_prompt: str = "") -> dict | None:
    """One fine-tuning example, or None if it has no assistant reply."""
    chat = [{"role": m.role, "content": m.content} for m in messages
            if m.error is None and m.role in ("user", "assistant") and m.content.strip()]
    while chat and chat[-1]["role"] != "assistant":
        chat.pop()
    if not any(m["role"] == "assistant" for m in chat):
        return None
    head = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return {"messages": head + chat}


def to_finetune_jsonl(conversations: Iterable[Sequence[ChatMessage]],
                      system_prompt: str = "") -> str:
    """OpenAI fine-tuning JSONL, one ``{"messages": [...]}`` line per conversation.

    Raises:
        ExportError: no conversation has an assistant reply.
    """
    lines = [json.dumps(record, ensure_ascii=False) for messages in conversations
             if (record := finetune_record(messages, system_prompt)) is not None]
    if not lines:
        raise ExportError("No conversation has an answer yet: there is nothing to fine-tune on.")
    return "\n".join(lines) + "\n"
