"""``convert_units``: conversions with Pint, the grammar that narrows its
arguments to the question, and a whole run on the bundled model."""

import pytest

from llmapp.providers import GenerationParams
from llmapp.routed import argument_schema, run_routed_agent
from llmapp.tools import ToolError, available_tools, convert_units, guide_of
from llmapp.tools.units import convert, unit_candidates


@pytest.mark.parametrize("value,source,target,expected", [
    (5, "kilometres", "metres", 5000),
    (2.5, "kilograms", "grams", 2500),
    (100, "Fahrenheit", "Celsius", 37.7778),  # a temperature, not a difference
    (30, "°C", "Fahrenheit", 86),
    (1, "day", "seconds", 86400),
    (60, "mph", "km per hour", 96.5606),
    (2, "square metres", "square feet", 21.5278),
])
def test_conversions(value, source, target, expected):
    assert convert(value, source, target) == pytest.approx(expected, rel=1e-4)


def test_the_result_states_both_sides_plainly():
    assert convert_units.invoke({"value": 5, "from_unit": "km", "to_unit": "m"}) == \
        "5 km = 5000 m"
    assert convert_units.invoke({"value": 100, "from_unit": "Fahrenheit",
                                 "to_unit": "Celsius"}) == "100 Fahrenheit = 37.78 Celsius"
    assert convert_units.invoke({"value": 1, "from_unit": "inch",
                                 "to_unit": "km"}) == "1 inch = 2.54e-05 km"


@pytest.mark.parametrize("source,target,words", [
    ("metres", "kilograms", "measure different things"),
    ("furlongz", "metres", "'furlongz' is not a unit"),
    ("in", "metres", "'in' is not a unit"),  # Pint reads "in" as an inch; people don't
])
def test_what_cannot_be_converted_is_a_tool_error(source, target, words):
    with pytest.raises(ToolError, match=words):
        convert(1, source, target)


@pytest.mark.parametrize("question,value,source,target", [
    ("Convert 5 kilometres to metres.", [5.0], ["kilometres"], ["metres"]),
    ("How many grams are there in 2.5 kilograms?", [2.5], ["kilograms"], ["grams"]),
    ("What is 100 degrees Fahrenheit in Celsius?", [100.0], ["Fahrenheit"], ["Celsius"]),
    ("How many seconds are in a day?", [1.0], ["day"], ["seconds"]),
    ("What's 60 mph in km per hour?", [60.0], ["mph"], ["km per hour"]),
])
def test_the_grammar_offers_only_the_questions_number_and_units(question, value, source,
                                                                  target):
    schema = argument_schema(convert_units, question)["properties"]
    assert schema["value"]["enum"] == value
    assert schema["from_unit"]["enum"] == source and schema["to_unit"]["enum"] == target


def test_words_pint_misreads_are_not_units():
    assert unit_candidates("What is a kilogram in pounds?") == ["kilogram", "pounds"]
    assert unit_candidates("How are you? What's up in Paris?") == []


def test_the_answer_must_state_the_converted_number():
    guide = guide_of(convert_units)
    assert guide.answer_phrases("5 km = 5000 m", "") == ["5000", "5,000"]
    assert guide.answer_phrases("100 F = 37.78 C", "") == ["37.78"]


def test_the_offline_tools_include_it():
    assert "convert_units" in available_tools()


@pytest.mark.slow
@pytest.mark.parametrize("question,expected", [
    ("Convert 5 kilometres to metres.", "5000"),
    ("How many grams are there in 2.5 kilograms?", "2500"),
])
def test_the_router_picks_it_on_the_bundled_model(local_settings, question, expected):
    tools = available_tools()
    events = [e for e in run_routed_agent(local_settings, {n: tools[n] for n in (
        "calculator", "word_count", "convert_units", "current_datetime")}, question,
        params=GenerationParams(temperature=0.2, max_tokens=96)) if e.kind != "token"]
    assert [e.kind for e in events] == ["tool_call", "tool_result", "answer"]
    assert events[0].name == "convert_units" and expected in events[1].text
    assert expected in events[2].text
