"""``llmapp db upgrade`` and ``llmapp db status``: the database's schema."""

from __future__ import annotations

import argparse

from llmapp.settings import resolve
from llmapp.storage import Database


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the CLI's subparsers."""
    db = sub.add_parser("db", help="the conversation database: migrate it, or show its schema "
                                   "revision")
    actions = db.add_subparsers(dest="action", required=True)
    for name, text in (("upgrade", "run pending migrations (the app also runs them at start)"),
                       ("status", "the schema revision of the database, and the newest one")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--url", help="database URL (default LLMAPP_DATABASE_URL): "
                                          "sqlite:///path or postgresql://user:pw@host/db")
        action.set_defaults(func=cmd_upgrade if name == "upgrade" else cmd_status)


def _database(args: argparse.Namespace, upgrade: bool) -> Database:
    overrides = {"LLMAPP_DATABASE_URL": args.url} if args.url else {}
    settings = resolve(sidebar=overrides, overrides_label="command line")
    return Database(settings.database_url.get_secret_value(), upgrade=upgrade)


def cmd_upgrade(args: argparse.Namespace) -> int:
    """``llmapp db upgrade``: migrate to the newest revision and say what ran."""
    db = _database(args, upgrade=False)
    before, after = db.upgrade()
    if before == after:
        print(f"{db.shown}: already at revision {after}")
    else:
        print(f"{db.shown}: upgraded from revision {before or 'none (empty)'} to {after}")
    db.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """``llmapp db status``: the revision, and whether an upgrade is pending
    (exit 1 when one is)."""
    db = _database(args, upgrade=False)
    current, head = db.revision(), db.head()
    db.close()
    state = "up to date" if current == head else "upgrade pending: llmapp db upgrade"
    print(f"{db.shown}: revision {current or 'none'} (newest {head}); {state}")
    return 0 if current == head else 1
