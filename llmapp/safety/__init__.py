"""The safety filter: input and output checks at an audience level (child,
teen, adult, off), by an offline checker and, when configured, OpenAI's
moderation endpoint or a guard model; protected phrases; instructions hidden
in retrieved documents.

- :mod:`llmapp.safety.taxonomy`: categories and levels.
- :mod:`llmapp.safety.local`: the offline checker.
- :mod:`llmapp.safety.remote`: OpenAI moderation, a guard model.
- :mod:`llmapp.safety.phrases`: protected phrases.
- :mod:`llmapp.safety.injection`: prompt injection in documents.
- :mod:`llmapp.safety.topic`: topic scope (``LLMAPP_TOPIC``).
- :mod:`llmapp.safety.guard`: :class:`Guard`, :class:`OutputMonitor`.
"""

from __future__ import annotations

from functools import cache

from llmapp.safety.guard import MAX_CHARS, Guard, OutputMonitor, SafetyError, Verdict
from llmapp.safety.local import LocalChecker
from llmapp.safety.phrases import ProtectedPhrases
from llmapp.safety.taxonomy import CATEGORIES, LEVELS
from llmapp.settings import Settings

__all__ = ["CATEGORIES", "LEVELS", "MAX_CHARS", "Guard", "OutputMonitor", "SafetyError",
           "Verdict", "checkers_for", "guard_for", "load_guard", "local_checker"]


@cache
def local_checker() -> LocalChecker:
    """The process's offline checker (its exemplars are embedded once)."""
    return LocalChecker()


def checkers_for(settings: Settings) -> list:
    """The offline checker, then OpenAI moderation when an OpenAI key is set,
    then the guard model when ``LLMAPP_GUARD_MODEL`` and an OpenAI-compatible
    server are set."""
    import os

    from llmapp.safety.remote import GuardModel, OpenAIModeration

    found: list = [local_checker()]
    if settings.openai_api_key is not None:
        found.append(OpenAIModeration(settings.openai_api_key,
                                      os.environ.get("OPENAI_BASE_URL") or None))
    if settings.guard_model and settings.compatible_base_url:
        found.append(GuardModel(settings.compatible_base_url, settings.guard_model,
                                settings.compatible_api_key))
    return found


def guard_for(settings: Settings, phrases: list[tuple[str, str]] | None = None,
              level: str | None = None, scoped: bool = True) -> Guard:
    """The guard these settings ask for (``LLMAPP_SAFETY_LEVEL``,
    ``LLMAPP_PHRASE_ACTION``, ``LLMAPP_TOPIC``), with ``phrases`` as
    protected phrases. ``scoped=False`` leaves the topic scope out.

    Raises:
        ConfigError: an unknown level.
    """
    from llmapp.safety.topic import topic_checker

    topic = topic_checker(settings.topic) if scoped and settings.topic is not None else None
    return Guard(level or settings.safety_level, checkers_for(settings),
                 ProtectedPhrases(phrases or [], settings.phrase_action), topic)


def load_guard(settings: Settings) -> tuple[Guard | None, str | None]:
    """The guard for a command or a service: :func:`guard_for` with the
    protected phrases stored in ``LLMAPP_DATABASE_URL``'s database.

    Returns:
        ``(guard, note)``: guard is None at level ``off`` with no topic
        scope (``LLMAPP_TOPIC``); note says why the
        phrases are missing when the database cannot be read (the guard then
        checks without them), else None.
    """
    from llmapp.safety.phrases import load_phrases
    from llmapp.storage import Database, StoreError

    if settings.safety_level == "off" and settings.topic is None:
        return None, None
    try:
        phrases = load_phrases(Database(settings.database_url.get_secret_value()))
    except StoreError as exc:
        return guard_for(settings), f"protected phrases unavailable: {exc}"
    return guard_for(settings, phrases), None
