"""The calculator: arithmetic on numbers, safely (an AST whitelist, no
``eval``), and its guide for models that cannot choose tools.

The guide's grammar (:func:`expression_pattern`) allows only the numbers the
question contains, each once and in the question's order, joined by the
operators its words name: asked "What is 144 divided by 12, plus 7?", the
model can write ``144 / 12 + 7`` or ``144 + 12 / 7``, never ``23 % 19 + 7``
or an empty string. Measured on 12 questions, the 135M model wrote the right
expression for 4 under a plain "digits and operators" pattern, and for 11
with the numbers constrained (``benchmarks/bench_tools.py`` has the figures
on the full question set).
"""

from __future__ import annotations

import ast
import math
import operator
import re

from langchain_core.tools import tool

from llmapp.tools.base import ToolError, ToolGuide, guided

MAX_EXPRESSION = 200
"""Longest expression the calculator accepts, in characters."""
MAX_EXPONENT = 1000
"""Largest exponent: 10 ** 1000 has 1,001 digits; anything bigger is refused
before it is computed (a huge power can take minutes and gigabytes)."""
MAX_MAGNITUDE = 10 ** 1000

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _finite(value: int | float) -> int | float:
    """``value``, or a :class:`ToolError` when it is an infinity or NaN
    (``1e999``, ``1e308 * 10``, ``1e999 - 1e999``): no arithmetic answer."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("The result is too large." if math.isinf(value)
                        else "The result is not a number.")
    return value


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _finite(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > MAX_EXPONENT or
                                             (abs(left) > 1 and abs(right) * math.log10(
                                                 abs(left)) > 1000)):
            raise ToolError(f"The power {left} ** {right} is too large to compute.")
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ToolError("Division by zero.") from None
        except OverflowError:
            raise ToolError("The result is too large.") from None
        if isinstance(result, complex):
            raise ToolError("The result is not a real number.")
        if isinstance(result, int) and abs(result) > MAX_MAGNITUDE:
            raise ToolError("The result is too large.")
        return _finite(result)
    what = type(node).__name__
    if isinstance(node, ast.Name):
        what = f"the name {node.id!r}"
    elif isinstance(node, ast.Attribute):
        what = "attribute access"
    elif isinstance(node, ast.Call):
        what = "a function call"
    raise ToolError(f"Only numbers and + - * / // % ** ( ) are allowed, not {what}.")


def calculate(expression: str) -> int | float:
    """Evaluate arithmetic safely.

    Parses with :mod:`ast` and walks only numbers, unary +/-, and binary
    + - * / // % **. Names, attributes, calls, subscripts, comprehensions and
    strings are refused; so are expressions over :data:`MAX_EXPRESSION`
    characters, exponents over :data:`MAX_EXPONENT`, results over 1,000
    digits, and infinite or NaN results (``1e999``, ``1e308 * 10``).

    Returns:
        An ``int`` (at most 1,001 digits) or a finite ``float``.

    Raises:
        ToolError: empty, unparsable, disallowed or too large. Nothing else:
            any string gives a number or this error
            (``tests/test_tools_arithmetic.py`` checks it with Hypothesis).
    """
    expression = (expression or "").strip()
    if not expression:
        raise ToolError("The expression is empty: give arithmetic such as 23 * 19.")
    if len(expression) > MAX_EXPRESSION:
        raise ToolError(f"The expression is longer than {MAX_EXPRESSION} characters.")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        # ValueError: a NUL character (Python < 3.12); the others: nesting
        # deeper than the parser allows.
        raise ToolError(f"{expression!r} is not arithmetic I can parse.") from None
    return _evaluate(tree)


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression, e.g. "23 * 19" or "(2 + 3) ** 2 / 7".
    Supports + - * / // % ** and parentheses on numbers; nothing else."""
    value = calculate(expression)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return str(value)


ROOT_EXPONENT = "0.5"
"""The exponent of a square root; it only ever comes last ("144 ** 0.5")."""
NUMBER_WORDS = {word: n for n, word in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
     "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
     "eighteen", "nineteen", "twenty"])}
NUMBER_WORDS.update(thirty=30, forty=40, fifty=50, sixty=60, seventy=70, eighty=80, ninety=90,
                    hundred=100, thousand=1000, dozen=12)
IMPLIED = ((r"%|\bpercent", "100", "/"), (r"\bsquared?\b(?!\s+root)", "2", "**"),
           (r"\bcubed?\b", "3", "**"), (r"\bhalf\b", "2", "/"),
           (r"\bdouble\b|\btwice\b", "2", "*"), (r"\btriple\b", "3", "*"),
           (r"\bsquare\s+root\b|\bsqrt\b|√", ROOT_EXPONENT, "**"))
"""Numbers a question implies without writing them, and the operator that
must come before each: "15% of 80" needs ``/ 100``, "9 squared" ``** 2``,
"the square root of 144" ``** 0.5``. An implied number never comes first
(found on held-out questions: the bundled model wrote ``15 * 100 / 240``
for "What's 15% of 240?", which a looser grammar allowed)."""
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
        "eighty": 80, "ninety": 90}
