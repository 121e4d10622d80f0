"""``letter_count``: letters counted, the grammar that narrows its arguments
to the question, and a whole run on the bundled model."""

import pytest

from llmapp.providers import GenerationParams
from llmapp.routed import argument_schema, run_routed_agent
from llmapp.tools import ToolError, available_tools, letter_count


def test_letters_are_counted_ignoring_case():
    assert letter_count.invoke({"text": "Mississippi", "letter": "S"}) == \
        '4 × "s" in "Mississippi"'
    with pytest.raises(ToolError, match="not one letter"):
        letter_count.invoke({"text": "abc", "letter": "ab"})


@pytest.mark.parametrize("question,text,letters", [
    ("How many r's are in strawberry?", ["strawberry"], ["r"]),
    ("How many times does the letter s appear in 'Mississippi'?", ["Mississippi"], ["s"]),
    ("Count the letter e in excellence", ["excellence"], ["e"]),
])
def test_the_grammar_offers_only_the_questions_word_and_letter(question, text, letters):
    schema = argument_schema(letter_count, question)["properties"]
    assert schema["text"]["enum"] == text and schema["letter"]["enum"] == letters


@pytest.mark.slow
@pytest.mark.parametrize("question,expected", [
    ("How many r's are in strawberry?", '"strawberry" has 3 "r".'),
    ("How many times does the letter s appear in 'Mississippi'?", '"Mississippi" has 4 "s".'),
])
def test_the_router_picks_it_on_the_bundled_model(local_settings, question, expected):
    """Found on held-out demo questions: the word counter answered a letter
    count with "1 words, 11 characters"."""
    tools = available_tools()
    events = [e for e in run_routed_agent(local_settings, tools, question, params=GenerationParams(
        temperature=0.2, max_tokens=96)) if e.kind != "token"]
    assert [e.kind for e in events] == ["tool_call", "tool_result", "answer"]
    assert events[0].name == "letter_count" and events[-1].text == expected
