"""Stage 5: typed tools a model can call, as LangChain tools.

=====================  ====================================================
tool                   does
=====================  ====================================================
``calculator``         arithmetic on numbers, safely (an AST whitelist; no
                       ``eval``): + - * / // % ** and parentheses
``word_count``         words and characters of a text
``letter_count``       how many times a letter occurs in a word
``convert_units``      a quantity from one unit to another, with Pint
``current_datetime``   the date and time now, in a time zone
``knowledge_base``     cited snippets from a stage-3 Chroma collection
``fetch_url``          a web page as text: http(s) only, size and time
                       limits, no loopback or private addresses by default
``web_search``         a web search with ``ddgs``
=====================  ====================================================

Tools return text for the model and raise :class:`ToolError` with a message
the model (and the user) can act on.

Each tool module also holds the tool's :class:`ToolGuide`: example requests
with their arguments, and the grammar that narrows the arguments to what the
question offers. Models that cannot choose tools use them through
:mod:`llmapp.routing`; adding a tool with a guide needs no other change.
"""

from __future__ import annotations

import time

from langchain_core.tools import BaseTool

from llmapp.errors import LlmappError
from llmapp.tools.arithmetic import MAX_EXPONENT, MAX_EXPRESSION, calculate, calculator
from llmapp.tools.base import ToolError, ToolGuide, guide_of, guided
from llmapp.tools.clock import current_datetime
from llmapp.tools.knowledge import make_knowledge_base_tool
from llmapp.tools.letters import letter_count
from llmapp.tools.text import word_count
from llmapp.tools.units import convert_units
from llmapp.tools.web import (FetchPlan, Fetcher, check_url, fetch_text, is_public_address,
                              make_fetch_url, network_available, plan_fetch, web_search)

__all__ = ["MAX_EXPONENT", "MAX_EXPRESSION", "FetchPlan", "Fetcher", "ToolError", "ToolGuide",
           "available_tools", "is_public_address", "plan_fetch",
           "calculate", "calculator", "check_url", "convert_units", "letter_count", "current_datetime", "fetch_text",
           "guide_of", "guided", "make_fetch_url", "make_knowledge_base_tool",
           "network_available", "run_tool", "web_search", "word_count"]


def available_tools(kb=None, collection: str | None = None,
                    allow_private: bool = False) -> dict[str, BaseTool]:
    """The tools by name; ``knowledge_base`` only when a knowledge base and a
    collection are given."""
    tools = {t.name: t for t in (calculator, word_count, letter_count, convert_units,
                                 current_datetime,
                                 make_fetch_url(allow_private), web_search)}
    if kb is not None and collection:
        tools["knowledge_base"] = make_knowledge_base_tool(kb, collection)
    return tools


def run_tool(tool_: BaseTool, arguments: dict) -> tuple[str, float]:
    """Call a tool directly; returns ``(result text, seconds)``.

    Raises:
        ToolError: the tool refused, or the arguments do not fit its schema.
    """
    from pydantic import ValidationError

    started = time.perf_counter()
    try:
        result = tool_.invoke(arguments)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ToolError(f"Bad arguments for {tool_.name}: {problems}.") from None
    except ToolError:
        raise
    except LlmappError as exc:
        raise ToolError(str(exc)) from exc
    return str(result), time.perf_counter() - started
