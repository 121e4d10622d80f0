"""The storage layer: URLs and masking, migrations (from files made by
earlier llmapp code), the schema against the migrations, errors that never
show a password, and two processes sharing one PostgreSQL database."""

import shutil
import sqlite3
import subprocess
import sys

import pytest
from helpers import ROOT, run_cli
from sqlalchemy import create_engine, text

from llmapp.chat import ChatMessage
from llmapp.conversations import ConversationStore
from llmapp.storage import Database, StoreError, database_url, mask_url, sqlite_file
from llmapp.storage.urls import scrub

LEGACY = ROOT / "tests" / "data" / "legacy"


def test_urls_users_write_become_driver_urls():
    assert database_url("sqlite:///.llmapp/c.sqlite3") == "sqlite:///.llmapp/c.sqlite3"
    assert database_url(".llmapp/c.sqlite3") == "sqlite:///.llmapp/c.sqlite3"
    assert database_url("postgres://u:p@db.example.com/app") == \
        "postgresql+psycopg://u:p@db.example.com/app"
    assert database_url("postgresql://u:p@h:5433/app?sslmode=require") == \
        "postgresql+psycopg://u:p@h:5433/app?sslmode=require"
    with pytest.raises(ValueError, match=r"not mysql://\)") as err:
        database_url("mysql://root:hunter2@h/db")
    assert "hunter2" not in str(err.value)
    assert str(sqlite_file("sqlite:////var/data/c.sqlite3")) == "/var/data/c.sqlite3"
    assert sqlite_file("postgresql://u:p@h/db") is None


def test_passwords_are_masked_and_scrubbed():
    url = "postgresql+psycopg://app:p%40ss:w0rd@db.example.com:5432/chat"
    assert mask_url(url) == "postgresql+psycopg://app:***@db.example.com:5432/chat"
    assert mask_url("sqlite:///a.sqlite3") == "sqlite:///a.sqlite3"
    said = f"failed for {url} with password p%40ss:w0rd"
    assert "w0rd" not in scrub(said, url) and "db.example.com" in scrub(said, url)


@pytest.mark.parametrize("legacy, stamped", [("conversations-before-steps.sqlite3", "0001"),
                                             ("conversations-2026-11-22.sqlite3", "0002")])
def test_a_file_made_by_earlier_code_upgrades_in_place(tmp_path, legacy, stamped):
    """The files were written by llmapp's own code of the time (before tool
    steps were kept, and as of 2026-11-22), with no migration history."""
    path = tmp_path / "conversations.sqlite3"
    shutil.copy(LEGACY / legacy, path)
    db = Database(path, upgrade=False)
    assert db.revision() is None
    assert db.upgrade() == (stamped, db.head())
    store = ConversationStore(db)
    [trip, ada] = store.list()
    assert (trip.title, trip.messages) == ("Renamed trip", 2)
    assert (ada.title, ada.messages) == ("My name is Ada and I like tea.", 4)
    [_, reply, *_] = store.messages(ada.id)
    assert reply.content == "Nice to meet you, Ada!" and reply.stats.completion_tokens == 8
    assert store.summary_state(ada.id) == ("Ada likes tea.", 2)
    store.append(trip.id, ChatMessage("assistant", "Then the fjords.",
                                      steps=[{"name": "calculator", "args": {}}]))
    assert store.messages(trip.id)[-1].steps == [{"name": "calculator", "args": {}}]
    assert db.upgrade() == (db.head(), db.head())  # nothing left to run
    db.close()
    tables = {r[0] for r in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"conversations", "messages", "alembic_version"} <= tables