UNITS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
         "nine": 9}
_COMPOUND = re.compile(rf"\b({'|'.join(TENS)})[- ]({'|'.join(UNITS)})\b")
"""A number word of two parts ("twenty-three", "forty two"), read as one
number (found on held-out questions: "seventeen times twenty-three" became
``17 * 20 * 3``)."""
OPERATOR_WORDS = (
    ("+", r"\+|\bplus\b|\badd|\bsum\b|\btotal\b|\band\b|\bmore\b"),
    ("-", (r"(?<![a-z])-(?![a-z])|\bminus\b|\bsubtract|\bless\b|\baway\b|\bdifference\b"
           r"|\bleft\b|\bfewer\b|\bremain")),
    ("*", (r"(?<!\*)\*(?!\*)|×|\btimes\b|\bmultipl|\bproduct\b|%|\bpercent"
           r"|\bdouble\b|\btwice\b|\btriple\b|\beach\b")),
    ("/", r"/|÷|\bdivide|\bper\b|\bover\b|\bsplit\b|\bhalf\b|\baverage\b|\bshare"),
    ("**", r"\*\*|\^|\bpower\b|\bsquared?\b|\bcubed?\b|\bexponent|\broot\b|\bsqrt\b|√"),
)
"""Which operators a question's words allow; a question that names none
allows all five. "of" names none by itself: with it, "What is 2 to the
power of 10?" allowed ``*`` too, and the bundled model wrote "2 * 10"."""
_ESCAPED = {"+": r"\+", "-": "-", "*": r"\*", "/": "/", "**": r"\*\*"}
MAX_OPERANDS = 5
"""Up to this many numbers, the pattern lists each allowed order; beyond, any
of them may come anywhere, and repeat."""


def question_numbers(question: str) -> tuple[list[str], list[str]]:
    """The numbers a question contains, as ``(written, implied)``: those it
    writes (digits or words), in order and without repeats, as the
    calculator reads them (``"1,250"`` -> ``"1250"``), and those it implies
    (100 for a percent, 2 for "squared")."""
    text = _COMPOUND.sub(lambda m: str(TENS[m.group(1)] + UNITS[m.group(2)]), question.lower())
    found = [(m.start(), m.group().replace(",", "")) for m in
             re.finditer(r"\d{1,3}(?:,\d{3})+(?!\d)|\d*\.?\d+", text)]
    found += [(m.start(), str(NUMBER_WORDS[m.group()])) for m in re.finditer(r"[a-z]+", text)
              if m.group() in NUMBER_WORDS]
    written = list(dict.fromkeys(n for _, n in sorted(found)))
    implied = [n for words, n, _ in IMPLIED if re.search(words, text) and n not in written]
    return written, list(dict.fromkeys(implied))


def implied_operators(question: str) -> dict[str, str]:
    """The implied numbers of ``question`` (see :func:`question_numbers`),
    each with the operator that must come before it."""
    text = question.lower()
    written, _ = question_numbers(question)
    found: dict[str, str] = {}
    for words, number, operator in IMPLIED:
        if re.search(words, text) and number not in written:
            found.setdefault(number, operator)
    return found


def question_operators(question: str) -> list[str]:
    """The operators a question's words name (:data:`OPERATOR_WORDS`), or
    all of them when it names none."""
    text = question.lower()
    named = [op for op, words in OPERATOR_WORDS if re.search(words, text)]
    return named or [op for op, _ in OPERATOR_WORDS]


def operand_orders(question: str) -> list[tuple[str, ...]]:
    """The orders the question's numbers may take in the expression: the
    written ones as written ("What is 5 plus 9 times 3" keeps 5, 9, 3), or
    reversed after "from" ("take 18 away from 90": 90, 18); implied ones
    anywhere but first ("25% of 360": 25, 100, 360 or 25, 360, 100), and a
    root's exponent last."""
    written, implied = question_numbers(question)
    if re.search(r"\bfrom\b", question.lower()):
        written.reverse()
    orders = [tuple(written)]
    for number in implied:
        first = 1 if orders[0] else 0  # with no written number, it is all there is
        places = [None] if number == ROOT_EXPONENT else range(first, len(orders[0]) + 1)
        orders = [order + (number,) if i is None else order[:i] + (number,) + order[i:]
                  for order in orders for i in places]
    return list(dict.fromkeys(orders))


def expression_pattern(question: str) -> str:
    """A regular expression (for a JSON Schema ``pattern``) that admits only
    arithmetic on the question's numbers, each once, in the orders of
    :func:`operand_orders`, joined by the operators its words name; an
    implied number comes after its own operator (``/ 100``, ``** 2``).

    A question with more than :data:`MAX_OPERANDS` numbers lets them come in
    any order and repeat; one with no number at all still needs a digit. No
    pattern admits an empty expression.
    """
    operators = "(" + "|".join(_ESCAPED[o] for o in question_operators(question)) + ")"
    orders = operand_orders(question)
    count = len(orders[0])
    if count == 0:
        return r"^\(?-?[0-9][0-9.]*( [-+*/] \(?[0-9][0-9.]*\)?){0,4}$"
    if count == 1:
        number = re.escape(orders[0][0])
        return f"^{number}( {operators} {number})?$"
    if count > MAX_OPERANDS:
        operand = "(" + "|".join(map(re.escape, orders[0])) + ")"
        return f"^{operand}( {operators} {operand}){{1,{count + 1}}}$"
    implied = implied_operators(question)

    def joined(order: tuple[str, ...]) -> str:
        return re.escape(order[0]) + "".join(
            f" {_ESCAPED[implied[n]] if n in implied else operators} {re.escape(n)}"
            for n in order[1:])

    return "^(" + "|".join(map(joined, orders)) + ")$"


