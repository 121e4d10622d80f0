"""Stage 4: conversation memory. What goes back into the prompt, and why.

A model remembers only what is put back into its prompt. Each strategy takes
the system prompt and the history (whose last message is the new user message)
and returns a :class:`MemoryReport`: the exact messages to send, the tokens of
each, and what was dropped or summarized.

=================  =========================================================
strategy           keeps
=================  =========================================================
``full``           everything (fails clearly once it no longer fits)
``window``         the last ``k`` turns
``token_budget``   the newest messages that fit ``window - max_tokens``,
                   each message counted once and its count kept
``summary``        a running summary of older turns, written by the model,
                   plus the last ``k`` turns verbatim
``profile``        what the user said about themselves, pinned to the
                   system prompt in their words (:mod:`llmapp.profile`),
                   plus the newest messages that fit, as ``token_budget``
=================  =========================================================

A turn is a user message with the replies that follow it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from llmapp.errors import ConfigError, ContextOverflowError
from llmapp.tokens import Budget, Message, TokenCounter

STRATEGIES = ("full", "window", "token_budget", "summary", "profile")
LABELS = {"full": "Full buffer", "window": "Last-k window",
          "token_budget": "Token budget", "summary": "Summary + recent",
          "profile": "Profile + recent"}
DEFAULT_STRATEGY = "profile"
"""The Memory page's default: on the bundled model, "What is my name?" after
"Hi! My name is Priya and I live in Lisbon." got 512 tokens of place names
and then a wrong name with ``token_budget`` (``benchmarks/bench_demo.py``)."""
MAX_K = 1000

SUMMARY_PROMPT = (
    "Progressively summarize the conversation, adding onto the previous summary and "
    "returning a new summary. Keep names, numbers and decisions. Write at most five "
    "sentences.\n\nCurrent summary:\n{summary}\n\nNew lines of conversation:\n{new_lines}\n\n"
    "New summary:"
)
"""After LangChain's ``ConversationSummaryMemory`` prompt (langchain.memory.prompt.
SUMMARY_PROMPT): the summary grows by folding in new lines, never re-reading
what it already holds."""

SUMMARY_PREFIX = "Summary of the earlier conversation: "


@dataclass
class MemoryReport(Budget):
    """What the model receives this turn, and why.

    Attributes (beyond :class:`~llmapp.tokens.Budget`):
        strategy: one of :data:`STRATEGIES`.
        tokens: tokens of each message in ``messages``, same order.
        dropped: indices into the history of messages left out.
        summarized: indices into the history of the messages the summary covers.
        summary: the running summary after this turn, or None.
        summary_state: ``(summary, n_messages_folded)`` to persist for the next turn.
        earlier: how many history messages came before the new one.
        profile: for ``profile``: the user's sentences about themselves that
            were pinned to the system prompt.
    """

    strategy: str = "full"
    tokens: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    summarized: list[int] = field(default_factory=list)
    summary: str | None = None
    summary_state: tuple[str, int] = ("", 0)
    earlier: int = 0
    profile: list[str] = field(default_factory=list)

    @property
    def notice(self) -> str | None:
        """A sentence for the chat when something was left out, else None."""
        parts = []
        if self.summarized:
            parts.append(f"{len(self.summarized)} older messages are in the summary")
        if self.dropped:
            parts.append(f"{len(self.dropped)} older messages were not sent")
        if not parts:
            return None
        return f"{LABELS[self.strategy]} memory: " + "; ".join(parts) + (
            f". The prompt is {self.prompt_tokens} tokens of a {self.window}-token window.")


class TokenCache:
    """Per-message token counts, each message counted once and kept.

    Counts are keyed by a hash of role and content, so an unchanged message is
    never counted again, whichever turn asks. ``counted`` says how many
    messages were actually tokenized (for the benchmark and tests).
    """

    def __init__(self, counter: TokenCounter) -> None:
        self.counter = counter
        self._counts: dict[bytes, int] = {}
        self.counted = 0

    def __call__(self, message: Message) -> int:
        key = hashlib.blake2b(f"{message['role']}\0{message['content']}".encode(),
                              digest_size=16).digest()
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = self.counter.count_message(message)
            self.counted += 1
        return count


def split_turns(history: Sequence[Message]) -> list[list[int]]:
    """Indices of ``history`` grouped into turns (a user message and the
    replies after it). Messages before the first user message form a turn."""
    turns: list[list[int]] = []
    for i, message in enumerate(history):
        if message["role"] == "user" or not turns:
            turns.append([])
        turns[-1].append(i)
    return turns


def check_k(k: int) -> int:
    """Validate a turn count.

    Raises:
        ConfigError: ``k`` is not a whole number from 0 to :data:`MAX_K`.
    """
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= MAX_K:
        raise ConfigError(f"k must be a whole number from 0 to {MAX_K}, got {k!r}.")
    return k


@dataclass
class Memory:
    """A memory strategy and its parameters.

    Args:
        strategy: one of :data:`STRATEGIES`.
        k: turns kept verbatim (``window`` and ``summary``), 0 to :data:`MAX_K`.
        summarize: for ``summary``: a function from prompt text to summary
            text, usually a chat model's ``invoke``.
        cache: per-message token counts kept across turns.

    Raises:
        ConfigError: unknown strategy or ``k`` out of range.
    """

    strategy: str = "token_budget"
    k: int = 4
    summarize: Callable[[str], str] | None = None
    cache: TokenCache | None = None

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"Unknown memory strategy {self.strategy!r}: use one of "
                              f"{', '.join(STRATEGIES)}.")
        check_k(self.k)

    def select(self, system_prompt: str, history: Sequence[Message], counter: TokenCounter,
               window: int, max_tokens: int,
               summary_state: tuple[str, int] = ("", 0)) -> MemoryReport:
        """The messages to send for the last message of ``history``.

        Args:
            system_prompt: sent first; may be empty.
            history: the conversation, oldest first; its last message is the
                new user message and is always kept.
            counter: the model's token counter.
            window: the model's context window, in tokens.
            max_tokens: tokens reserved for the reply.
            summary_state: ``(summary, n_messages_folded)`` from the last turn
                (``summary`` strategy only).

        Raises:
            ContextOverflowError: the system prompt and the new message alone
                do not fit; or, for ``full``, the whole history does not.
        """
        if not history:
            raise ConfigError("There is no message to answer.")
        cache = self.cache = self.cache if self.cache is not None and \
            self.cache.counter is counter else TokenCache(counter)
        history = list(history)
        older, current = history[:-1], history[-1]
        profile: list[str] = []
        if self.strategy == "profile":
            from llmapp.profile import profile_block, profile_of

            profile = profile_of([*older, current])
            if profile:
                system_prompt = "\n\n".join(p for p in (system_prompt, profile_block(profile)) if p)
        system = [{"role": "system", "content": system_prompt}] if system_prompt else []
        budget = window - max_tokens
        fixed = counter.count_messages(system + [current])
        if fixed > budget:
            raise ContextOverflowError(
                f"The message is too long: with the system prompt it needs {fixed} tokens, but "
                f"with max tokens at {max_tokens} the {window}-token window leaves room for "
                f"{max(budget, 0)}. It was not sent; shorten it or lower max tokens.")
        summary, folded = summary_state
        summarized: list[int] = []
        if self.strategy == "full":
            keep = list(range(len(older)))
        elif self.strategy == "window":
            keep = [i for turn in split_turns(older)[len(split_turns(older)) - self.k:]
                    for i in turn] if self.k else []
        elif self.strategy in ("token_budget", "profile"):
            keep = self._newest_that_fit(older, cache, budget - fixed, range(len(older)))
        else:
            turns = split_turns(older)
            recent = [i for turn in turns[max(len(turns) - self.k, 0):] for i in turn] \
                if self.k else []
            cutoff = recent[0] if recent else len(older)
            if cutoff > folded:
                summary = self._fold(summary, older[folded:cutoff])
                folded = cutoff
            summarized = list(range(folded))
            keep = recent
        sent = self._assemble(system, summary if self.strategy == "summary" else None,
                              [older[i] for i in keep], current)
        total = counter.count_messages(sent)
        if total > budget and self.strategy == "full":
            raise ContextOverflowError(
                f"Full-buffer memory no longer fits: the conversation needs {total} tokens, "
                f"the {window}-token window leaves {budget} after max tokens. Pick another "
                "memory strategy, start a new conversation or lower max tokens.")
        while total > budget and keep:  # window/summary turns too long, or a count drifted
            keep = keep[1:]
            sent = self._assemble(system, summary if self.strategy == "summary" else None,
                                  [older[i] for i in keep], current)
            total = counter.count_messages(sent)
        kept = set(keep) | set(range(folded)) if self.strategy == "summary" else set(keep)
        dropped = [i for i in range(len(older)) if i not in kept]
        return MemoryReport(
            messages=sent, prompt_tokens=total, window=window, max_tokens=max_tokens,
            dropped_messages=len(dropped), dropped_turns=0, exact=counter.exact,
            strategy=self.strategy, tokens=[cache(m) for m in sent], dropped=dropped,
            summarized=summarized, summary=summary or None, summary_state=(summary, folded),
            earlier=len(older), profile=profile)

    @staticmethod
    def _newest_that_fit(older: Sequence[Message], cache: TokenCache, room: int,
                         indices: range) -> list[int]:
        keep: list[int] = []
        used = 0
        for i in reversed(indices):
            cost = cache(older[i])
            if used + cost > room:
                break
            used += cost
            keep.append(i)
        return keep[::-1]

    def _fold(self, summary: str, messages: Sequence[Message]) -> str:
        if self.summarize is None:
            raise ConfigError("Summary memory needs a model to write the summary.")
        lines = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)
        prompt = SUMMARY_PROMPT.format(summary=summary or "(none yet)", new_lines=lines)
        return self.summarize(prompt).strip()

    @staticmethod
    def _assemble(system: list[Message], summary: str | None, kept: list[Message],
                  current: Message) -> list[Message]:
        head = list(system)
        if summary:
            head.append({"role": "system", "content": SUMMARY_PREFIX + summary})
        return head + kept + [current]


def recount_all_trim(history: Sequence[Message], counter: TokenCounter, window: int,
                     max_tokens: int) -> list[Message]:
    """The seed's token-budget loop: count every message, drop the oldest,
    count them all again, until the rest fits ``window - max_tokens``.

    Kept only as the baseline for ``benchmarks/bench_memory.py``.
    """
    kept = list(history)
    while kept and sum(counter.count_message(m) for m in kept) > window - max_tokens:
        kept.pop(0)
    return kept
