"""``convert_units``: a quantity from one unit to another (length, mass,
volume, temperature, time, speed, ...), with Pint's unit registry, and its
guide.

The guide's grammar lets the model pick the value only among the question's
numbers and the units only among the words of the question that Pint reads
as units; the unit written right after the number is the one converted
from. Asked "Convert 5 kilometres to metres", the bundled 135M model wrote
``5 * 1000`` for the calculator at best, and "5 kilometres is 5 metres" on
its own (held-out demo questions, stop 34).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from langchain_core.tools import tool

from llmapp.tools.arithmetic import question_numbers
from llmapp.tools.base import ToolError, ToolGuide, guided

NOT_UNITS = frozenset({
    "a", "an", "are", "at", "in", "is", "it", "to", "of", "or", "and", "as", "by", "for", "on",
    "per", "degree", "degrees", "pi", "do", "does", "many", "much", "how", "what", "there",
    "into", "than", "equal", "equals", "makes", "make", "count",
    "b", "c", "e", "k", "t", "u", "x", "y"})
"""Words Pint reads as units that a question almost never means as one ("a"
is a year, "in" an inch, "are" 100 m², "pi" a constant); "degrees" is left
to the scale that follows it ("degrees Celsius"). A unit symbol such as "m",
"g", "s", "km" or "°C" still counts."""
_TOKEN = re.compile(r"°\s?[CF]\b|(?<!['’])\b(?:(?:square|cubic|fluid|sq)\s+)?[A-Za-z]+"
                    r"(?:\s+per\s+[A-Za-z]+)?")
"""A unit as written: a word, a two-word unit ("fluid ounces", "square
feet"), a rate ("km per hour"), or a degree sign with its scale."""


@functools.cache
def _registry():
    """Pint's default unit registry (imported here: loading it takes ~0.8 s,
    which no page should pay before a unit is converted)."""
    import pint

    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


def _unit(word: str):
    """The Pint unit ``word`` names, or None."""
    import pint

    word = word.strip().replace("° ", "°")
    if not word or word.lower() in NOT_UNITS:
        return None
    for key in dict.fromkeys((word, word.lower(), word.replace(" ", "_"),
                              word.lower().replace(" ", "_"))):
        try:
            return _registry().parse_units(key)
        except (pint.errors.PintError, AttributeError, ValueError, TypeError, AssertionError):
            continue
    return None


def unit_candidates(question: str) -> list[str]:
    """The words of ``question`` that name units, as written, in order and
    without repeats ("Convert 5 km to metres" -> ``["km", "metres"]``)."""
    found = []
    for match in _TOKEN.finditer(question):
        word = match.group()
        if _unit(word) is not None:
            found.append(word)
        else:  # "square" alone, or "km per hour" read as "km" and "hour"
            found += [part for part in word.split() if _unit(part) is not None]
    return list(dict.fromkeys(found))


def _number_text(value: float) -> str:
    """A converted value as people write it: whole numbers plainly, others
    to two decimals (37.78), small ones to four significant digits (0.0254)."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit``.

    Temperatures convert as temperatures (100 °F is 37.78 °C), not as
    differences.

    Raises:
        ToolError: a unit Pint does not know, or units of different kinds
            (metres to kilograms).
    """
    import pint

    source, target = _unit(from_unit), _unit(to_unit)
    for name, unit in ((from_unit, source), (to_unit, target)):
        if unit is None:
            raise ToolError(f"{name!r} is not a unit I know.")
    try:
        return float(_registry().Quantity(float(value), source).to(target).magnitude)
    except pint.errors.DimensionalityError:
        raise ToolError(f"{from_unit} cannot be converted to {to_unit}: they measure "
                        "different things.") from None


@tool
def convert_units(value: float, from_unit: str, to_unit: str) -> str:
    """Convert a quantity from one unit to another, e.g. 5 kilometres to
    metres, 100 Fahrenheit to Celsius, 3 hours to minutes."""
    return f"{_number_text(float(value))} {from_unit} = " \
           f"{_number_text(convert(value, from_unit, to_unit))} {to_unit}"


def _from_unit(question: str, units: list[str]) -> list[str]:
    """The units that may be converted from: the one written right after a
    number ("2.5 kilograms", "30°C") if there is one, else any."""
    after_number = [u for u in units if re.search(
        rf"(?:\d|\b(?:a|an|one)\b)\s*(?:degrees?\s+)?{re.escape(u)}", question,
        flags=re.IGNORECASE)]
    return after_number[:1] or units


def _compatible(a: str, b: str) -> bool:
    """Whether units ``a`` and ``b`` measure the same kind of thing."""
    return _unit(a).dimensionality == _unit(b).dimensionality


def _narrow(question: str) -> dict[str, dict[str, Any]]:
    written, _ = question_numbers(question)
    values = [float(n) for n in written] or [1.0]  # "How many grams in a kilogram?"
    units = unit_candidates(question)
    narrowed: dict[str, dict[str, Any]] = {"value": {"enum": values}}
    if units:
        source = _from_unit(question, units)
        others = [u for u in units if u not in source] or units
        targets = [u for u in others if len(source) > 1 or _compatible(source[0], u)] or others
        narrowed["from_unit"] = {"enum": source}
        narrowed["to_unit"] = {"enum": targets}
    return narrowed


def _phrases(result: str, question: str) -> list[str]:
    """The converted number as the result writes it, and with thousands
    separators ("5000", "5,000")."""
    number = result.split(" = ", 1)[-1].split(" ", 1)[0]
    try:
        whole = float(number)
    except ValueError:
        return [result]
    grouped = f"{int(whole):,}" if whole == int(whole) else number
    return list(dict.fromkeys([number, grouped]))


guided(convert_units, ToolGuide(
    examples=(
        ("Convert 5 kilometres to metres", {"value": 5, "from_unit": "kilometres",
                                            "to_unit": "metres"}),
        ("How many grams are in 3 kilograms?", {"value": 3, "from_unit": "kilograms",
                                                "to_unit": "grams"}),
        ("What is 100 degrees Fahrenheit in Celsius?", {"value": 100, "from_unit": "Fahrenheit",
                                                        "to_unit": "Celsius"}),
        ("How many minutes are there in 2.5 hours?", {"value": 2.5, "from_unit": "hours",
                                                      "to_unit": "minutes"}),
        ("Convert 10 miles to km", {"value": 10, "from_unit": "miles", "to_unit": "km"}),
        ("How many litres is 2 gallons?", {"value": 2, "from_unit": "gallons",
                                           "to_unit": "litres"}),
        ("6 feet in centimetres?", {"value": 6, "from_unit": "feet", "to_unit": "centimetres"}),
        ("What is 30°C in Fahrenheit?", {"value": 30, "from_unit": "°C",
                                         "to_unit": "Fahrenheit"}),
        ("How many ounces are in 4 pounds?", {"value": 4, "from_unit": "pounds",
                                              "to_unit": "ounces"}),
    ),
    hint="Copy the number and the two units from the question.",
    narrow=_narrow, result_is_answer=True, answer_phrases=_phrases,
    state=lambda args, result: result + "."))
