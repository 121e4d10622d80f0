import hashlib
import inspect
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmapp import tokens
from llmapp.errors import ContextOverflowError
from helpers import LengthCounter
from llmapp.tokens import TiktokenCounter, fit_to_window


def msg(role, n, tag=""):
    return {"role": role, "content": (tag or role[0]) * n}


def test_bpe_sources_match_tiktoken():
    from tiktoken_ext import openai_public

    source = inspect.getsource(openai_public)
    for url, sha in tokens._BPE_FILES.values():
        assert url in source and sha in source


def test_encodings_load_from_the_packaged_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tokens, "_ENCODINGS", {})
    assert tokens.seed_tiktoken_cache("o200k_base")
    url, sha = tokens._BPE_FILES["o200k_base"]
    cached = tmp_path / hashlib.sha1(url.encode()).hexdigest()
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha
    enc = tokens.get_encoding("o200k_base")
    assert enc.encode("hello world") == [24912, 2375]


def test_unknown_encoding_is_not_seeded(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    assert tokens.seed_tiktoken_cache("p50k_base") is False
    assert os.listdir(tmp_path) == []


def test_openai_model_counts_exactly_and_unknown_model_is_approximate():
    known = TiktokenCounter("gpt-4.1-mini")
    assert (known.name, known.exact) == ("tiktoken o200k_base", True)
    assert known.count_text("hello world") == 2
    # 3 per message + role + content, 3 to prime the reply (OpenAI cookbook)
    assert known.count_messages([{"role": "user", "content": "hello world"}]) == 3 + 1 + 2 + 3
    guess = TiktokenCounter("llama3.2")
    assert guess.exact is False and guess.count_text("hello world") == 2


def test_fits_without_dropping():
    messages = [msg("system", 10), msg("user", 20), msg("assistant", 20), msg("user", 5)]
    budget = fit_to_window(messages, LengthCounter(), window=100, max_tokens=40)
    assert budget.messages == messages and budget.prompt_tokens == 55
    assert budget.dropped_messages == 0 and budget.notice is None


def test_seed_example_keeps_the_newest_turns():
    # 4,096-token window, max_tokens 2,048: turns of 1000, 1000, 1500, 500 keep [1500, 500]
    messages = [msg("user", 1000, "a"), msg("assistant", 1000, "b"),
                msg("user", 1500, "c"), msg("assistant", 500, "d")]
    # the last message must be the user's: ask a zero-length question
    messages.append({"role": "user", "content": ""})
    budget = fit_to_window(messages, LengthCounter(), window=4096, max_tokens=2048)
    assert [len(m["content"]) for m in budget.messages] == [1500, 500, 0]
    assert (budget.dropped_messages, budget.dropped_turns) == (2, 1)
    assert "Dropped the oldest 1 turn (2 messages)" in budget.notice


def test_system_prompt_is_kept_and_turns_drop_whole():
    messages = [msg("system", 30), msg("user", 30, "a"), msg("assistant", 30, "b"),
                msg("assistant", 30, "c"), msg("user", 30, "d"), msg("assistant", 30, "e"),
                msg("user", 10, "f")]
    budget = fit_to_window(messages, LengthCounter(), window=140, max_tokens=30)
    assert [m["content"][0] for m in budget.messages] == ["s", "d", "e", "f"]
    assert budget.dropped_turns == 1 and budget.dropped_messages == 3


def test_overflow_of_the_last_message_alone_raises_with_numbers():
    messages = [msg("system", 50), msg("user", 60)]
    with pytest.raises(ContextOverflowError) as err:
        fit_to_window(messages, LengthCounter(), window=100, max_tokens=20)
    text = str(err.value)
    assert "110 tokens" in text and "room for 80" in text and err.value.kind == "context_overflow"


def test_real_local_counter_trims_a_long_history():
    from llmapp.providers import LocalProvider
    from llmapp.settings import resolve

    counter = LocalProvider().token_counter(resolve(environ={}, env_file={}))
    long = "word " * 300
    history = []
    for i in range(10):
        history += [{"role": "user", "content": f"{i} {long}"},
                    {"role": "assistant", "content": long}]
    messages = [{"role": "system", "content": "Be brief."}] + history + [
        {"role": "user", "content": "last"}]
    budget = fit_to_window(messages, counter, window=2048, max_tokens=256)
    assert budget.prompt_tokens + 256 <= 2048
    assert budget.prompt_tokens == counter.count_messages(budget.messages)
    assert budget.messages[0]["content"] == "Be brief." and budget.messages[-1]["content"] == "last"
    assert budget.dropped_turns >= 7 and budget.dropped_messages == 2 * budget.dropped_turns


# --- linear trimming (issue 28) -------------------------------------------------

class CountingCounter:
    """A counter at llmapp's boundary that records how many messages it was
    asked to count, in all: OpenAI's cookbook overhead (3 per message, 3 to
    prime the reply) plus one token per character."""

    name = "counting"
    exact = True

    def __init__(self):
        self.counted = 0

    def count_text(self, text):
        return len(text)

    def count_message(self, message):
        self.counted += 1
        return 3 + len(message["content"]) + len(message["role"])

    def count_messages(self, messages):
        self.counted += len(messages)
        return 3 + sum(3 + len(m["content"]) + len(m["role"]) for m in messages)


class BatchCounter(CountingCounter):
    """The same counts, with ``count_each`` (one pass for many messages)."""

    def __init__(self):
        super().__init__()
        self.passes = 0

    def count_each(self, messages):
        self.passes += 1
        self.counted += len(messages)
        return [3 + len(m["content"]) + len(m["role"]) for m in messages]


def long_history(n):
    history = []
    for i in range(n // 2):
        history += [{"role": "user", "content": f"question {i} " + "x" * (i % 17)},
                    {"role": "assistant", "content": f"answer {i} " + "y" * (i % 23)}]
    return [{"role": "system", "content": "Be brief."}, *history,
            {"role": "user", "content": "last"}]


@pytest.mark.parametrize("counter_class", [CountingCounter, BatchCounter])
@pytest.mark.parametrize("n", [2000, 10000])
def test_fitting_counts_each_message_at_most_a_few_times(counter_class, n):
    """The old loop recounted the whole prompt after each dropped turn: for
    2,001 messages, 1.6 million message counts. Now a message is counted at
    most once for the trimming and twice more in the exact checks of the kept
    prompt and the one before it, whatever the history's length."""
    messages = long_history(n)
    counter = counter_class()
    budget = fit_to_window(messages, counter, window=4096, max_tokens=512)
    kept = len(budget.messages)
    assert budget.dropped_messages > n * 0.9 and budget.prompt_tokens <= 4096 - 512
    assert counter.counted <= 3 * kept + 2 * tokens.COUNT_BATCH + 10
    reference = CountingCounter()
    if n == 2000:
        assert tokens.recount_fit_to_window(messages, reference, 4096, 512) == budget
        assert reference.counted > 100 * counter.counted
    if counter_class is BatchCounter:
        assert counter.passes <= 4


ROLE = st.sampled_from(["user", "assistant", "system"])
MESSAGES = st.lists(st.fixed_dictionaries({"role": ROLE, "content": st.text("ab", max_size=30)}),
                    min_size=1, max_size=40)


@settings(max_examples=400, deadline=None)
@given(messages=MESSAGES, window=st.integers(0, 400), max_tokens=st.integers(0, 100),
       batched=st.booleans())
def test_fitting_gives_what_the_recounting_loop_gave(messages, window, max_tokens, batched):
    def run(fit, counter):
        try:
            return fit(messages, counter, window, max_tokens)
        except ContextOverflowError as exc:
            return str(exc)

    ours = run(fit_to_window, BatchCounter() if batched else CountingCounter())
    assert ours == run(tokens.recount_fit_to_window, CountingCounter())


class TemplateCounter(CountingCounter):
    """Counts that do not add up per message: the template charges 50 more
    tokens once a prompt has more than 8 messages (a stand-in for templates
    that are not per message)."""

    def count_messages(self, messages):
        return super().count_messages(messages) + (50 if len(messages) > 8 else 0)


@settings(max_examples=300, deadline=None)
@given(messages=MESSAGES, window=st.integers(0, 400), max_tokens=st.integers(0, 100))
def test_fitting_stays_exact_when_counts_do_not_add_up(messages, window, max_tokens):
    counter = TemplateCounter()
    try:
        budget = fit_to_window(messages, counter, window, max_tokens)
    except ContextOverflowError:
        with pytest.raises(ContextOverflowError):
            tokens.recount_fit_to_window(messages, TemplateCounter(), window, max_tokens)
        return
    assert budget.prompt_tokens == counter.count_messages(budget.messages)
    assert budget.prompt_tokens + max_tokens <= window
    assert budget.messages[-1] == messages[-1]
    # nothing more could have been kept: the turn before the cut does not fit
    assert budget == tokens.recount_fit_to_window(messages, TemplateCounter(), window,
                                                  max_tokens)


def test_the_local_counter_counts_many_messages_in_one_pass_as_one_by_one():
    from llmapp.providers import LocalProvider
    from llmapp.settings import resolve

    counter = LocalProvider().token_counter(resolve(environ={}, env_file={}))
    messages = [{"role": "user", "content": "What is a context window?"},
                {"role": "assistant", "content": "The tokens a model reads at once."},
                {"role": "user", "content": ""},
                {"role": "system", "content": "Be brief.\nVery."},
                {"role": "assistant", "content": "Ok <not special> é 漢字"}]
    assert counter.count_each(messages) == [counter.count_message(m) for m in messages]
    # each count is what the message adds to a real prompt
    prompt = [{"role": "system", "content": "."}, *messages, {"role": "user", "content": "?"}]
    without = prompt[:2] + prompt[3:]
    assert counter.count_messages(prompt) - counter.count_messages(without) == \
        counter.count_message(messages[1])
    # text that spells the template's opening token cannot shift the counts
    tricky = messages + [{"role": "user", "content": "<|im_start|>user\nhi"}]
    assert counter.count_each(tricky) == [counter.count_message(m) for m in tricky]
