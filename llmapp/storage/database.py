"""A database for llmapp's stores: an SQLAlchemy engine for SQLite or
PostgreSQL, errors a user can act on, and migrations at open.

- **Writes serialize.** On SQLite a write transaction starts with
  ``BEGIN IMMEDIATE``, so two processes never both read, then both write
  (the pattern that makes SQLite answer "database is locked" at once instead
  of waiting). On PostgreSQL a store locks the row it appends under
  (``SELECT ... FOR UPDATE``). SQLite runs in WAL mode: readers never block
  the writer. The recipe is SQLAlchemy's own, "Serializable isolation /
  Savepoints / Transactional DDL" in its SQLite dialect documentation.
- **Migrations run at open** (Alembic, :mod:`llmapp.storage.migrations`),
  under a lock, so two processes that start together migrate once. A file
  made before migrations existed is recognised by its tables and stamped
  with the revision it matches, then upgraded in place.
- **Secrets stay hidden.** Every message names the database by its URL with
  the password masked (:func:`llmapp.storage.urls.mask_url`), and driver
  messages are scrubbed of it too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmapp.errors import LlmappError
from llmapp.storage.urls import database_url, mask_url, scrub, sqlite_file

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 5.0
"""How long a SQLite write waits for another process's write, in seconds."""
CONNECT_TIMEOUT_S = 5
"""How long to wait for a PostgreSQL server to answer, in seconds (libpq's
``connect_timeout``)."""
MIGRATION_LOCK = 0x6C6C6D617070  # "llmapp": the PostgreSQL advisory lock key
MIGRATIONS = str(Path(__file__).with_name("migrations"))


class StoreError(LlmappError):
    """A store cannot be read or written; the message says why and what to do,
    and never shows a password."""


class Database:
    """One database, SQLite or PostgreSQL, shared by every store and thread
    of a process.

    Args:
        url: ``sqlite:///path``, a plain file path, or
            ``postgresql://user:password@host:port/dbname`` (see
            :func:`llmapp.storage.urls.database_url`).
        upgrade: run pending migrations now (the default), which also
            proves the database can be reached.

    Attributes:
        url: the SQLAlchemy URL (holds the password: never show it).
        shown: the URL with its password masked, for people.
        kind: ``"sqlite"`` or ``"postgresql"``.

    Raises:
        StoreError: an unsupported URL, an unreachable server, a wrong
            password, a damaged or locked file, or a database made by a
            newer llmapp.
    """

    def __init__(self, url: str | Path, *, upgrade: bool = True) -> None:
        try:
            self.url = database_url(str(url))
        except ValueError as exc:
            raise StoreError(f"LLMAPP_DATABASE_URL {exc}.") from None
        self.shown = mask_url(self.url)
        self.kind = "sqlite" if self.url.startswith("sqlite:") else "postgresql"
        self.engine = self._engine()
        if upgrade:
            self.upgrade()

    def _engine(self) -> Engine:
        from sqlalchemy import create_engine, event

        if self.kind == "postgresql":
            return create_engine(self.url, pool_pre_ping=True, pool_size=2, max_overflow=4,
                                 connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
        path = sqlite_file(self.url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"The database folder {path.parent} cannot be created: "
                             f"{exc.strerror or exc}.") from None
        engine = create_engine(self.url, connect_args={"timeout": LOCK_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            write = connection.get_execution_options().get("llmapp_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading, in a transaction that is rolled back.

        Raises:
            StoreError: the database cannot be reached or read.
        """
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise self.error(exc) from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in a write transaction, committed when the block ends
        and rolled back if it raises. On SQLite it holds the write lock from
        its first statement.

        Raises:
            StoreError: the database cannot be reached or written, or is
                locked by another process for longer than
                :data:`LOCK_TIMEOUT_S`.
        """
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.connect() as conn:
                conn.execution_options(llmapp_write=True)
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise self.error(exc) from exc

    def error(self, exc: BaseException) -> StoreError:
        """A :class:`StoreError` for a driver's or Alembic's exception, in the
        user's terms, with the password masked. The original goes to the log,
        scrubbed too."""
        text = scrub(str(getattr(exc, "orig", None) or exc), self.url).strip()
        log.warning("database %s: %s", self.shown, text.splitlines()[0] if text else type(exc))
        low = text.lower()
        where = f"The database {self.shown}"
        if "password authentication failed" in low or "no password supplied" in low:
            return StoreError(f"{where} refused the user name or password. Check "
                              "LLMAPP_DATABASE_URL.")
        if "does not exist" in low and "database" in low:
            return StoreError(f"{where} does not exist on that server. Create it "
                              "(createdb) or fix the name in LLMAPP_DATABASE_URL.")
        if any(s in low for s in ("connection refused", "could not connect", "timeout expired",
                                  "could not translate host name", "name or service not known",
                                  "no route to host", "server closed the connection")):
            return StoreError(f"{where} cannot be reached ({text.splitlines()[0]}). Is the "
                              "server running, and are its host and port right?")
        if "locked" in low or "busy" in low:
            return StoreError(f"{where} is locked by another process (waited "
                              f"{LOCK_TIMEOUT_S:.0f} s). Try again.")
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            return StoreError(f"{where} is damaged ({text}). It was left untouched: move it "
                              "aside to start a new one, or point LLMAPP_DATABASE_URL at "
                              "another file.")
        if "can't locate revision" in low:
            return StoreError(f"{where} was made by a newer llmapp (its schema revision is "
                              "unknown here). Upgrade llmapp, or point LLMAPP_DATABASE_URL "
                              "at another database.")
        if "unable to open database file" in low or "readonly" in low:
            return StoreError(f"{where} cannot be opened for writing ({text}).")
        return StoreError(f"{where} cannot be used: {text.splitlines()[0] if text else exc}.")

    def _alembic(self, conn: Connection) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", MIGRATIONS)
        cfg.attributes["connection"] = conn
        return cfg

    def revision(self) -> str | None:
        """The schema revision the database is at, None when it has none."""
        from alembic.migration import MigrationContext

        with self.read() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @staticmethod
    def head() -> str:
        """The newest schema revision this llmapp knows."""
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", MIGRATIONS)
        return ScriptDirectory.from_config(cfg).get_current_head()

    def upgrade(self) -> tuple[str | None, str]:
        """Migrate to the newest revision, under a lock (PostgreSQL's advisory
        lock, SQLite's write lock) so concurrent processes migrate once.

        A database made before migrations existed (tables but no
        ``alembic_version``) is stamped with the revision its tables match,
        then upgraded.

        Returns:
            ``(revision before, revision after)``; equal when nothing ran.

        Raises:
            StoreError: as for the constructor.
        """
        from alembic import command
        from alembic.migration import MigrationContext
        from alembic.util import CommandError
        from sqlalchemy import inspect, text

        head = self.head()
        try:
            with self.write() as conn:
                if self.kind == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                 {"key": MIGRATION_LOCK})
                before = MigrationContext.configure(conn).get_current_revision()
                if before == head:
                    return before, head
                cfg = self._alembic(conn)
                if before is None and inspect(conn).has_table("conversations"):
                    columns = {c["name"] for c in inspect(conn).get_columns("messages")}
                    before = "0002" if "extra" in columns else "0001"
                    log.info("database %s predates migrations; stamped %s", self.shown, before)
                    command.stamp(cfg, before)
                command.upgrade(cfg, "head")
        except CommandError as exc:
            raise self.error(exc) from exc
        log.info("database %s migrated from %s to %s", self.shown, before, head)
        return before, head

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
