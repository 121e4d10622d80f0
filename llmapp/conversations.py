"""Persisted conversations in SQLite: list, resume, rename, delete, export.

The store keeps conversations keyed by id, with a title and created/updated
times (seconds since the epoch, UTC), and their messages in order, with each
reply's stats. There is no login: every user of one deployment shares the
list. A session receives a conversation's messages only when it opens it.

A file that is not a readable SQLite database, or one locked by another
process, raises :class:`StoreError` with what to do; it is never silently
replaced, so nothing is lost.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from llmapp.chat import ChatMessage, ChatStore
from llmapp.errors import LlmappError
from llmapp.streaming import ReplyStats

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    summarized INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    stats TEXT,
    extra TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
"""
LOCK_TIMEOUT_S = 5.0
TITLE_LENGTH = 60


class StoreError(LlmappError):
    """The conversation store cannot be read or written; the message says why."""


@dataclass(frozen=True)
class Conversation:
    """One conversation's header.

    Attributes:
        id: stable identifier (a UUID4 hex string).
        title: shown in the list; the first user message until renamed.
        created_at, updated_at: seconds since the epoch.
        messages: how many messages it holds.
    """

    id: str
    title: str
    created_at: float
    updated_at: float
    messages: int = 0


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///relative/path`` or ``sqlite:////abs/path`` URL,
    or of a plain path.

    Raises:
        StoreError: any other scheme (Postgres is not supported yet).
    """
    if "://" not in url:
        return Path(url)
    scheme, _, rest = url.partition("://")
    if scheme != "sqlite":
        raise StoreError(f"Only sqlite:/// database URLs are supported, not {scheme}://.")
    return Path(rest[1:] if rest.startswith("/") else rest)


class ConversationStore:
    """Conversations in one SQLite file, safe to share between threads.

    Args:
        path: the database file; its folder is created if missing.

    Raises:
        StoreError: the file is not a SQLite database, is locked, or cannot
            be created.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S,
                                       check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode = WAL")  # readers never block the writer
            self._db.executescript(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
            if "extra" not in columns:  # a store made before agent steps were kept
                self._db.execute("ALTER TABLE messages ADD COLUMN extra TEXT")
            self._db.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.Error, OSError) as exc:
            raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> StoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreError(f"The conversation store {self.path} is locked by another "
                              f"process (waited {LOCK_TIMEOUT_S:.0f} s). Try again.")
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return StoreError(f"The conversation store {self.path} is damaged ({text}). It was "
                              "left untouched: move it aside to start a new one, or point "
                              "LLMAPP_DATABASE_URL at another file.")
        return StoreError(f"The conversation store {self.path} cannot be used: {text}.")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _run(self, *statements: tuple[str, tuple]) -> None:
        try:
            with self._write() as db:
                for sql, args in statements:
                    db.execute(sql, args)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def create(self, title: str = "New conversation") -> Conversation:
        """A new, empty conversation."""
        now = time.time()
        conv = Conversation(uuid.uuid4().hex, title.strip() or "New conversation", now, now)
        self._run(("INSERT INTO conversations (id, title, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?)", (conv.id, conv.title, now, now)))
        return conv

    def list(self) -> list[Conversation]:
        """All conversations, most recently updated first."""
        rows = self._read(
            "SELECT c.id, c.title, c.created_at, c.updated_at, COUNT(m.seq) FROM conversations c "
            "LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id "
            "ORDER BY c.updated_at DESC, c.created_at DESC")
        return [Conversation(*row) for row in rows]

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
        title = title.strip()
        if not title:
            raise StoreError("A title cannot be blank.")
        self.get(conversation_id)
        self._run(("UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?",
                   (title[:200], time.time(), conversation_id)))

    def delete(self, conversation_id: str) -> None:
        """Delete a conversation and its messages."""
        self._run(("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,)),
                  ("DELETE FROM conversations WHERE id = ?", (conversation_id,)))

    def append(self, conversation_id: str, message: ChatMessage) -> None:
        """Add a message at the end. Failed replies are not stored: they are
        retried, not remembered. The first user message becomes the title of
        a conversation still called "New conversation".
        """
        if message.error is not None:
            return
        now = time.time()
        stats = json.dumps(message.stats.to_dict()) if message.stats else None
        extra = json.dumps({"sources": message.sources, "steps": message.steps}) \
            if message.sources or message.steps else None
        self.get(conversation_id)
        statements = [
            ("INSERT INTO messages (conversation_id, seq, role, content, stats, extra, "
             "created_at) VALUES (?, (SELECT COALESCE(MAX(seq), -1) + 1 FROM messages WHERE "
             "conversation_id = ?), ?, ?, ?, ?, ?)",
             (conversation_id, conversation_id, message.role, message.content, stats, extra,
              now)),
            ("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)),
        ]
        if message.role == "user":
            title = " ".join(message.content.split())[:TITLE_LENGTH] or "New conversation"
            statements.append(("UPDATE conversations SET title = ? WHERE id = ? AND title = "
                               "'New conversation'", (title, conversation_id)))
        self._run(*statements)

    def messages(self, conversation_id: str) -> list[ChatMessage]:
        """The stored messages, oldest first."""
        rows = self._read("SELECT role, content, stats, extra FROM messages WHERE "
                          "conversation_id = ? ORDER BY seq", (conversation_id,))
        out = []
        for role, content, stats, extra in rows:
            more = json.loads(extra) if extra else {}
            out.append(ChatMessage(role, content,
                                   stats=ReplyStats(**json.loads(stats)) if stats else None,
                                   sources=more.get("sources", []), steps=more.get("steps", [])))
        return out

    def load(self, conversation_id: str) -> PersistedChatStore:
        """The conversation as a chat store that saves what is added to it."""
        return PersistedChatStore(self, conversation_id)

    def summary_state(self, conversation_id: str) -> tuple[str, int]:
        """``(summary, n_messages_folded)`` kept by summary memory."""
        rows = self._read("SELECT summary, summarized FROM conversations WHERE id = ?",
                          (conversation_id,))
        return (rows[0][0], rows[0][1]) if rows else ("", 0)

    def save_summary_state(self, conversation_id: str, state: tuple[str, int]) -> None:
        """Keep summary memory's state for the next turn."""
        self._run(("UPDATE conversations SET summary = ?, summarized = ? WHERE id = ?",
                   (state[0], state[1], conversation_id)))


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

    def add(self, message: ChatMessage) -> ChatMessage:
        super().add(message)
        self.db.append(self.conversation_id, message)
        return message

    def add_user(self, text: str) -> ChatMessage:
        message = super().add_user(text)
        self.db.append(self.conversation_id, message)
        return message
