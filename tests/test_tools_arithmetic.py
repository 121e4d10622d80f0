"""The calculator under attack (issue 28, "tests that attack"): whatever
string comes in, the answer is a number or a ToolError. Nothing else
escapes, no infinity or NaN passes as a number, and no input hangs: huge
powers and products are refused before they are computed. A hang would be
caught by the ``timeout`` mark, which asserts no duration."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmapp.tools import MAX_EXPRESSION, ToolError, calculate, calculator
from llmapp.tools.arithmetic import MAX_MAGNITUDE

OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "^"]
NUMBERS = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.integers(0, 10**120).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e308", "1e999", "9" * 60, ".5", "0", "2", "10", "-1", "1_000", "0x10"]))


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(OPERATORS), children).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})")
    return st.one_of(binary, children.map(lambda c: f"-{c}"), children.map(lambda c: f"+{c}"))


EXPRESSIONS = st.recursive(NUMBERS, _combine, max_leaves=10)
"""Arithmetic the calculator must handle: towers of powers, huge products,
divisions by zero, overflows."""
INPUTS = st.one_of(
    EXPRESSIONS,
    st.text(max_size=MAX_EXPRESSION + 10),
    st.text(alphabet="0123456789.eE+-*/%()^ _jx\x00\n", max_size=80))
"""Any text at all, text made of the calculator's own characters, and
well-formed arithmetic."""


def _is_an_answer(value: object) -> bool:
    if type(value) is int:
        return abs(value) <= MAX_MAGNITUDE
    return type(value) is float and math.isfinite(value)


@pytest.mark.timeout(300)
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(INPUTS)
def test_any_string_gives_a_number_or_a_tool_error(expression):
    try:
        value = calculate(expression)
    except ToolError as exc:
        assert str(exc)  # a message a user can read
        return
    assert _is_an_answer(value), (expression, value)


@pytest.mark.timeout(300)
@settings(max_examples=300, deadline=None)
@given(st.integers(2, 10**6), st.integers(10, 10**6), st.integers(4, 10**6))
def test_towers_of_powers_are_refused_not_computed(a, b, c):
    """``a ** b ** c`` (b ** c >= 10,000, over the exponent cap) is refused;
    it is never computed (that would take hours and gigabytes)."""
    with pytest.raises(ToolError, match="too large"):
        calculate(f"{a} ** {b} ** {c}")


@pytest.mark.parametrize("expression", ["1e999", "1e308 * 10", "-1e999", "1e999 - 1e999",
                                        "2.0 ** 1000 * 2.0 ** 1000"])
def test_infinity_and_nan_are_not_answers(expression):
    """Regression (issue 28): ``1e999`` gave ``inf`` and the tool said "inf"."""
    with pytest.raises(ToolError, match="too large|not a number"):
        calculate(expression)
    with pytest.raises(ToolError):
        calculator.invoke({"expression": expression})


def test_a_nul_character_is_a_tool_error():
    """Python before 3.12 raises ValueError, not SyntaxError, for a NUL."""
    with pytest.raises(ToolError, match="not arithmetic"):
        calculate("1\x00+1")


def test_of_names_no_operator_by_itself():
    """Found by bench_demo: "of" allowed ``*``, and the bundled model wrote
    "2 * 10" for "2 to the power of 10"."""
    from llmapp.tools.arithmetic import question_operators

    assert question_operators("What is 2 to the power of 10?") == ["**"]
    assert question_operators("What is 15% of 240?") == ["*"]  # the "/ 100" is implied
