"""The pages' examples and the checks that say whether an answer is right."""

import json

import pytest

from helpers import ROOT
from llmapp.demo import EXAMPLES, Check, prompts


def test_each_rule_tells_right_from_wrong():
    titles = "**Read** a book.\n**Bake** bread.\n**Paint** a mug."
    assert Check(rule="bold_titles:3").passes(titles)
    assert not Check(rule="bold_titles:3").passes("Read, bake and paint.")
    assert Check(rule="list_items:3").passes("- a\n- b\n3. c")
    assert not Check(rule="list_items:3").passes("1. a 2. b 3. c")  # one line is no list
    assert Check(rule="max_words:5").passes("Plants make food from light.")
    assert not Check(rule="max_words:5").passes("") and not Check(rule="max_words:2").passes(
        "Plants make food.")
    assert Check(expect_any=("384",)).passes("It has 384 dimensions [1].")
    assert Check(refusal=True).passes("The documents do not say.")
    assert not Check(refusal=True).passes("Paris is the capital of France.")
    with pytest.raises(ValueError, match="unknown check rule"):
        Check(rule="rhymes:2").passes("x")


def test_a_pages_prompts_are_its_examples_turns_in_order_once():
    assert prompts("memory")[:2] == ["Hi! My name is Priya and I live in Lisbon.",
                                     "What is my name?"]
    assert len(prompts("memory")) == len(set(prompts("memory")))
    assert prompts("no-such-page") == []
    assert {e.page for e in EXAMPLES} == {"simple", "rag", "memory", "tools", "agent"}


def test_the_held_out_questions_parse_into_checks():
    lines = (ROOT / "benchmarks" / "data" / "demo_questions.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert {r["split"] for r in rows} == {"dev", "test", "test2", "test3"}
    for row in rows:
        check = Check.from_dict(row)
        assert check.expect_any or check.refusal or check.rule, row
        check.passes("any reply")  # every rule is known
