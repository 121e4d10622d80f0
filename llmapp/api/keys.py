"""Who is calling ``llmapp serve``: API keys, each a principal.

- ``LLMAPP_API_KEYS``: a JSON object ``{"name": "key", ...}``; each name is a
  principal (a client application, a team), with cached replies of its own.
- ``LLMAPP_API_KEY``: one key, the principal ``default``; it works alone or
  beside ``LLMAPP_API_KEYS``.
- Neither: the API is open (``llmapp serve`` then listens on loopback only),
  and every caller is the principal ``anonymous``.

A bearer token is matched against every key in constant time: both sides are
hashed with SHA-256 first, so the comparison (:func:`hmac.compare_digest`)
always runs on 32 bytes whatever the token's length, and every key is compared,
so the time does not tell which one matched. Keys stay
:class:`~pydantic.SecretStr` and appear in no message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from llmapp.errors import ConfigError

DEFAULT = "default"
"""The principal of ``LLMAPP_API_KEY``."""
ANONYMOUS = "anonymous"
"""The principal of every caller when no key is configured."""
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""A principal's name: letters, digits, ``_ . -``; at most 64. No ``:``, so
a cache scope ``api:<principal>:<user>`` reads back one way only."""


def parse_key_table(text: str) -> dict[str, SecretStr]:
    """The principals of ``LLMAPP_API_KEYS``.

    Args:
        text: a JSON object ``{"name": "key", ...}``.

    Returns:
        name -> key.

    Raises:
        ValueError: not a JSON object of non-empty strings, a name outside
            :data:`NAME`, or one key under two names. The message names no key.
    """
    try:
        table = json.loads(text)
    except ValueError:
        raise ValueError('must be a JSON object {"name": "key", ...}') from None
    if not isinstance(table, dict) or not table:
        raise ValueError('must be a JSON object {"name": "key", ...} with at least one key')
    keys: dict[str, SecretStr] = {}
    for name, key in table.items():
        if not NAME.fullmatch(name):
            raise ValueError(f"has the name {name[:64]!r}: names are 1-64 letters, digits, "
                             "'_', '.' or '-'")
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"has no key (a non-empty string) for {name!r}")
        keys[name] = SecretStr(key.strip())
    if len({k.get_secret_value() for k in keys.values()}) < len(keys):
        raise ValueError("gives one key to two names: each principal needs its own key")
    return keys


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class KeyRing:
    """The keys a server accepts, by principal.

    Attributes:
        keys: principal name -> key; empty when the API is open.
    """

    keys: Mapping[str, SecretStr]

    @classmethod
    def from_settings(cls, settings) -> KeyRing:
        """``LLMAPP_API_KEYS`` and ``LLMAPP_API_KEY`` (as :data:`DEFAULT`).

        Raises:
            ConfigError: ``LLMAPP_API_KEYS`` names ``default`` while
                ``LLMAPP_API_KEY`` is set, or gives it ``LLMAPP_API_KEY``'s
                key under another name.
        """
        keys: dict[str, SecretStr] = {}
        if settings.api_keys is not None:
            try:
                keys = parse_key_table(settings.api_keys.get_secret_value())
            except ValueError as exc:
                raise ConfigError(f"LLMAPP_API_KEYS: the value {exc}.") from None
        single = settings.api_key
        if single is not None and single.get_secret_value():
            if DEFAULT in keys:
                raise ConfigError(f"LLMAPP_API_KEYS names {DEFAULT!r}, the principal of "
                                  "LLMAPP_API_KEY: rename it, or drop LLMAPP_API_KEY.")
            if any(k.get_secret_value() == single.get_secret_value() for k in keys.values()):
                raise ConfigError("LLMAPP_API_KEYS gives LLMAPP_API_KEY's key to another "
                                  "name: each principal needs its own key.")
            keys[DEFAULT] = single
        return cls(keys)

    @property
    def open(self) -> bool:
        """True when no key is configured: every caller is :data:`ANONYMOUS`."""
        return not self.keys

    def principal(self, authorization: str | None) -> str | None:
        """The principal an ``Authorization`` header names, or None when it
        names none (missing, not ``Bearer``, or no key matches).

        Every key is compared, in constant time (see the module's docstring).
        """
        if self.open:
            return ANONYMOUS
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = _digest(token.strip())
        found = None
        for name, key in self.keys.items():
            if hmac.compare_digest(digest, _digest(key.get_secret_value())) and found is None:
                found = name
        return found