def test_migrations_build_exactly_the_schema(database_url):
    """An empty database migrated to the head has the tables, columns and
    indexes of llmapp.storage.schema: Alembic's autogenerate finds nothing
    to change."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from llmapp.storage.schema import metadata

    db = Database(database_url)
    with db.read() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    db.close()


def test_llmapp_db_upgrade_and_status(tmp_path):
    path = tmp_path / "old.sqlite3"
    shutil.copy(LEGACY / "conversations-before-steps.sqlite3", path)
    url = f"sqlite:///{path}"
    status = run_cli("db", "status", "--url", url)
    assert status.returncode == 1 and "revision none" in status.stdout \
        and "upgrade pending" in status.stdout
    done = run_cli("db", "upgrade", "--url", url)
    assert done.returncode == 0, done.stderr
    head = Database.head()
    assert f"upgraded from revision 0001 to {head}" in done.stdout
    again = run_cli("db", "upgrade", "--url", url)
    assert f"already at revision {head}" in again.stdout
    assert run_cli("db", "status", "--url", url).returncode == 0


def test_a_database_from_a_newer_llmapp_is_refused_and_kept(tmp_path):
    path = tmp_path / "new.sqlite3"
    Database(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="made by a newer llmapp"):
        Database(path)
    assert sqlite3.connect(path).execute("SELECT version_num FROM alembic_version").fetchone() \
        == ("9999",)


def test_a_wrong_password_is_said_without_the_password(postgres):
    url = postgres.url("postgres", password="not-the-Password-42")
    with pytest.raises(StoreError, match="refused the user name or password") as err:
        Database(url)
    assert "not-the-Password-42" not in str(err.value) and ":***@" in str(err.value)
    cli = run_cli("db", "status", "--url", url)
    assert cli.returncode == 1 and "refused the user name or password" in cli.stderr
    assert "not-the-Password-42" not in cli.stdout + cli.stderr


def test_an_unreachable_server_is_said(postgres):
    from helpers import free_port

    url = f"postgresql://llmapp:s3cret-pw@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(StoreError, match="cannot be reached") as err:
        Database(url)
    assert "s3cret-pw" not in str(err.value)
    with pytest.raises(StoreError, match="does not exist"):
        Database(postgres.url("no_such_database"))


WRITER = """
import sys
from llmapp.chat import ChatMessage
from llmapp.conversations import ConversationStore

url, shared, me, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = ConversationStore(url)
own = store.create(f"own {me}")
for i in range(n):
    store.append(shared, ChatMessage("user", f"{me} {i}"))
    store.append(own.id, ChatMessage("user", f"{me} {i}"))
    if i % 10 == 0:
        assert any(c.id == shared for c in store.list())
        store.load(shared)
print(own.id)
"""

MIGRATOR = ("import sys; from llmapp.storage import Database; "
            "print(Database(sys.argv[1]).revision())")


def test_two_processes_share_one_postgres_without_lost_writes(postgres):
    """Two processes append 60 messages each to one shared conversation and
    to one of their own, interleaved: all 240 are kept, in each process's
    order. Meanwhile two more open a fresh database at once: both migrate it
    without tripping over each other."""
    url = postgres.create_database()
    n = 60
    shared = ConversationStore(url).create("shared").id
    fresh = postgres.create_database()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, shared, me, str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for me in ("A", "B")]
    migrators = [subprocess.Popen([sys.executable, "-c", MIGRATOR, fresh],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs + migrators]
    assert [p.returncode for p in procs + migrators] == [0, 0, 0, 0], [o[1] for o in outs]
    assert [o[0].strip() for o in outs[2:]] == [Database.head()] * 2
    store = ConversationStore(url)
    said = [m.content for m in store.messages(shared)]
    assert len(said) == 2 * n
    for me in ("A", "B"):
        assert [s for s in said if s.startswith(me)] == [f"{me} {i}" for i in range(n)]
    own = {c.title: c.messages for c in store.list()}
    assert own == {"shared": 2 * n, "own A": n, "own B": n}
    engine = create_engine(store.database.url)
    with engine.connect() as conn:
        seqs = [r[0] for r in conn.execute(
            text("SELECT seq FROM messages WHERE conversation_id = :c ORDER BY seq"),
            {"c": shared})]
    engine.dispose()
    assert seqs == list(range(2 * n))
