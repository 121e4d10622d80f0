"""Secrets that stay secret: scrub configured secrets from text, and mask
credentials in URLs that are shown.

- **Every configured secret is remembered** when settings are resolved
  (:func:`remember`, called by :func:`llmapp.settings.resolve`): each
  ``SecretStr`` of :class:`~llmapp.settings.Settings` (the OpenAI key, the
  OpenAI-compatible key, the API keys, Chroma's headers), the parts of JSON
  values, and a database URL's password and secret query values (the URL
  itself is not a secret).
- **Choke points scrub them** (:func:`scrub`): the message of every
  :class:`~llmapp.errors.LlmappError` (what the UI, the CLI and the API
  show), the API's error bodies, and every log record once
  :func:`install_log_scrubbing` ran (``remember`` installs it: the record
  factory scrubs the message, its arguments and the formatted traceback, for
  llmapp's handlers and anyone else's, uvicorn's and Streamlit's too).
- **Base URLs are shown masked** (:func:`mask_base_url`): user information
  and every query value, e.g. ``http://user:***@host/v1?api_key=***``.

Values shorter than :data:`MIN_SECRET_CHARS` are not scrubbed from free
text: they cannot be told from ordinary words (a password ``admin`` would
erase "admin" from every log line). They are still masked wherever their
place is known: in URLs (passwords, query values) and in database errors
(:func:`llmapp.storage.urls.scrub`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

MASK = "***"
MIN_SECRET_CHARS = 8
"""Shortest value scrubbed from free text, in characters (API keys are
20-200; a shorter value cannot be told from ordinary words)."""
MAX_REMEMBERED = 256
"""Most secrets a process keeps for scrubbing (the most recent ones): a
Streamlit server sees one set of keys per session that types its own."""

_known: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()
_installed = False


def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)


def secret_parts(value: str) -> list[str]:
    """The strings to scrub for one secret value: the value; the leaves of
    a JSON object or list (``{"alice": "key-1"}`` gives ``key-1`` too), and
    the token of an ``Authorization``-style ``Bearer``/``Basic`` value; for a
    URL, only its password and secret query values
    (:func:`llmapp.storage.urls.url_secrets`), not the whole URL."""
    from llmapp.storage.urls import url_secrets

    value = value.strip()
    if not value:
        return []
    if "://" in value and not value.startswith(("{", "[")):
        return url_secrets(value)
    parts = [value]
    try:
        parts += list(_leaves(json.loads(value)))
    except ValueError:
        pass
    parts += [p.split(None, 1)[1] for p in list(parts)
              if re.match(r"(?i)(bearer|basic|token)\s+\S", p)]
    return parts


def secret_values(settings: Any) -> set[str]:
    """Every secret of ``settings`` worth scrubbing (:func:`secret_parts` of
    each ``SecretStr`` field, also inside a mapping or a list, and the
    credentials of each ``*base_url`` field, :func:`base_url_secrets`), at
    least :data:`MIN_SECRET_CHARS` long, with their %-escaped forms."""
    from dataclasses import fields, is_dataclass

    from pydantic import SecretStr

    def secrets_in(value: Any) -> Iterable[str]:
        if isinstance(value, SecretStr):
            yield from secret_parts(value.get_secret_value())
        elif isinstance(value, Mapping):
            for item in value.values():
                yield from secrets_in(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from secrets_in(item)

    if not is_dataclass(settings):
        return set()
    found = {s for f in fields(settings) for s in secrets_in(getattr(settings, f.name, None))}
    for f in fields(settings):  # credentials written into a base URL
        value = getattr(settings, f.name, None)
        if f.name.endswith("base_url") and isinstance(value, str):
            found.update(base_url_secrets(value))
    found |= {quote(s, safe="") for s in found}
    return {s for s in found if len(s) >= MIN_SECRET_CHARS}


def remember(settings: Any) -> None:
    """Remember ``settings``' secrets for :func:`scrub`, and install log
    scrubbing (once per process)."""
    values = secret_values(settings)
    if values:
        with _lock:
            for value in values:
                _known[value] = None
                _known.move_to_end(value)
            while len(_known) > MAX_REMEMBERED:
                _known.popitem(last=False)
        install_log_scrubbing()


def forget_all() -> None:
    """Forget every remembered secret (for tests)."""
    with _lock:
        _known.clear()


def scrub(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with every remembered secret, and each of ``extra`` (at
    least :data:`MIN_SECRET_CHARS` long), replaced by ``***``, longest first."""
    if not text:
        return text
    with _lock:
        values = list(_known)
    values += [v for v in extra if v and len(v) >= MIN_SECRET_CHARS]
    for value in sorted(set(values), key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


def mask_base_url(url: str) -> str:
    """A server's base URL as it may be shown: user information as
    ``user:***`` (or ``***``), every query value as ``***``, the fragment
    dropped. A URL that cannot be parsed shows only its scheme."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        return f"{scheme}://{MASK}" if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) \
            else MASK
    netloc = parts.netloc
    if "@" in netloc:
        user = parts.username or ""
        shown_host = f"[{host}]" if ":" in host else host
        netloc = (f"{user}:{MASK}" if user and parts.password is not None else MASK) + \
            f"@{shown_host}{port}"
    query = "&".join(f"{pair.split('=', 1)[0]}={MASK}" if "=" in pair else MASK
                     for pair in parts.query.split("&") if pair) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def base_url_secrets(url: str) -> list[str]:
    """The credentials a base URL carries: its password, its user name when
    it is alone (a token), and its query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url] if url else []
    found = [parts.password] if parts.password else []
    if parts.username and parts.password is None:
        found.append(parts.username)
    found += [pair.split("=", 1)[1] for pair in parts.query.split("&") if "=" in pair]
    return [s for s in found if s]


class _Scrubbed:
    """Wraps the record factory so every log record leaves it scrubbed."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.factory(*args, **kwargs)
        with _lock:
            empty = not _known
        if empty:
            return record
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: logging reports it later
            return record
        record.msg, record.args = scrub(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return record


def install_log_scrubbing() -> None:
    """Scrub remembered secrets from every log record of this process: its
    message (arguments merged in) and its formatted traceback. Installed
    once, as a wrapper of :func:`logging.getLogRecordFactory`, so it covers
    every handler, present and future (llmapp's, uvicorn's, Streamlit's)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    logging.setLogRecordFactory(_Scrubbed(logging.getLogRecordFactory()))
