"""Format instructions read from a request, and the grammar that keeps them
(the grammar on the real runtimes is tested in test_local.py)."""

import pytest

from llmapp.chat import ChatStore, _requested_form
from llmapp.prompting.formats import FormatRequest, format_request
from llmapp.providers import CompatibleProvider, LocalProvider, OpenAIProvider


@pytest.mark.parametrize("request_,expected", [
    ("Give me three ideas for a rainy day, with a bold title for each.",
     FormatRequest("items", 3, bold=True)),
    ("Write a numbered list of five steps to make a cup of tea.",
     FormatRequest("items", 5, numbered=True)),
    ("List 4 European capitals as bullet points", FormatRequest("items", 4)),
    ("Name five fruits.", FormatRequest("items", 5)),
    ("Answer in one word: what colour is the sky?", FormatRequest("word")),
    ("Describe Paris in no more than 12 words.", FormatRequest("words", 12)),
    ("A slogan for a bakery, fewer than eight words", FormatRequest("words", 7)),
    ("Explain gravity in one sentence.", FormatRequest("sentence")),
])
def test_explicit_forms_are_read(request_, expected):
    assert format_request(request_) == expected


@pytest.mark.parametrize("request_", [
    "What is the largest ocean on Earth?",
    "What is 3 times 4?",
    "How many legs do two spiders have?",
    "Tell me a story in 500 words.",  # over MAX_WORDS: left to the model
    "Give me 40 ideas for a party.",  # over MAX_ITEMS
    "Write a haiku about the sea.",
    # found by bench_demo: the Simple Prompt page's own example became a list of two
    "Write a Python function that adds two numbers, in a code block.",
    "I have two cats. Suggest names for them.",
])
def test_no_form_is_read_where_none_is_asked(request_):
    assert format_request(request_) is None


def test_the_grammar_says_what_it_keeps():
    bold = FormatRequest("items", 3, bold=True)
    assert bold.describe() == "3 bulleted items, bold titles"
    assert bold.grammar().startswith('root ::= "- " title rest? "\\n" "- " title')
    assert FormatRequest("items", 2, numbered=True).grammar().startswith('root ::= "1. " rest')
    assert "{0,11}" in FormatRequest("words", 12).grammar()


def test_only_a_model_that_needs_it_gets_a_grammar():
    store = ChatStore()
    store.add_user("Name five fruits.")
    assert _requested_form(LocalProvider(), store) == FormatRequest("items", 5)
    for capable in (OpenAIProvider(), CompatibleProvider()):  # they keep forms themselves
        assert _requested_form(capable, store) is None
    store.add_user("What is the largest ocean?")
    assert _requested_form(LocalProvider(), store) is None
