"""Feedback on replies: a thumbs up or down, and an optional corrected answer.

Every chat page (and anything else that holds a :class:`~llmapp.chat.ChatStore`)
can rate a reply. A rating is kept in the ``feedback`` table of the app's
database (:mod:`llmapp.storage`: SQLite by default, or PostgreSQL), one row per
reply, keyed by the reply's :attr:`~llmapp.chat.ChatMessage.id`. The row holds
what the reply answered (the system prompt and the history before it), so it
stays usable after the chat is cleared or the conversation deleted: it is
what stage 7 builds fine-tuning datasets from (:meth:`Feedback.example`) and
checks the LLM judge against.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from llmapp.chat import ChatMessage, ChatStore
from llmapp.storage import Database, StoreError

UP, DOWN = 1, -1
"""Ratings as stored: thumbs up, thumbs down."""
CORRECTION_MAX_CHARS = 20_000
"""Longest corrected answer kept, in characters."""
_KEEP = object()


@dataclass(frozen=True)
class Feedback:
    """Feedback on one reply.

    Attributes:
        id: the reply's message id.
        page: where it was given (``simple``, ``rag``, ``memory``, ...).
        rating: :data:`UP` (1), :data:`DOWN` (-1), or None (a correction only).
        correction: a better answer written by the user, or None.
        context: what came before the reply, ``[{"role", "content"}]``, the
            system prompt first when there was one.
        reply: the reply as shown.
        model: ``provider:model`` that wrote the reply, when known.
        conversation_id: the stored conversation it belongs to, or None.
        created_at, updated_at: seconds since the epoch (UTC).
    """

    id: str
    page: str
    rating: int | None
    correction: str | None
    context: list[dict[str, str]]
    reply: str
    model: str | None
    conversation_id: str | None
    created_at: float
    updated_at: float

    def example(self) -> dict | None:
        """The reply as a fine-tuning example in OpenAI's chat format,
        ``{"messages": [...context, {"role": "assistant", "content": ...}]}``:
        the correction when there is one, else the reply when it was rated
        up. None for a reply rated down and not corrected, or one without a
        user message before it."""
        answer = self.correction if self.correction else \
            self.reply if self.rating == UP else None
        if answer is None or not any(m["role"] == "user" for m in self.context):
            return None
        return {"messages": [*self.context, {"role": "assistant", "content": answer}]}


def save_feedback(database: Database, store: ChatStore, message: ChatMessage, *,
                  rating: int | None | object = _KEEP,
                  correction: str | None | object = _KEEP) -> Feedback | None:
    """Rate ``message`` (a reply in ``store``) and/or store a correction of it.

    Arguments left out keep what was saved before. When neither a rating nor
    a correction remains, the row is deleted and None returned.

    Args:
        rating: :data:`UP`, :data:`DOWN`, or None to take the rating back.
        correction: a better answer; blank or None takes it back.

    Raises:
        StoreError: ``message`` is not a finished reply, a rating other than
            1, -1 or None, a correction over :data:`CORRECTION_MAX_CHARS`, or
            the database failed.
    """
    from sqlalchemy import select

    from llmapp.storage.schema import feedback as f

    if not message.ratable:
        raise StoreError("Only a finished reply can be rated.")
    if rating is not _KEEP and rating not in (UP, DOWN, None):
        raise StoreError(f"A rating is 1 (up), -1 (down) or none, not {rating!r}.")
    if correction is not _KEEP:
        correction = (correction or "").strip() or None
        if correction is not None and len(correction) > CORRECTION_MAX_CHARS:
            raise StoreError(f"A correction can be at most {CORRECTION_MAX_CHARS:,} characters "
                             f"long; this one has {len(correction):,}.")
    now = time.time()
    with database.write() as conn:
        old = conn.execute(select(f).where(f.c.id == message.id)).first()
        new_rating = (old.rating if old else None) if rating is _KEEP else rating
        new_correction = (old.correction if old else None) if correction is _KEEP else correction
        if new_rating is None and new_correction is None:
            conn.execute(f.delete().where(f.c.id == message.id))
            return None
        values = {"rating": new_rating, "correction": new_correction, "updated_at": now}
        if old is None:
            values |= {"id": message.id, "page": store.page,
                       "conversation_id": getattr(store, "conversation_id", None),
                       "context": json.dumps(store.context_of(message)),
                       "reply": message.content, "model": _model(message),
                       "created_at": now}
            conn.execute(f.insert().values(**values))
        else:
            conn.execute(f.update().where(f.c.id == message.id).values(**values))
    return feedback_for(database, [message.id]).get(message.id)


def feedback_for(database: Database, ids: Iterable[str]) -> dict[str, Feedback]:
    """The feedback on these replies, by message id (replies without any are
    absent)."""
    from sqlalchemy import select

    from llmapp.storage.schema import feedback as f

    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    with database.read() as conn:
        rows = conn.execute(select(f).where(f.c.id.in_(wanted))).all()
    return {row.id: _feedback(row) for row in rows}


def list_feedback(database: Database, pages: Sequence[str] | None = None) -> list[Feedback]:
    """All feedback, oldest first; only from ``pages`` when given."""
    from sqlalchemy import select

    from llmapp.storage.schema import feedback as f

    query = select(f).order_by(f.c.created_at, f.c.id)
    if pages:
        query = query.where(f.c.page.in_(list(pages)))
    with database.read() as conn:
        return [_feedback(row) for row in conn.execute(query)]


def _feedback(row) -> Feedback:
    return Feedback(id=row.id, page=row.page, rating=row.rating, correction=row.correction,
                    context=json.loads(row.context), reply=row.reply, model=row.model,
                    conversation_id=row.conversation_id, created_at=row.created_at,
                    updated_at=row.updated_at)


def _model(message: ChatMessage) -> str | None:
    stats = message.stats
    return f"{stats.provider}:{stats.model}" if stats is not None else None
