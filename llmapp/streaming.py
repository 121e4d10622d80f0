"""Any provider's stream as a plain ``Iterator[str]``, with its statistics.

``st.write_stream`` renders ``str`` chunks as Markdown as they arrive, so
:class:`ReplyStream` yields only non-empty strings. When it is exhausted,
:attr:`ReplyStream.stats` holds TTFT, tokens/s and token usage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

from langchain_core.messages import BaseMessage, BaseMessageChunk

from llmapp.errors import ProviderError
from llmapp.repetition import LoopGuard


@dataclass
class ReplyStats:
    """Measurements of one reply.

    Attributes:
        provider: provider name, e.g. ``"local"``.
        model: model name.
        ttft_s: seconds from the request to the first text chunk (time to
            first token), or None if no text came.
        total_s: seconds from the request to the last chunk.
        tokens_per_s: decode rate, ``(completion_tokens - 1) / (t_last -
            t_first)`` between the first and last text chunks, the definition
            of NVIDIA GenAI-Perf's output token throughput per request (it
            leaves out TTFT). None when fewer than two chunks arrived.
        prompt_tokens: tokens in the prompt.
        completion_tokens: tokens in the reply.
        usage_source: ``"reported"`` when the server sent usage, ``"counted"``
            when llmapp counted with the model's tokenizer, ``"estimated"``
            when it counted with a stand-in tokenizer.
        cost_usd: estimated price in US dollars (OpenAI models), else None.
        chunks: text chunks received.
        stopped: why llmapp ended the reply early, or None; ``"repetition"``,
            ``"list"`` or ``"diversity"`` when it degenerated (the
            :class:`~llmapp.repetition.LoopGuard`'s reason), ``"interrupted"``
            when it was closed while still arriving (Stop, a page switch),
            ``"safety"`` when the safety filter withdrew it.
        finish_reason: why the model ended, as the provider reports it:
            ``"stop"``, or ``"length"`` when it reached max tokens (the
            summary then says the reply was cut); None when not reported.
        cache: ``"miss"``, ``"hit-exact"`` or ``"hit-semantic"`` when the
            response cache was asked, None when it is off.
        cached_question: for a semantic hit, the cached question it matched.
        form: the form a grammar held the reply to, in words ("3 bulleted
            items, bold titles"; :mod:`llmapp.prompting.formats`), or None.
    """

    provider: str
    model: str
    ttft_s: float | None = None
    total_s: float = 0.0
    tokens_per_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    usage_source: str = "reported"
    cost_usd: float | None = None
    chunks: int = 0
    stopped: str | None = None
    finish_reason: str | None = None
    cache: str | None = None
    cached_question: str | None = None
    form: str | None = None

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)

    def summary(self) -> str:
        """One line, e.g. ``TTFT 0.12 s · 81 tokens/s · 27 prompt + 11
        completion tokens · 0.25 s total · model (provider)``. Estimated
        counts carry ``~``; the cost shows for priced models only."""
        if self.cache and self.cache.startswith("hit"):
            how = self.cache.removeprefix("hit-")
            return (f"cached · {how} · {self.total_s * 1000:.0f} ms · {self.model} "
                    f"({self.provider})")
        parts = []
        if self.ttft_s is not None:
            parts.append(f"TTFT {self.ttft_s:.2f} s")
        if self.tokens_per_s is not None:
            parts.append(f"{self.tokens_per_s:.0f} tokens/s")
        if self.prompt_tokens is not None and self.completion_tokens is not None:
            approx = "~" if self.usage_source == "estimated" else ""
            parts.append(f"{approx}{self.prompt_tokens} prompt + {approx}"
                         f"{self.completion_tokens} completion tokens")
        if self.cost_usd is not None:
            parts.append(f"≈ ${self.cost_usd:.5f}")
        parts.append(f"{self.total_s:.2f} s total")
        parts.append(f"{self.model} ({self.provider})")
        if self.stopped in LoopGuard.REASONS:
            parts.append(f"stopped: {LoopGuard.REASONS[self.stopped]}")
        if self.stopped == "safety":
            parts.append("withdrawn by the safety filter")
        if self.stopped == "interrupted":
            parts.append("stopped before the end")
        if self.finish_reason == "length" and self.stopped is None:
            parts.append("cut at the max tokens limit")
        if self.form:
            parts.append(f"form kept by a grammar: {self.form}")
        return " · ".join(parts)


class ReplyStream(Iterator[str]):
    """Wraps a LangChain chunk stream; iterate it for text, then read ``stats``.

    Args:
        chunks: the model's ``stream(...)`` iterator; it is started lazily, on
            the first ``next()``, so that TTFT includes the request.
        stats: a :class:`ReplyStats` to fill in.
        count_text: counts tokens in a string, used when the server reports
            no usage.
        exact_count: whether ``count_text`` is the model's own tokenizer.
        on_error: turns a provider exception into a :class:`ProviderError`.
        price: ``(usd_per_1m_input, usd_per_1m_output)`` for the cost.
        guard: a :class:`~llmapp.repetition.LoopGuard`; when it trips, the
            stream ends there (``stats.stopped == "repetition"``) and the
            model's stream is closed, freeing the local model.
        clock: a monotonic clock in seconds (for tests).
        on_finish: called with the stream when it ends by itself (not when
            it fails or is closed early), e.g. to cache the reply.
        on_progress: called with ``(processed, total)`` prompt tokens while
            the model reads the prompt, before the first text (the local
            runtime reports it); may be set after construction.
        monitor: an output check with ``feed(piece) -> bool`` and
            ``finish() -> bool`` (:class:`~llmapp.safety.guard.OutputMonitor`);
            True withdraws the reply: the stream ends without that piece,
            ``stats.stopped == "safety"`` and ``withdrawn`` is True.

    Raises (while iterating):
        ProviderError: whatever the provider raised, translated.
    """

    def __init__(
        self,
        chunks: Callable[[], Iterable[BaseMessageChunk]],
        stats: ReplyStats,
        *,
        count_text: Callable[[str], int] | None = None,
        exact_count: bool = True,
        on_error: Callable[[BaseException], ProviderError] | None = None,
        price: tuple[float, float] | None = None,
        guard: LoopGuard | None = None,
        clock: Callable[[], float] = time.perf_counter,
        on_finish: Callable[[ReplyStream], None] | None = None,
        monitor=None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.monitor = monitor
        self.on_progress = on_progress
        self._open = chunks
        self._on_finish = on_finish
        self._it: Iterator[BaseMessageChunk] | None = None
        self.stats = stats
        self._count_text = count_text
        self._exact = exact_count
        self._on_error = on_error
        self._price = price
        self._guard = guard
        self._clock = clock
        self._parts: list[str] = []
        self._start = 0.0
        self._first: float | None = None
        self._last = 0.0
        self._last_text = 0.0
        self.done = False

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    @property
    def withdrawn(self) -> bool:
        """True when the output check withdrew the reply."""
        return self.stats.stopped == "safety"

    def __iter__(self) -> ReplyStream:
        return self

    def __next__(self) -> str:
        if self.done:
            raise StopIteration
        if self._it is None:
            self._start = self._clock()
            try:
                self._it = iter(self._open())
            except Exception as exc:
                self._fail(exc)
        while True:
            try:
                chunk = next(self._it)
            except StopIteration:
                if self.monitor is not None and self.monitor.finish():
                    self.stats.stopped = "safety"
                self._finish()
                raise
            except Exception as exc:
                self._fail(exc)
            now = self._clock()
            self._last = now
            usage = getattr(chunk, "usage_metadata", None)
            if usage:
                self.stats.prompt_tokens = usage.get("input_tokens")
                self.stats.completion_tokens = usage.get("output_tokens")
                self.stats.usage_source = "reported"
            metadata = getattr(chunk, "response_metadata", None) or {}
            progress = metadata.get("prompt_progress")
            if progress and self.on_progress is not None:
                self.on_progress(*progress[:2])
            finish = metadata.get("finish_reason")
            if finish:
                self.stats.finish_reason = str(finish)
            # langchain-core 1.x returns a str subclass from .text; st.write_stream
            # renders only exact str as Markdown.
            # A model without streaming yields one whole message (a BaseMessage).
            text = str(chunk.text if isinstance(chunk, BaseMessage) else chunk)
            if text:
                if self.monitor is not None and self.monitor.feed(text):
                    self.stats.stopped = "safety"
                    self._stop()
                    raise StopIteration
                if self._first is None:
                    self._first = now
                self._last_text = now
                self._parts.append(text)
                self.stats.chunks += 1
                if self._guard is not None and self._guard.feed(text):
                    self.stats.stopped = self._guard.reason
                    self._stop()
                return text

    def _fail(self, exc: BaseException) -> None:
        self.done = True
        self.stats.total_s = self._clock() - self._start
        if isinstance(exc, ProviderError) or self._on_error is None:
            raise exc
        raise self._on_error(exc) from exc

    def _finish(self, notify: bool = True) -> None:
        self.done = True
        s = self.stats
        s.total_s = self._last - self._start if self._last else self._clock() - self._start
        if self._first is not None:
            s.ttft_s = self._first - self._start
        if s.completion_tokens is None and self._count_text is not None:
            s.completion_tokens = self._count_text(self.text)
            s.usage_source = "counted" if self._exact else "estimated"
        generating = (self._last_text - self._first) if self._first is not None else 0.0
        if s.completion_tokens and s.completion_tokens > 1 and s.chunks > 1 and generating > 0:
            s.tokens_per_s = (s.completion_tokens - 1) / generating
        if self._price and s.prompt_tokens is not None and s.completion_tokens is not None:
            s.cost_usd = (s.prompt_tokens * self._price[0]
                          + s.completion_tokens * self._price[1]) / 1_000_000
        if notify and self._on_finish is not None:
            self._on_finish(self)

    def _stop(self) -> None:
        """End here: release the provider's stream, then finish the stats."""
        close = getattr(self._it, "close", None)
        if close is not None:
            close()
        self._finish()

    def close(self) -> None:
        """Stop early and release the provider's stream (for the local model,
        its lock). Safe to call at any time, also after the end. A stream
        closed while it was still arriving gets its stats as they stand, and
        ``stats.stopped == "interrupted"`` (it is not cached)."""
        interrupted = not self.done and self._it is not None
        self.done = True
        close = getattr(self._it, "close", None)
        if close is not None:
            close()
        if interrupted:
            self.stats.stopped = self.stats.stopped or "interrupted"
            self._finish(notify=False)

    def consume(self) -> str:
        """Read to the end; returns the whole text."""
        for _ in self:
            pass
        return self.text


RENDER_INTERVAL_S = 0.06
"""Seconds between two updates of a streamed reply on a page. Each update is a
websocket message and a Markdown re-render of the whole reply; one per token
held the page at 84 tokens/s where the model gave 140, one every ~50-80 ms
gave 97 (measured in Chromium on 2 cores)."""


def coalesce(chunks: Iterable[str], interval_s: float = RENDER_INTERVAL_S,
             clock: Callable[[], float] = time.monotonic) -> Iterator[str]:
    """Join ``chunks`` into fewer, larger pieces: the first at once (so TTFT
    does not change), then at most one every ``interval_s`` seconds, and the
    rest at the end. The concatenated text is unchanged."""
    buffer: list[str] = []
    last = None
    for chunk in chunks:
        buffer.append(chunk)
        now = clock()
        if last is None or now - last >= interval_s:
            yield "".join(buffer)
            buffer.clear()
            last = now
    if buffer:
        yield "".join(buffer)
