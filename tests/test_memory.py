import pytest

from helpers import LengthCounter, ScriptedChatModel
from llmapp.errors import ConfigError, ContextOverflowError
from llmapp.memory import SUMMARY_PREFIX, Memory, TokenCache, recount_all_trim, split_turns


def m(role, n, tag=None):
    return {"role": role, "content": (tag or role[0]) * n}


def conversation(*sizes):
    """Alternating user/assistant messages of the given sizes, then a new 1-token question."""
    roles = ["user", "assistant"]
    tags = [chr(ord("a") + i) if i < 10 else chr(0x100 + i) for i in range(len(sizes))]
    return [m(roles[i % 2], n, tags[i]) for i, n in enumerate(sizes)] + [m("user", 1, "q")]


def select(strategy, history, window=100, max_tokens=20, system="", **kw):
    return Memory(strategy, **kw).select(system, history, LengthCounter(), window, max_tokens)


def contents(report):
    return [x["content"][0] for x in report.messages]


def test_seed_example_token_budget_keeps_the_newest_that_fit():
    # 4,096-token window, max_tokens 2,048: [1000, 1000, 1500, 500] keeps [1500, 500]
    history = [m("user", 1000, "a"), m("assistant", 1000, "b"), m("user", 1500, "c"),
               m("assistant", 500, "d"), {"role": "user", "content": ""}]
    report = select("token_budget", history, window=4096, max_tokens=2048)
    assert [len(x["content"]) for x in report.messages] == [1500, 500, 0]
    assert report.dropped == [0, 1] and report.tokens == [1500, 500, 0]
    assert report.prompt_tokens == 2000
    assert "2 older messages were not sent" in report.notice


def test_full_buffer_sends_everything_until_it_cannot():
    history = conversation(10, 10, 10)
    report = select("full", history, system="S" * 5)
    assert contents(report) == ["S", "a", "b", "c", "q"] and report.dropped == []
    with pytest.raises(ContextOverflowError, match="Full-buffer memory no longer fits"):
        select("full", conversation(40, 40, 40))


def test_window_keeps_the_last_k_turns():
    history = conversation(5, 5, 5, 5, 5, 5)  # turns: (a,b) (c,d) (e,f)
    assert contents(select("window", history, k=2)) == ["c", "d", "e", "f", "q"]
    assert select("window", history, k=2).dropped == [0, 1]
    assert contents(select("window", history, k=10)) == ["a", "b", "c", "d", "e", "f", "q"]


def test_k_zero_sends_only_the_new_message():
    report = select("window", conversation(5, 5), k=0, system="S")
    assert contents(report) == ["S", "q"] and report.dropped == [0, 1]


def test_an_empty_history_sends_the_new_message():
    for strategy in ("full", "window", "token_budget"):
        report = select(strategy, [m("user", 3, "q")], system="S")
        assert contents(report) == ["S", "q"] and report.dropped == [] and report.notice is None


def test_the_system_prompt_alone_over_budget_is_refused():
    with pytest.raises(ContextOverflowError, match="room for 80"):
        select("token_budget", [m("user", 1)], system="S" * 90)


@pytest.mark.parametrize("k", [-1, 1001, 2.5, True])
def test_k_out_of_range_is_a_clear_error(k):
    with pytest.raises(ConfigError, match="k must be a whole number from 0 to 1000"):
        Memory("window", k=k)


def test_unknown_strategy():
    with pytest.raises(ConfigError, match="Unknown memory strategy 'forever'"):
        Memory("forever")


def test_turns_group_a_user_message_with_its_replies():
    roles = ["assistant", "user", "assistant", "assistant", "user"]
    assert split_turns([{"role": r, "content": ""} for r in roles]) == [[0], [1, 2, 3], [4]]


def test_token_cache_counts_each_message_once():
    history = conversation(*[5] * 20)
    memory = Memory("token_budget")
    counter = LengthCounter()
    memory.select("", history, counter, window=60, max_tokens=10)
    first = memory.cache.counted
    history += [m("assistant", 5, "z"), m("user", 1, "y")]
    memory.select("", history, counter, window=60, max_tokens=10)
    assert memory.cache.counted - first <= 2  # only the new messages were counted
    assert isinstance(memory.cache, TokenCache)


def test_summary_memory_folds_older_turns_with_the_model():
    model = ScriptedChatModel(["Alice likes tea.", "Alice likes tea and lives in Oslo."])
    memory = Memory("summary", k=1, summarize=lambda p: model.invoke(p).text)
    history = [{"role": "user", "content": "I am Alice."}, {"role": "assistant", "content": "Hi Alice!"},
               {"role": "user", "content": "I like tea."}, {"role": "assistant", "content": "Noted."},
               {"role": "user", "content": "What do I like?"}]
    report = memory.select("Be brief.", history, LengthCounter(), 1000, 100)
    [prompt] = model.prompts
    assert "Current summary:\n(none yet)" in prompt
    assert "User: I am Alice.\nAssistant: Hi Alice!" in prompt and "I like tea" not in prompt
    assert report.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": SUMMARY_PREFIX + "Alice likes tea."},
        {"role": "user", "content": "I like tea."}, {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "What do I like?"}]
    assert report.summarized == [0, 1] and report.summary_state == ("Alice likes tea.", 2)
    assert "2 older messages are in the summary" in report.notice

    # next turn: only the newly old turn is folded, onto the previous summary
    history += [{"role": "assistant", "content": "Tea."}, {"role": "user", "content": "I live in Oslo."},
                {"role": "assistant", "content": "Nice."}, {"role": "user", "content": "Where?"}]
    report = memory.select("Be brief.", history, LengthCounter(), 1000, 100, report.summary_state)
    assert len(model.prompts) == 2
    assert "Current summary:\nAlice likes tea." in model.prompts[1]
    assert "I am Alice" not in model.prompts[1] and "User: I like tea." in model.prompts[1]
    assert report.summary_state == ("Alice likes tea and lives in Oslo.", 6)
    assert [x["content"] for x in report.messages[2:]] == ["I live in Oslo.", "Nice.", "Where?"]


def test_summary_memory_without_a_model_is_a_clear_error():
    with pytest.raises(ConfigError, match="needs a model"):
        select("summary", conversation(5, 5, 5, 5), k=1)


def test_recount_all_baseline_agrees_with_token_budget():
    history = conversation(*[7, 3, 11, 5] * 10)
    counter = LengthCounter()
    kept = recount_all_trim(history, counter, window=80, max_tokens=20)
    report = Memory("token_budget").select("", history, counter, 80, 20)
    assert kept == report.messages
