"""Database URLs: what users write, what SQLAlchemy needs, what people may see.

Users write ``sqlite:///relative/path``, ``sqlite:////absolute/path``, a plain
file path, or a PostgreSQL URL as hosted services hand them out
(``postgres://`` or ``postgresql://``). llmapp talks to PostgreSQL through
psycopg 3, so those become ``postgresql+psycopg://``.

A password is shown as ``***`` wherever a URL is shown: the URL is parsed
with SQLAlchemy (``make_url``) and rendered with
``render_as_string(hide_password=True)``, and query parameters that carry
secrets (``?password=``, ``sslpassword=``, tokens, keys) are masked too. An
unescaped ``@`` in a password is read as ``urllib.parse`` reads it (the last
``@`` before the host ends the user information), so neither the host nor a
message shows a piece of the password. A URL that cannot be parsed is never
echoed: only its scheme is shown.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

SCHEMES = ("sqlite", "postgresql+psycopg")
"""The database kinds llmapp runs on, as SQLAlchemy dialect+driver names."""

_ALIASES = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg",
            "postgresql+psycopg": "postgresql+psycopg", "sqlite": "sqlite"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,30}$")
SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token|key|auth|signature|sig$|credential",
                              re.IGNORECASE)
"""Query parameter names whose values are masked (``password``,
``sslpassword``, ``api_key``, ``access_token``, ...)."""
MASK = "***"


def _scheme_shown(raw: str) -> str:
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    return scheme if _SCHEME.match(scheme) else "an unreadable scheme"


def parse_url(url: str) -> URL:
    """``url`` as SQLAlchemy's :class:`~sqlalchemy.engine.URL`, with an
    unescaped ``@`` in the password put back into the password (SQLAlchemy
    stops the password at the first ``@``; ``urllib.parse`` and people take
    the last).

    Raises:
        ValueError: SQLAlchemy cannot read it (a bad port, an unclosed
            ``[``); the message never repeats the URL.
    """
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        if parsed.host and "@" in parsed.host and parsed.username is not None:
            extra, host = parsed.host.rsplit("@", 1)
            parsed = parsed.set(password=f"{parsed.password or ''}@{extra}", host=host)
        parsed.port  # noqa: B018 - make_url checks the port lazily in some versions
    except Exception:  # noqa: BLE001 - its messages quote the URL, password and all
        raise ValueError("is not a URL SQLAlchemy can read (check the port, the brackets "
                         "around an IPv6 host, and %-escape special characters in the "
                         "password)") from None
    return parsed


def database_url(raw: str) -> str:
    """The SQLAlchemy URL for what a user wrote.

    Args:
        raw: ``sqlite:///path``, a plain path (taken as SQLite), or
            ``postgres[ql][+psycopg]://user:password@host:port/dbname``.

    Returns:
        A URL with an explicit driver, e.g. ``postgresql+psycopg://...``;
        a PostgreSQL password is %-escaped (``p@ss`` -> ``p%40ss``).

    Raises:
        ValueError: another scheme, or a URL SQLAlchemy cannot read (the
            message names the scheme at most, and never repeats the URL,
            which may hold a password).
    """
    raw = raw.strip()
    if "://" not in raw:
        return f"sqlite:///{raw}"
    scheme, rest = raw.split("://", 1)
    kind = _ALIASES.get(scheme.lower())
    if kind is None:
        raise ValueError("must be sqlite:///path or postgresql://user:password@host/dbname "
                         f"(not {_scheme_shown(raw)}://)")
    url = f"{kind}://{rest}"
    if kind == "sqlite":
        return url
    return parse_url(url).render_as_string(hide_password=False)


def mask_url(url: str) -> str:
    """``url`` for pages, logs and errors: the password as ``***``, and the
    values of secret query parameters (:data:`SECRET_PARAMETER`) too. A URL
    that cannot be parsed shows only its scheme: ``postgresql://***``."""
    if "://" not in url:
        return url  # a plain path
    try:
        parsed = parse_url(url)
    except ValueError:
        return f"{_scheme_shown(url)}://{MASK}"
    secret = {k: MASK for k in parsed.query if SECRET_PARAMETER.search(k)}
    if secret:
        parsed = parsed.update_query_dict(secret)
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", MASK)


def url_secrets(url: str) -> list[str]:
    """The secret parts of a URL: its password (as written, decoded and
    escaped) and the values of secret query parameters. Empty for a URL
    without any, or one that cannot be parsed (then the caller masks the
    whole URL)."""
    from urllib.parse import quote

    try:
        parsed = parse_url(url)
    except ValueError:
        return []
    found = [parsed.password] if parsed.password else []
    rest = url.split("://", 1)[1]
    at = rest.rfind(f"@{parsed.host}") if parsed.host else -1
    if parsed.password and at > 0 and ":" in rest[:at]:
        found.append(rest[:at].split(":", 1)[1])  # as written, escapes and all
    for name, value in parsed.query.items():
        if SECRET_PARAMETER.search(name):
            found.extend([value] if isinstance(value, str) else value)
    found += [quote(s, safe="") for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (e.g. a driver's error message) with the URL, its password
    and its secret query values masked: drivers may echo any of them. An
    unparsable URL is masked whole."""
    for form in sorted({url, database_url_or_raw(url)}, key=len, reverse=True):
        text = text.replace(form, mask_url(form))
    for secret in url_secrets(url):
        text = text.replace(secret, MASK)
    return text


def database_url_or_raw(raw: str) -> str:
    """:func:`database_url`, or ``raw`` itself when it cannot be read."""
    try:
        return database_url(raw)
    except ValueError:
        return raw


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (relative to the working directory unless it
    starts with ``/``), or None for a server database."""
    url = database_url(url)
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///"):])
