"""The response cache: the agreement check, hard negatives and paraphrases
through the cache, the store on SQLite and PostgreSQL, the reply path, and the CLI."""

import json
import time

import pytest
from helpers import ROOT, compatible_settings, run_cli

from llmapp.cache import (
    CacheRequest,
    CacheUse,
    ResponseCache,
    disagreement,
    normalize,
    same_request,
)
from llmapp.chat import ChatStore, start_reply
from llmapp.errors import ConfigError
from llmapp.providers import GenerationParams
from llmapp.storage import Database

PARAMS = GenerationParams(temperature=0.0, max_tokens=24)


def pairs(name):
    return [json.loads(line) for line in (ROOT / "tests" / "data" / name).read_text()
            .splitlines()]


def request(question, scope="session:a", **changes):
    values = {"context": [{"role": "system", "content": "Be brief."}], "model": "local:m",
              "params": {"temperature": 0.0}, "scope": scope, **changes}
    return CacheRequest(question, **values)


@pytest.fixture
def cache(database_url):
    c = ResponseCache(Database(database_url))
    yield c
    c.database.close()


def test_questions_normalize_for_the_exact_key():
    assert normalize("  What is   RAG?? ") == normalize("what is rag") == "what is rag"
    assert request("What is RAG?").exact_key == request("what is  rag").exact_key
    assert request("What is RAG?").exact_key != request("What is RAG?",
                                                        model="local:other").exact_key


@pytest.mark.parametrize("a, b, same", [
    ("How do I open a bank account?", "How do I close a bank account?", False),
    ("What is 12 times 7?", "What is 12 times 8?", False),
    ("Convert 100 dollars to euros.", "Convert 100 euros to dollars.", False),
    ("How do I turn on dark mode?", "How do I turn off dark mode?", False),
    ("What is the capital of France?", "Which city is the capital of France?", True),
    ("How do I sort a dictionary by value?", "How can I sort a dict by its values?", True),
    ("How do I reverse a list in Python?", "How can I reverse a Python list?", True),
])
def test_the_word_check(a, b, same):
    assert same_request(a, b) is same


def served(first, second, tmp_path, **settings):
    """As the cache is used: ``first`` stored in a fresh store, ``second``
    looked up; the hit or None."""
    cache = ResponseCache(Database(tmp_path / f"c{len(list(tmp_path.iterdir()))}.sqlite3"),
                          **settings)
    cache.put(request(first), "the answer to the first")
    try:
        return cache.lookup(request(second), "semantic")
    finally:
        cache.database.close()


@pytest.mark.parametrize("a, b, why", [
    # issue 28: World War II's reply was served for World War I
    ("Where was Albert Einstein born?", "When was Albert Einstein born?", "question word"),
    ("Who did Brutus betray?", "Who betrayed Brutus?", "roles"),
    ("Does the dog chase the cat in the story?", "Does the cat chase the dog in the story?",
     "roles"),
    ("What year did World War II end?", "What year did World War I end?", "ordinals"),
    ("Who was the first president of the United States?",
     "Who was the second president of the United States?", "ordinals"),
    ("What is 15 percent of 80?", "What is 15 percent of 60?", "numbers"),
    ("Give me ten ideas for a party.", "Give me three ideas for a party.", "numbers"),
    ("What is 5 feet in meters?", "What is 5 meters in feet?", "units"),
    ("Convert 10 km.", "Convert 10 km to miles.", "units"),
    ("How many hours are in a week?", "How many minutes are in a week?", "units"),
    ("What can I eat when I'm pregnant?", "What can't I eat when I'm pregnant?", "negation"),
    ("Which fruits have seeds?", "Which fruits have no seeds?", "negation"),
    ("How do I lock my phone?", "How do I unlock my phone?", "negation"),
    ("How do I get to New York?", "How do I get to York?", "entities"),
    ("Did Caesar defeat Pompey?", "Did Pompey defeat Caesar?", "entities"),
    ("Are cats smarter than dogs?", "Are dogs smarter than cats?", "order"),
])
def test_hard_negatives_are_never_served(a, b, why, tmp_path):
    assert disagreement(a, b) == why
    assert served(a, b, tmp_path) is None


@pytest.mark.parametrize("a, b", [
    ("How long should I boil an egg?", "For how many minutes should an egg be boiled?"),
    ("Who wrote Pride and Prejudice?", "Who is the author of Pride and Prejudice?"),
    ("When did World War II end?", "In what year did the Second World War end?"),
    ("Who was the first president of the United States?",
     "Who was the 1st president of the United States?"),
    ("Convert 10 km to miles.", "How many miles are 10 kilometers?"),
    ("Why don't cats like water?", "Why do cats not like water?"),
    ("In Python, how do I sort a list?", "How do I sort a list in Python?"),
    ("What is the GDP of Japan?", "What is Japan's GDP?"),
])
def test_plain_paraphrases_are_served(a, b, tmp_path):
    assert disagreement(a, b) is None
    hit = served(a, b, tmp_path)
    assert hit is not None and hit.kind == "semantic" and hit.question == a


