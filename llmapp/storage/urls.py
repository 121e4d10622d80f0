"""Database URLs: what users write, what SQLAlchemy needs, what people may see.

Users write ``sqlite:///relative/path``, ``sqlite:////absolute/path``, a plain
file path, or a PostgreSQL URL as hosted services hand them out
(``postgres://`` or ``postgresql://``). llmapp talks to PostgreSQL through
psycopg 3, so those become ``postgresql+psycopg://``. A password in a URL is
shown as ``***`` wherever the URL is shown.
"""

from __future__ import annotations

import re
from pathlib import Path

SCHEMES = ("sqlite", "postgresql+psycopg")
"""The database kinds llmapp runs on, as SQLAlchemy dialect+driver names."""

_ALIASES = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg",
            "postgresql+psycopg": "postgresql+psycopg", "sqlite": "sqlite"}
_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]*)(@)")


def database_url(raw: str) -> str:
    """The SQLAlchemy URL for what a user wrote.

    Args:
        raw: ``sqlite:///path``, a plain path (taken as SQLite), or
            ``postgres[ql][+psycopg]://user:password@host:port/dbname``.

    Returns:
        A URL with an explicit driver, e.g. ``postgresql+psycopg://...``.

    Raises:
        ValueError: another scheme (the message lists the supported ones,
            and never repeats the URL, which may hold a password).
    """
    raw = raw.strip()
    if "://" not in raw:
        return f"sqlite:///{raw}"
    scheme, rest = raw.split("://", 1)
    kind = _ALIASES.get(scheme.lower())
    if kind is None:
        raise ValueError("must be sqlite:///path or postgresql://user:password@host/dbname "
                         f"(not {scheme}://)")
    return f"{kind}://{rest}"


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for pages, logs and errors."""
    return _PASSWORD.sub(r"\1***\3", url)


def scrub(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error message) with the URL's password, and
    the URL itself, masked: drivers may echo either."""
    match = _PASSWORD.search(url)
    text = text.replace(url, mask_url(url))
    if match and match.group(2):
        text = text.replace(match.group(2), "***")
    return text


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (relative to the working directory unless it
    starts with ``/``), or None for a server database."""
    url = database_url(url)
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///"):])
