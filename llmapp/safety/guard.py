"""The safety filter around the model: a :class:`Guard` checks the user's
message before the model sees it, and the reply while it streams.

- **Input**: :meth:`Guard.check` on the last user message; a blocked one
  never reaches the model (:func:`llmapp.chat.start_reply` raises
  :class:`SafetyError`, and the page keeps the message to edit).
- **Output**: :class:`OutputMonitor` checks the reply every
  :data:`CHECK_EVERY_CHARS` characters as it arrives (the last
  :data:`CONTEXT_CHARS` of it, so a sentence cut by a window is seen whole),
  and once more at the end. When a check blocks, the stream stops, the
  model's stream is closed, and the reply is *withdrawn*
  (``stats.stopped == "safety"``): the page replaces what it showed with
  the notice, and the reply is neither kept for the model nor cached. Dify checks streamed output the same way,
  in 100-character segments.
- **Protected phrases** (:mod:`llmapp.safety.phrases`) are checked on output
  only, and flag or block as set.
- **Languages**: at the ``child`` and ``teen`` levels, a text in a language
  no checker that scored it can read (the offline one reads English only)
  is held with that reason (:mod:`llmapp.safety.language`).
- **Topic scope** (:mod:`llmapp.safety.topic`, ``LLMAPP_TOPIC``) is checked on
  input only, at every level (``off`` too: it says what the deployment is
  for, not who its audience is); an off-topic request is held with the
  reason "off-topic for this assistant: <description>".

Every checker of :func:`checkers_for` scores; a category's score is the
highest any checker gave.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from llmapp.errors import LlmappError
from llmapp.safety.language import HOLD_LEVELS, Language, unreadable
from llmapp.safety.phrases import PhraseMatch, ProtectedPhrases
from llmapp.safety.taxonomy import CATEGORIES, SELF_HARM_HELP, thresholds
from llmapp.safety.topic import TopicChecker, TopicVerdict

log = logging.getLogger(__name__)

MAX_CHARS = 100_000
"""Longest text the filter checks, in characters (a long chat message is a
few thousand; a megabyte is a mistake, refused with a message)."""
CHECK_EVERY_CHARS = 200
CONTEXT_CHARS = 600


class SafetyError(LlmappError):
    """A text the filter cannot check (empty, too long), or a message it
    blocked. ``verdict`` is set when it blocked."""

    def __init__(self, message: str, verdict: Verdict | None = None) -> None:
        super().__init__(message)
        self.verdict = verdict


@dataclass
class Verdict:
    """What the filter decided about one text.

    Attributes:
        allowed: False when a category reached the level's threshold, or a
            protected phrase matched under the ``block`` action.
        level: ``child``, ``teen``, ``adult`` or ``off``.
        categories: ``{category: score in [0, 1]}``, highest of all checkers.
        blocked: the categories that reached the level's threshold.
        flags: short notes for people: categories scored high but allowed at
            this level, protected phrases, a checker that could not answer.
        phrases: protected phrases found (output checks only).
        checkers: names of the checkers that scored.
        topic: the topic scope's check (input only, with ``LLMAPP_TOPIC``
            set), else None; off-topic makes ``allowed`` False.
        language: the text's language when no checker that scored could
            read it and the level holds such text (``child``, ``teen``),
            else None; it makes ``allowed`` False.
    """

    allowed: bool
    level: str
    categories: dict[str, float]
    blocked: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    phrases: list[PhraseMatch] = field(default_factory=list)
    checkers: list[str] = field(default_factory=list)
    topic: TopicVerdict | None = None
    language: Language | None = None

    @property
    def off_topic(self) -> bool:
        """True when the topic scope held the text."""
        return self.topic is not None and not self.topic.on_topic

    def to_dict(self) -> dict:
        """``{"allowed", "level", "categories", "flags", "blocked"}``, JSON-ready;
        with a topic scope, also ``"topic": {"on_topic", "score", "piece"}``."""
        out = {"allowed": self.allowed, "level": self.level, "categories": self.categories,
               "flags": self.flags, "blocked": self.blocked, "checkers": self.checkers}
        if self.topic is not None:
            out["topic"] = self.topic.to_dict()
        if self.language is not None:
            out["language"] = {"code": self.language.code,
                               "probability": round(self.language.probability, 3)}
        return out

    def reason(self, what: str = "This message") -> str:
        """The decision in the user's terms, e.g. "This message was blocked by
        the safety filter (level: teen): it looks like violence: plans,
        threats or instructions to hurt someone (score 0.82)."""
        if self.allowed:
            return f"{what} passed the safety filter (level: {self.level})."
        parts = [f"{CATEGORIES[c]} (score {self.categories[c]:.2f})" for c in self.blocked]
        parts += [f"the protected phrase “{m.phrase}”" for m in self.phrases if m.blocked]
        if not parts and self.language is not None:
            return (f"{what} was held by the safety filter (level: {self.level}): it is "
                    f"written in {self.language.name}, which the offline checker cannot "
                    "read. Write in English, or have OpenAI moderation or a guard model "
                    "configured, which read other languages.")
        if not parts:  # held for its topic alone
            return f"{what} was held: {self.topic.reason()}."
        text = (f"{what} was blocked by the safety filter (level: {self.level}): it looks "
                f"like {' and '.join(parts)}.")
        if self.off_topic:
            text += f" It is also {self.topic.reason()}."
        if "self-harm" in self.blocked:
            text += " " + SELF_HARM_HELP
        return text


class Guard:
    """A safety level, its checkers and the protected phrases.

    Args:
        level: see :data:`~llmapp.safety.taxonomy.LEVELS`.
        checkers: objects with ``name`` and ``scores(text, *, output) ->
            {category: score}``; the first is the offline one, which must
            not fail.
        phrases: protected phrases, checked on output.
        topic: the topic scope's checker, checked on input at every level.

    Raises:
        ConfigError: an unknown level.
    """

    def __init__(self, level: str, checkers: Sequence, phrases: ProtectedPhrases | None = None,
                 topic: TopicChecker | None = None) -> None:
        self.level = level
        self.limits = thresholds(level)
        self.checkers = list(checkers)
        self.phrases = phrases
        self.topic = topic

    @property
    def active(self) -> bool:
        """False at level ``off`` with no protected phrase and no topic to check."""
        return bool(self.limits) or bool(self.phrases and self.phrases.phrases) \
            or self.topic is not None

    def check(self, text: str, *, output: bool = False) -> Verdict:
        """Score ``text`` and decide at this level.

        Args:
            output: the text is the model's: look for protected phrases, and
                skip the topic scope (requests only).

        Raises:
            SafetyError: empty text, or longer than :data:`MAX_CHARS`.
        """
        if not text.strip():
            raise SafetyError("Nothing to check: the text is empty.")
        if len(text) > MAX_CHARS:
            raise SafetyError(f"The text is {len(text):,} characters; the safety filter "
                              f"checks at most {MAX_CHARS:,}. Shorten it.")
        # A lone surrogate (from a command line's undecodable bytes, say) is
        # no text: the embedder's tokenizer and any HTTP checker refuse it.
        text = text.encode("utf-8", "replace").decode("utf-8")
        scores = {c: 0.0 for c in CATEGORIES}
        flags, used = [], []
        for checker in self.checkers if self.limits else []:
            try:
                found = checker.scores(text, output=output)
            except LlmappError as exc:
                log.warning("safety checker %s failed: %s", checker.name, exc)
                flags.append(f"{checker.name} could not check ({exc}); the offline checker "
                             "decided")
                continue
            used.append(checker.name)
            for category, score in found.items():
                if category in scores:
                    scores[category] = max(scores[category], score)
        blocked = [c for c, limit in self.limits.items() if scores[c] >= limit]
        flags += [f"{c} {scores[c]:.2f} (allowed at {self.level})" for c in CATEGORIES
                  if c not in blocked and scores[c] >= 0.5]
        matches = self.phrases.find(text) if output and self.phrases else []
        flags += [f"protected phrase “{m.phrase}”" + (f" ({m.owner})" if m.owner else "")
                  for m in matches]
        language = None
        if self.level in HOLD_LEVELS and not blocked and not any(
                getattr(c, "reads_any_language", False) for c in self.checkers
                if c.name in used):
            language = unreadable(text)
        if language is not None:
            flags.append(f"written in {language.name} ({language.probability:.2f}), "
                         "unread by the offline checker")
        topic = self.topic.check(text) if self.topic is not None and not output else None
        if topic is not None and not topic.on_topic:
            flags.append(f"off-topic (score {topic.score:.2f})")
        allowed = not blocked and not any(m.blocked for m in matches) \
            and (topic is None or topic.on_topic) and language is None
        return Verdict(allowed, self.level, scores, blocked, flags, matches, used, topic,
                       language)


class OutputMonitor:
    """Checks a reply while it streams (give it to
    :class:`~llmapp.streaming.ReplyStream` as ``monitor``).

    :meth:`feed` gets each new piece and checks the reply's last
    :data:`CONTEXT_CHARS` characters every :data:`CHECK_EVERY_CHARS`;
    :meth:`finish` checks what is left at the end. Either returns True when
    the reply must be withdrawn; ``verdict`` then says why, else it holds
    the last check (None if none ran). Flags of allowed checks (a protected
    phrase under ``flag``) gather in ``flags``.
    """

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.verdict: Verdict | None = None
        self.flags: list[str] = []
        self._text: list[str] = []
        self._unchecked = 0

    def _check(self) -> bool:
        tail = "".join(self._text)[-CONTEXT_CHARS:]
        self._unchecked = 0
        if not tail.strip():
            return False
        self.verdict = self.guard.check(tail, output=True)
        self.flags += [f for f in self.verdict.flags if f not in self.flags]
        return not self.verdict.allowed

    def feed(self, piece: str) -> bool:
        """Take the next piece; True to withdraw the reply."""
        self._text.append(piece)
        self._unchecked += len(piece)
        return self._unchecked >= CHECK_EVERY_CHARS and self._check()

    def finish(self) -> bool:
        """The reply ended; True to withdraw it."""
        return self._unchecked > 0 and self._check()