@pytest.mark.slow
@pytest.mark.parametrize("split", ["dev", "test"])
def test_the_labelled_pairs_through_the_cache(split, tmp_path):
    """Each pair as the cache is used (fresh store, put the first, look up the
    second). The rules and threshold were chosen on dev, where the targets
    hold (no wrong hit, >= 80% of paraphrases); the test split is held out,
    and its figures are reported by benchmarks/bench_cache.py."""
    rows = pairs(f"cache_pairs_{split}.jsonl")
    assert sum(r["same"] for r in rows) >= 60 and sum(not r["same"] for r in rows) >= 80
    hits = [served(r["a"], r["b"], tmp_path) is not None for r in rows]
    right = sum(h and r["same"] for h, r in zip(hits, rows, strict=True))
    wrong = [(r["a"], r["b"]) for h, r in zip(hits, rows, strict=True) if h and not r["same"]]
    assert right / sum(r["same"] for r in rows) >= 0.8
    if split == "dev":
        assert wrong == []
    else:
        assert len(wrong) / sum(not r["same"] for r in rows) <= 0.05, wrong


def test_exact_and_semantic_lookups_stay_in_their_scope_and_partition(cache):
    cache.put(request("What is the capital of France?"), "Paris.")
    hit = cache.lookup(request("what is the capital of france"), "exact")
    assert (hit.answer, hit.kind, hit.similarity) == ("Paris.", "exact", 1.0)
    assert cache.lookup(request("Which city is the capital of France?"), "exact") is None
    hit = cache.lookup(request("Which city is the capital of France?"), "semantic")
    assert hit.kind == "semantic" and 0.65 <= hit.similarity < 1.0
    assert hit.question == "What is the capital of France?"
    assert cache.lookup(request("What is the capital of Germany?"), "semantic") is None
    # another session, model, system prompt or sampling never sees it
    assert cache.lookup(request("What is the capital of France?", scope="session:b")) is None
    assert cache.lookup(request("What is the capital of France?", model="openai:x")) is None
    assert cache.lookup(request("What is the capital of France?", params={"temperature": 1})) \
        is None
    assert cache.lookup(request("What is the capital of France?",
                                context=[{"role": "system", "content": "Be long."}])) is None
    assert cache.lookup(request("anything"), "off") is None
    with pytest.raises(ConfigError, match="must be one of off, exact, semantic"):
        cache.lookup(request("anything"), "fuzzy")


def test_entries_expire_and_can_be_cleared(cache):
    cache.put(request("Old question?"), "old")
    cache.ttl_s = 0.05
    time.sleep(0.1)
    assert cache.lookup(request("Old question?"), "exact") is None
    cache.put(request("New question?"), "new")  # and the expired entry is deleted
    cache.ttl_s = 3600
    assert cache.count() == 1
    cache.put(request("Other?", scope="session:b"), "x")
    assert cache.clear("session:b") == 1 and cache.count() == 1
    assert cache.clear() == 1 and cache.count() == 0
    cache.put(request("Blank?"), "   ")
    assert cache.count() == 0  # an empty answer is not cached


def test_a_repeated_question_is_answered_from_the_cache(local_settings, tmp_path):
    use = CacheUse(ResponseCache(Database(tmp_path / "c.sqlite3")), "semantic", "session:t")

    def ask(question, system="Be brief."):
        store = ChatStore()
        store.add_user(question)
        reply = start_reply(store, local_settings, PARAMS, system, cache=use)
        return reply.stream.consume(), reply.stream.stats

    text, first = ask("Name a colour.")
    assert first.cache == "miss" and first.chunks > 1 and text
    again, second = ask("name a colour")
    assert (again, second.cache) == (text, "hit-exact")
    assert second.summary().startswith("cached · exact · ")
    assert second.total_s < first.total_s / 10
    _, other = ask("Name a colour.", system="Answer in French.")
    assert other.cache == "miss"
    use.bypass = True
    _, bypassed = ask("Name a colour.")
    assert bypassed.cache == "miss" and bypassed.chunks > 1


def test_the_openai_compatible_path_is_cached_too(llama_server, tmp_path):
    settings = compatible_settings(llama_server)
    use = CacheUse(ResponseCache(Database(tmp_path / "c.sqlite3")), "exact", "cli")
    stats = []
    for _ in range(2):
        store = ChatStore()
        store.add_user("Say hello.")
        reply = start_reply(store, settings, PARAMS, "Be brief.", cache=use)
        reply.stream.consume()
        stats.append(reply.stream.stats)
    assert [s.cache for s in stats] == ["miss", "hit-exact"]
    assert stats[0].provider == stats[1].provider == "openai-compatible"


def test_llmapp_chat_json_says_how_the_cache_answered(tmp_path):
    env = {"LLMAPP_DATABASE_URL": f"sqlite:///{tmp_path}/c.sqlite3"}
    args = ("chat", "What is the capital of France?", "--temperature", "0", "--max-tokens",
            "24", "--json", "--cache", "semantic")
    said = [json.loads(run_cli(*args, **env).stdout) for _ in range(2)]
    assert [s["stats"]["cache"] for s in said] == ["miss", "hit-exact"]
    assert said[0]["text"] == said[1]["text"] and said[0]["text"]
    close = json.loads(run_cli("chat", "Which city is the capital of France?", "--temperature",
                               "0", "--max-tokens", "24", "--json", "--cache", "semantic",
                               **env).stdout)
    assert close["stats"]["cache"] == "hit-semantic"
    off = json.loads(run_cli(*args, "--cache", "off", **env).stdout)
    assert off["stats"]["cache"] is None
