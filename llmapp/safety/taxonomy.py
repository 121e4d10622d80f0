"""What the safety filter checks for, and how strict each audience level is.

The categories are OpenAI's moderation categories (its Moderation guide,
https://platform.openai.com/docs/guides/moderation, "Content
classifications"), coarsened where the offline checker cannot tell them apart
(``harassment/threatening`` counts as ``harassment``, ``hate/threatening``
as ``hate``, ``self-harm/intent`` and ``/instructions`` as ``self-harm``,
``illicit/violent`` as ``illicit``), plus ``profanity``, which OpenAI's list
lacks and a child audience needs.

A level maps each category it blocks to the least score (0 to 1) that blocks
it; a category it leaves out is only reported. Scores of different checkers
are not calibrated alike: these thresholds were chosen for the offline
checker on ``tests/data/safety_texts.jsonl`` (``benchmarks/bench_safety.py``).
"""

from __future__ import annotations

from llmapp.errors import ConfigError

CATEGORIES: dict[str, str] = {
    "sexual": "sexual content",
    "sexual/minors": "sexual content involving minors",
    "hate": "hate against a group of people",
    "harassment": "harassment, bullying or threats against someone",
    "violence": "violence: plans, threats or instructions to hurt someone",
    "violence/graphic": "graphic violence or gore",
    "self-harm": "self-harm or suicide",
    "illicit": "instructions for crimes, weapons or drugs",
    "profanity": "profanity",
}
"""Category -> how the chat names it to the user."""

ADULT_BLOCKS = ("sexual/minors", "hate", "harassment", "violence", "self-harm", "illicit")
"""What the adult level blocks: what OpenAI's moderation flags for any
audience (violent intent, weapons built to hurt, sexual content with
minors, self-harm intent, hate, threats, instructions for crimes), not
consensual adult sexual content, gore in fiction or profanity."""

LEVELS: dict[str, dict[str, float]] = {
    "child": {c: 0.35 for c in CATEGORIES},
    "teen": {c: 0.40 for c in CATEGORIES if c != "profanity"},
    "adult": {c: 0.50 for c in ADULT_BLOCKS},
    "off": {},
}
"""Level -> {category: least score that blocks}. ``adult`` is the default.
The thresholds were chosen on the ``dev`` and ``test`` splits of
``tests/data/safety_labelled.jsonl`` with ``tests/data/safety_texts.jsonl``:
at child, the one nearest to blocking 97% of unsafe texts while passing 95%
of benign ones; at adult, the lowest that passes 98% of benign ones on
``test``. ``test2`` was held out (``benchmarks/bench_safety.py``)."""

SELF_HARM_HELP = ("If you are thinking about hurting yourself, please talk to someone you "
                  "trust, or call or text a local crisis line; in many countries, "
                  "findahelpline.com lists them.")


def thresholds(level: str) -> dict[str, float]:
    """The blocking thresholds of ``level``.

    Raises:
        ConfigError: an unknown level (the message lists the levels).
    """
    try:
        return LEVELS[level]
    except KeyError:
        raise ConfigError(f"The safety level must be one of {', '.join(LEVELS)}, "
                          f"not {level!r}.") from None
