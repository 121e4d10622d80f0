import pytest
from langchain_core.messages import AIMessageChunk

from llmapp.errors import ProviderError
from llmapp.streaming import ReplyStats, ReplyStream


class Clock:
    """A clock that advances 0.1 s per reading."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        self.t += 0.1
        return round(self.t, 6)


def chunks(*texts, usage=None):
    def gen():
        for text in texts:
            yield AIMessageChunk(content=text)
        if usage:
            yield AIMessageChunk(content="", usage_metadata=usage)
    return gen


def test_yields_only_non_empty_strings_and_measures():
    stats = ReplyStats("local", "m")
    usage = {"input_tokens": 12, "output_tokens": 4, "total_tokens": 16}
    stream = ReplyStream(chunks("**Hi", "", "** there", "!", usage=usage), stats, clock=Clock())
    out = list(stream)
    assert out == ["**Hi", "** there", "!"] and all(type(t) is str for t in out)
    assert stream.text == "**Hi** there!"
    # clock: start 0.1, chunks at 0.2, 0.3(empty), 0.4, 0.5, usage at 0.6
    assert stats.ttft_s == pytest.approx(0.1)
    assert stats.tokens_per_s == pytest.approx((4 - 1) / 0.3)
    assert (stats.prompt_tokens, stats.completion_tokens, stats.usage_source) == (12, 4, "reported")
    assert stats.total_s == pytest.approx(0.5)
    assert stats.chunks == 3


def test_counts_tokens_when_the_server_reports_none():
    stats = ReplyStats("openai-compatible", "m", prompt_tokens=30, usage_source="estimated")
    stream = ReplyStream(chunks("a b", " c"), stats, count_text=lambda t: len(t.split()),
                         exact_count=False, price=(1.0, 2.0), clock=Clock())
    assert stream.consume() == "a b c"
    assert (stats.completion_tokens, stats.usage_source) == (3, "estimated")
    assert stats.cost_usd == pytest.approx((30 * 1.0 + 3 * 2.0) / 1e6)
    assert "~30 prompt + ~3 completion tokens" in stats.summary()


def test_a_reply_cut_at_max_tokens_says_so():
    def cut():
        yield AIMessageChunk(content="The answer was")
        yield AIMessageChunk(content="", response_metadata={"finish_reason": "length"})
    stats = ReplyStats("local", "m")
    ReplyStream(cut, stats, clock=Clock()).consume()
    assert stats.finish_reason == "length"
    assert stats.summary().endswith("cut at the max tokens limit")
    done = ReplyStats("local", "m")
    ReplyStream(chunks("Done."), done, clock=Clock()).consume()
    assert done.finish_reason is None and "max tokens" not in done.summary()


def test_a_single_chunk_has_no_rate():
    stats = ReplyStats("local", "m")
    ReplyStream(chunks("all at once"), stats, count_text=len, clock=Clock()).consume()
    assert stats.ttft_s is not None and stats.tokens_per_s is None


def test_errors_become_provider_errors_and_keep_the_partial_text():
    def failing():
        yield AIMessageChunk(content="partial")
        raise ConnectionResetError("peer went away")

    stats = ReplyStats("openai", "m")
    stream = ReplyStream(failing, stats,
                         on_error=lambda e: ProviderError(f"lost: {type(e).__name__}",
                                                          kind="connection"),
                         clock=Clock())
    assert next(stream) == "partial"
    with pytest.raises(ProviderError) as err:
        next(stream)
    assert str(err.value) == "lost: ConnectionResetError" and err.value.retryable
    assert stream.text == "partial" and stream.done
    with pytest.raises(StopIteration):
        next(stream)


def test_an_error_opening_the_stream_is_translated():
    def cannot_open():
        raise TimeoutError

    stream = ReplyStream(cannot_open, ReplyStats("openai", "m"),
                         on_error=lambda e: ProviderError("slow", kind="timeout"))
    with pytest.raises(ProviderError, match="slow"):
        list(stream)


def test_the_request_starts_on_first_next_not_before():
    opened = []

    def source():
        opened.append(True)
        yield AIMessageChunk(content="x")

    stream = ReplyStream(source, ReplyStats("local", "m"))
    assert opened == []
    next(stream)
    assert opened == [True]
