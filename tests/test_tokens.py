import hashlib
import inspect
import os

import pytest

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
