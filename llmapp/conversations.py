"""Persisted conversations: list, resume, rename, delete, export.

The store keeps conversations keyed by id, with a title and created/updated
times (seconds since the epoch, UTC), and their messages in order, with each
reply's stats. There is no login: every user of one deployment shares the
list. A session receives a conversation's messages only when it opens it.

It runs on the database of :mod:`llmapp.storage`: a SQLite file by default,
or PostgreSQL, which several app processes (or machines) can share. Appends
to one conversation from two processes are serialized by a lock on the
conversation's row, so none is lost and their order is kept.

A file that is not a readable SQLite database, a server that cannot be
reached, or a wrong password raises :class:`StoreError` with what to do; a
file is never silently replaced, so nothing is lost.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from llmapp.chat import ChatMessage, ChatStore
from llmapp.storage import Database, StoreError
from llmapp.streaming import ReplyStats

TITLE_LENGTH = 60
NEW_TITLE = "New conversation"

__all__ = ["Conversation", "ConversationStore", "PersistedChatStore", "StoreError"]


@dataclass(frozen=True)
class Conversation:
    """One conversation's header.

    Attributes:
        id: stable identifier (a UUID4 hex string).
        title: shown in the list; the first user message until renamed.
        created_at, updated_at: seconds since the epoch.
        messages: how many messages it holds.
        page: the page it belongs to (``memory``, ``agent``, ``simple``,
            ``rag``, ``tools``).
    """

    id: str
    title: str
    created_at: float
    updated_at: float
    messages: int = 0
    page: str = "memory"


class ConversationStore:
    """Conversations in one database, safe to share between threads and
    processes.

    Args:
        where: a :class:`~llmapp.storage.Database`, a database URL
            (``sqlite:///path``, ``postgresql://...``) or a SQLite file path.
            A URL or path is opened, and migrated, here.

    Raises:
        StoreError: the database cannot be opened (see
            :class:`~llmapp.storage.Database`).
    """

    def __init__(self, where: Database | str | Path) -> None:
        self.database = where if isinstance(where, Database) else Database(where)

    def close(self) -> None:
        """Close the database's connections."""
        self.database.close()

    def _locked(self, conn, conversation_id: str) -> None:
        """Lock the conversation's row for this transaction (a no-op lock on
        SQLite, whose write transactions are already exclusive).

        Raises:
            StoreError: no such conversation.
        """
        from sqlalchemy import select

        from llmapp.storage.schema import conversations as c

        row = conn.execute(select(c.c.id).where(c.c.id == conversation_id)
                           .with_for_update()).first()
        if row is None:
            raise StoreError("That conversation no longer exists; it may have been deleted.")

    def create(self, title: str = NEW_TITLE, page: str = "memory") -> Conversation:
        """A new, empty conversation of ``page``."""
        from llmapp.storage.schema import conversations as c

        now = time.time()
        conv = Conversation(uuid.uuid4().hex, title.strip() or NEW_TITLE, now, now, page=page)
        with self.database.write() as conn:
            conn.execute(c.insert().values(id=conv.id, title=conv.title, created_at=now,
                                           updated_at=now, page=page))
        return conv

    def drop_empty(self, page: str, older_than_s: float) -> int:
        """Delete the conversations of ``page`` that hold no message and
        were created more than ``older_than_s`` seconds ago (each visit
        opens a conversation of its own, so unused ones would pile up).

        Returns:
            How many were deleted.
        """
        from sqlalchemy import exists, select

        from llmapp.storage.schema import conversations as c
        from llmapp.storage.schema import messages as m

        with self.database.write() as conn:
            stale = select(c.c.id).where(
                c.c.page == page, c.c.created_at < time.time() - older_than_s,
                ~exists().where(m.c.conversation_id == c.c.id))
            return conn.execute(c.delete().where(c.c.id.in_(stale))).rowcount

    def list(self, page: str | None = None) -> list[Conversation]:
        """The conversations of ``page`` (all of them for None), most
        recently updated first."""
        from sqlalchemy import func, select

        from llmapp.storage.schema import conversations as c
        from llmapp.storage.schema import messages as m

        query = (select(c.c.id, c.c.title, c.c.created_at, c.c.updated_at,
                        func.count(m.c.seq), c.c.page)
                 .select_from(c.outerjoin(m, m.c.conversation_id == c.c.id))
                 .group_by(c.c.id, c.c.title, c.c.created_at, c.c.updated_at, c.c.page)
                 .order_by(c.c.updated_at.desc(), c.c.created_at.desc()))
        if page is not None:
            query = query.where(c.c.page == page)
        with self.database.read() as conn:
            return [Conversation(*row) for row in conn.execute(query)]

    def get(self, conversation_id: str) -> Conversation:
        """One conversation's header.

        Raises:
            StoreError: no such conversation (deleted by another session?).
        """
        for conv in self.list():
            if conv.id == conversation_id:
                return conv
        raise StoreError("That conversation no longer exists; it may have been deleted.")

    def rename(self, conversation_id: str, title: str) -> None:
        """Give a conversation a new title (blank titles are refused).

        Raises:
            StoreError: blank title, or no such conversation.
        """
        from llmapp.storage.schema import conversations as c

        title = title.strip()
        if not title:
            raise StoreError("A title cannot be blank.")
        with self.database.write() as conn:
            self._locked(conn, conversation_id)
            conn.execute(c.update().where(c.c.id == conversation_id)
                         .values(title=title[:200], updated_at=time.time()))

    def delete(self, conversation_id: str) -> None:
        """Delete a conversation and its messages (nothing happens if it is
        already gone)."""
        from llmapp.storage.schema import conversations as c
        from llmapp.storage.schema import messages as m

        with self.database.write() as conn:
            conn.execute(m.delete().where(m.c.conversation_id == conversation_id))
            conn.execute(c.delete().where(c.c.id == conversation_id))

    def append(self, conversation_id: str, message: ChatMessage) -> None:
        """Add a message at the end. Failed replies are not stored: they are
        retried, not remembered. The first user message becomes the title of
        a conversation still called "New conversation".

        Raises:
            StoreError: no such conversation, or the database failed.
        """
        from sqlalchemy import func, select

        from llmapp.storage.schema import conversations as c
        from llmapp.storage.schema import messages as m

        if message.error is not None:
            return
        now = time.time()
        stats = json.dumps(message.stats.to_dict()) if message.stats else None
        extra = _extra(message)
        with self.database.write() as conn:
            self._locked(conn, conversation_id)
            seq = conn.execute(select(func.coalesce(func.max(m.c.seq), -1) + 1)
                               .where(m.c.conversation_id == conversation_id)).scalar_one()
            conn.execute(m.insert().values(conversation_id=conversation_id, seq=seq,
                                           role=message.role, content=message.content,
                                           stats=stats, extra=extra, created_at=now))
            conn.execute(c.update().where(c.c.id == conversation_id).values(updated_at=now))
            if message.role == "user":
                title = " ".join(message.content.split())[:TITLE_LENGTH] or NEW_TITLE
                conn.execute(c.update().where(c.c.id == conversation_id,
                                              c.c.title == NEW_TITLE).values(title=title))

    def remove_last_reply(self, conversation_id: str, role: str = "assistant") -> None:
        """Delete the conversation's last message if it is a reply (or of
        ``role``)."""
        from sqlalchemy import select

        from llmapp.storage.schema import messages as m

        with self.database.write() as conn:
            self._locked(conn, conversation_id)
            last = conn.execute(select(m.c.seq, m.c.role)
                                .where(m.c.conversation_id == conversation_id)
                                .order_by(m.c.seq.desc()).limit(1)).first()
            if last is not None and last.role == role:
                conn.execute(m.delete().where(m.c.conversation_id == conversation_id,
                                              m.c.seq == last.seq))

    def withhold_last_user(self, conversation_id: str) -> None:
        """Mark the conversation's last user message as never to be sent to
        the model (the safety filter blocked it)."""
        from sqlalchemy import select

        from llmapp.storage.schema import messages as m

        with self.database.write() as conn:
            self._locked(conn, conversation_id)
            last = conn.execute(select(m.c.seq, m.c.extra)
                                .where(m.c.conversation_id == conversation_id,
                                       m.c.role == "user")
                                .order_by(m.c.seq.desc()).limit(1)).first()
            if last is not None:
                extra = {**json.loads(last.extra or "{}"), "withheld": True}
                conn.execute(m.update().where(m.c.conversation_id == conversation_id,
                                              m.c.seq == last.seq)
                             .values(extra=json.dumps(extra)))

    def messages(self, conversation_id: str) -> list[ChatMessage]:
        """The stored messages, oldest first."""
        from sqlalchemy import select

        from llmapp.storage.schema import messages as m

        query = (select(m.c.seq, m.c.role, m.c.content, m.c.stats, m.c.extra)
                 .where(m.c.conversation_id == conversation_id).order_by(m.c.seq))
        with self.database.read() as conn:
            rows = conn.execute(query).all()
        out = []
        for seq, role, content, stats, extra in rows:
            more = json.loads(extra) if extra else {}
            out.append(ChatMessage(role, content,
                                   stats=ReplyStats(**json.loads(stats)) if stats else None,
                                   notices=more.get("notices", []),
                                   sources=more.get("sources", []), steps=more.get("steps", []),
                                   withheld=more.get("withheld", False),
                                   earlier=more.get("earlier", []),
                                   # messages stored before ids were kept get one from their place
                                   id=more.get("id") or f"{conversation_id}-{seq}"))
        return out

    def load(self, conversation_id: str) -> PersistedChatStore:
        """The conversation as a chat store that saves what is added to it."""
        return PersistedChatStore(self, conversation_id)

    def summary_state(self, conversation_id: str) -> tuple[str, int]:
        """``(summary, n_messages_folded)`` kept by summary memory."""
        from sqlalchemy import select

        from llmapp.storage.schema import conversations as c

        with self.database.read() as conn:
            row = conn.execute(select(c.c.summary, c.c.summarized)
                               .where(c.c.id == conversation_id)).first()
        return (row[0], row[1]) if row else ("", 0)

    def save_summary_state(self, conversation_id: str, state: tuple[str, int]) -> None:
        """Keep summary memory's state for the next turn."""
        from llmapp.storage.schema import conversations as c

        with self.database.write() as conn:
            conn.execute(c.update().where(c.c.id == conversation_id)
                         .values(summary=state[0], summarized=state[1]))


def _extra(message: ChatMessage) -> str:
    """The message's id, and its sources, tool steps, notices and safety mark
    when it has them, as JSON."""
    extra = {key: value for key, value in (("sources", message.sources),
                                           ("steps", message.steps),
                                           ("notices", message.notices),
                                           ("withheld", message.withheld),
                                           ("earlier", message.earlier)) if value}
    return json.dumps({"id": message.id, **extra})


class PersistedChatStore(ChatStore):
    """A :class:`~llmapp.chat.ChatStore` over one stored conversation: messages
    added to it, and summary memory's state, are saved as they come.

    Raises (from ``add``/``add_user``):
        StoreError: the store could not save; the message stays in memory.
    """

    def __init__(self, db: ConversationStore, conversation_id: str) -> None:
        super().__init__()
        self.db = db
        self.conversation_id = conversation_id
        self.messages = db.messages(conversation_id)
        self._summary_state = db.summary_state(conversation_id)

    @property
    def summary_state(self) -> tuple[str, int]:
        return self._summary_state

    @summary_state.setter
    def summary_state(self, state: tuple[str, int]) -> None:
        if getattr(self, "db", None) is not None and state != getattr(self, "_summary_state", None):
            self.db.save_summary_state(self.conversation_id, state)
        self._summary_state = state

    def withhold_last_user(self) -> None:
        """Mark the last user message withheld, here and in the database."""
        super().withhold_last_user()
        self.db.withhold_last_user(self.conversation_id)

    def drop_last_reply(self) -> None:
        """Remove the last reply here and in the database."""
        if self.messages and self.messages[-1].role == "assistant":
            self.db.remove_last_reply(self.conversation_id)
        super().drop_last_reply()

    def add(self, message: ChatMessage) -> ChatMessage:
        super().add(message)
        self.db.append(self.conversation_id, message)
        return message

    def _drop_last_user(self) -> None:
        if self.messages and self.messages[-1].role == "user":
            self.db.remove_last_reply(self.conversation_id, role="user")
        super()._drop_last_user()

    def add_user(self, text: str) -> ChatMessage:
        message = super().add_user(text)
        self.db.append(self.conversation_id, message)
        return message