def _phrases(result: str) -> list[str]:
    """The ways an answer may write the result: ``"65536"`` or ``"65,536"``."""
    try:
        grouped = f"{int(result):,}"
    except ValueError:
        return [result]
    return list(dict.fromkeys([result, grouped]))


_OPERATOR = r"(?:\s*[+*/×÷^]\s*|\s+-\s*|\s*-\s+)"
_WRITTEN = re.compile(rf"\(*-?\d[\d.,]*(?:{_OPERATOR}\(*\s*\d[\d.,]*\s*\)*)+")
"""Arithmetic written out in a question: numbers joined by operators, with
parentheses ("(48 + 27) * 4 - 13", "1000 / 16"). A minus needs a space on
one side at least: "555-1234" and "2024-05-01" are not subtractions."""
_DATE = re.compile(r"\b\d{1,4}/\d{1,2}/\d{1,4}\b")
EXPLICIT_RELEVANCE = 0.9
"""The calculator's relevance to a message that is arithmetic and little
else ("1000 / 16", "Calculate 3 * (4 + 5)"): the router's examples are
questions in words, and a bare expression is close to none of them."""


def written_expression(question: str) -> str | None:
    """The arithmetic ``question`` writes out, normalized (``×`` is ``*``,
    ``÷`` is ``/``, thousands separators dropped), when it is one the
    calculator computes; else None. Found on held-out demo questions: the
    grammar of the question's numbers could not write "(48 + 27) * 4 - 13"
    (it has no parentheses), and a bare "1000 / 16" went to no tool."""
    if _DATE.search(question):
        return None
    found = _WRITTEN.search(question.replace("×", "*").replace("÷", "/"))
    if found is None:
        return None
    text = found.group().strip()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = text.lstrip(")").rstrip("(-")
    while text.count("(") > text.count(")") and text.startswith("("):
        text = text[1:]
    text = " ".join(re.sub(r"\s*([-+*/^])\s*", r" \1 ", text).split())
    text = text.replace("( ", "(").replace(" )", ")").replace("* *", "**")
    text = re.sub(r"(^|\()- ", r"\1-", text)  # a leading minus sign stays on its number
    try:
        calculate(text)
    except ToolError:
        return None
    return text


def _narrow(question: str) -> dict[str, dict]:
    written = written_expression(question)
    if written is not None:
        return {"expression": {"const": written}}
    return {"expression": {"pattern": expression_pattern(question)}}


def _relevance(question: str) -> float:
    """:data:`EXPLICIT_RELEVANCE` for a message that is arithmetic and at
    most two words besides; else nothing (the examples decide)."""
    written = written_expression(question)
    if written is None:
        return -1.0
    rest = _WRITTEN.sub(" ", question.replace("×", "*").replace("÷", "/"))
    return EXPLICIT_RELEVANCE if len(re.findall(r"[A-Za-z]+", rest)) <= 2 else -1.0


guided(calculator, ToolGuide(
    examples=(
        ("What is 12 times 7?", {"expression": "12 * 7"}),
        ("How much is 1250 minus 387?", {"expression": "1250 - 387"}),
        ("What is 2 to the power of 10?", {"expression": "2 ** 10"}),
        ("What is 144 divided by 12, plus 7?", {"expression": "144 / 12 + 7"}),
        ("What is 40% of 250?", {"expression": "40 / 100 * 250"}),
        ("Take 5 away from 20", {"expression": "20 - 5"}),
        ("What's 9 squared?", {"expression": "9 ** 2"}),
        ("What is the square root of 81?", {"expression": "81 ** 0.5"}),
        ("Add 8, 15 and 4", {"expression": "8 + 15 + 4"}),
        ("Calculate 3.5 * 6", {"expression": "3.5 * 6"}),
        ("If 3 friends share 36 cookies, how many does each get?", {"expression": "36 / 3"}),
        ("What is 6*9?", {"expression": "6 * 9"}),
        ("What's 120/4 + 3?", {"expression": "120 / 4 + 3"}),
    ),
    hint="Write the question's arithmetic: plus is +, minus is -, times is *, divided by is /, "
         "to the power of is **.",
    narrow=_narrow, result_is_answer=True, relevance=_relevance,
    relevance_reason="the question writes its arithmetic out",
    answer_phrases=lambda result, question: _phrases(result),
    state=lambda args, result: f"{args['expression']} = {_phrases(result)[-1]}"))
