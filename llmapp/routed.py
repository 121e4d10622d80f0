"""Stages 5 and 6 for models that cannot choose tools (the bundled 135M one).

Three parts, each doing what it is good at:

1. :class:`~llmapp.routing.SemanticRouter` picks the tool, by similarity to
   the tool's example requests, or "no tool".
2. :func:`fill_arguments` has the model write the arguments as JSON, decoded
   under a grammar built from the tool's schema and narrowed to what the
   question offers (:class:`~llmapp.tools.ToolGuide`), with the guide's
   examples as few-shot turns.
3. The model answers, given the tool results.

:func:`run_routed_agent` yields the same :class:`~llmapp.agent.AgentEvent`
values as :func:`llmapp.agent.run_agent`, so pages and the CLI draw both
alike. After the first step, each clause of the question is routed among the
tools not used yet (:meth:`~llmapp.routing.SemanticRouter.next_route`), so
"what is 23*19, and what time is it in Tokyo?" takes two tools; a run stops
at "no tool" or at the limits.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.tools import BaseTool

from llmapp.agent import EMPTY_ANSWER, AgentEvent, build_agent, run_agent
from llmapp.errors import LlmappError
from llmapp.providers import GenerationParams, active_provider
from llmapp.routing import SemanticRouter, tool_choice
from llmapp.safety.guard import Guard, SafetyError
from llmapp.settings import Settings
from llmapp.tools import ToolError, guide_of, run_tool

ARGUMENT_PARAMS = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=96)
"""Greedy: one right JSON, and the grammar bounds its length anyway."""
ANSWER_SYSTEM_PROMPT = (
    "You answer the user's question in one short sentence that states the tool's result "
    "exactly as given. Do not calculate anything yourself. Cite knowledge-base snippets as [n].")
ANSWER_EXAMPLES = (
    ("What is 6 times 7?\n\nTool results:\n- calculator(expression='6 * 7') returned: 42",
     "6 times 7 is 42."),
    ("How many words are in 'hello big world'?\n\nTool results:\n- word_count(text='hello big "
     "world') returned: 3 words, 15 characters (13 without spaces)",
     "'hello big world' has 3 words and 15 characters."),
)
"""Few-shot turns for the answer: a 135M model told only to "state the
result" describes the tool instead ("The tool returns the result of...")."""
GROUNDED_SYSTEM_PROMPT = "You answer questions from the tool results you are given, and cite them."
GROUNDED_TEMPLATE = (
    "Tool results:\n{results}\n\nQuestion: {question}\n\nAnswer in at most three sentences, "
    "using only the tool results above. Cite knowledge-base snippets by their number in square "
    "brackets, like [1].")
"""For results that need reading (knowledge-base snippets, a page): stage 3's
grounded prompt. No few-shot turns: the 135M model copied "6 times 7 is 42."
as the answer to a knowledge-base question."""
NO_TOOL_SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly and kindly."


@dataclass(frozen=True)
class Arguments:
    """A tool call's arguments and how they were made.

    Attributes:
        args: the arguments, valid against the tool's schema.
        model_calls: 0 when the question fixed every argument, else 1.
        raw: the model's JSON text ("" when it was not asked).
    """

    args: dict[str, Any]
    model_calls: int
    raw: str = ""


def argument_schema(tool: BaseTool, question: str) -> dict:
    """The JSON Schema the decoder enforces for ``tool``'s arguments:
    its required arguments and those its guide narrows, each with the
    guide's keywords for this question, no other property."""
    full = tool.tool_call_schema.model_json_schema()
    guide = guide_of(tool)
    narrowed = dict(guide.narrow(question)) if guide and guide.narrow else {}
    names = [n for n in full.get("properties", {}) if n in full.get("required", []) or
             n in narrowed]
    properties = {}
    for name in names:
        spec = {k: v for k, v in full["properties"][name].items() if k not in ("title", "default")}
        spec.update(narrowed.get(name, {}))
        if spec.get("type") == "string" and "enum" not in spec and "const" not in spec:
            spec.setdefault("minLength", 1)
        properties[name] = spec
    return {"type": "object", "properties": properties, "required": names,
            "additionalProperties": False}


def _fixed(schema: dict) -> dict[str, Any] | None:
    """The arguments when the schema leaves each exactly one value, else None."""
    values = {}
    for name, spec in schema["properties"].items():
        if "const" in spec:
            values[name] = spec["const"]
        elif len(spec.get("enum", ())) == 1:
            values[name] = spec["enum"][0]
        else:
            return None
    return values


def fill_arguments(settings: Settings, tool: BaseTool, question: str) -> Arguments:
    """The arguments for calling ``tool`` on ``question``, by constrained decoding.

    The model sees the tool's description and its guide's examples as
    few-shot turns, and decodes under :func:`argument_schema` (a grammar on
    llama.cpp, JSON-schema mode on OpenAI). When the schema leaves one value
    per argument (the question has one quoted text, names one city), no
    model is asked. One model call at most: no repair round.

    Raises:
        ToolError: the model's JSON did not fit (only possible where the
            provider does not enforce the schema).
        ProviderError: the model failed.
    """
    from llmapp.prompting.structured import StructuredOutputError, structured_output

    schema = argument_schema(tool, question)
    fixed = _fixed(schema)
    if fixed is not None:
        return Arguments(fixed, 0)
    guide = guide_of(tool)
    messages = [{"role": "system", "content": f"You fill in the arguments of the tool "
                 f"{tool.name}, as JSON. {guide.hint if guide else ''}".strip()}]
    for request, args in (guide.examples if guide else ()):
        messages += [{"role": "user", "content": request},
                     {"role": "assistant", "content": json.dumps(args)}]
    messages.append({"role": "user", "content": question})
    try:
        result = structured_output(settings, messages, schema, ARGUMENT_PARAMS, repair=False)
    except StructuredOutputError as exc:
        raise ToolError(f"The model could not write arguments for {tool.name}: {exc}") from exc
    return Arguments(result.data, 1, result.raw)


def answer_messages(question: str, results: Sequence[tuple[str, dict, str]],
                    history: Sequence[Mapping[str, str]] = (),
                    as_json: bool = False) -> list[dict[str, str]]:
    """The prompt for the final answer: earlier turns, then the question with
    each ``(tool, args, result)``. ``as_json``: for :func:`_stated_answer`,
    with few-shot answers written as ``{"answer": ...}``; otherwise the
    grounded prompt of :data:`GROUNDED_TEMPLATE`."""
    if not results:
        return ([{"role": "system", "content": NO_TOOL_SYSTEM_PROMPT}, *map(dict, history),
                 {"role": "user", "content": question}])
    lines = "\n".join(f"- {name}({', '.join(f'{k}={v!r}' for k, v in args.items())}) "
                      f"returned: {result}" for name, args, result in results)
    if not as_json:
        return [{"role": "system", "content": GROUNDED_SYSTEM_PROMPT}, *map(dict, history),
                {"role": "user", "content": GROUNDED_TEMPLATE.format(results=lines,
                                                                     question=question)}]
    shots = []
    for request, answer in ANSWER_EXAMPLES:
        shots += [{"role": "user", "content": request},
                  {"role": "assistant", "content": json.dumps({"answer": answer})}]
    return [{"role": "system", "content": ANSWER_SYSTEM_PROMPT}, *shots, *map(dict, history),
            {"role": "user", "content": f"{question}\n\nTool results:\n{lines}"}]


def run_routed_agent(settings: Settings, tools: Mapping[str, BaseTool], question: str, *,
                     params: GenerationParams, history: Sequence[Mapping[str, str]] = (),
                     max_model_calls: int = 6, max_tool_calls: int = 8,
                     router: SemanticRouter | None = None) -> Iterator[AgentEvent]:
    """Answer ``question`` with tools chosen by the router; yield each step.

    Every step routes among the tools not used yet; it stops at "no tool",
    or when another call would pass ``max_tool_calls`` or leave no model call
    for the answer within ``max_model_calls`` (argument filling counts one
    model call, the answer one). Then the model answers from the results.

    Yields:
        ``no_tool`` (only if no tool ran), ``tool_call`` / ``tool_result``
        pairs, ``limit`` if a limit stopped more tools, then ``token``
        events and one ``answer``.

    Raises:
        ProviderError: the model failed.
    """
    router = router or SemanticRouter(tools.values())
    used: list[str] = []
    results: list[tuple[str, dict, str]] = []
    phrases: list[str] = []
    model_calls = 0
    while True:
        route, part = router.next_route(question, used)
        if route.tool is None:
            if not used:
                yield AgentEvent("no_tool", text=route.reason)
            break
        tool = tools[route.tool]
        needs_model = _fixed(argument_schema(tool, part)) is None
        if len(used) >= max_tool_calls or model_calls + needs_model + 1 > max_model_calls:
            yield AgentEvent("limit", text=f"{route.tool} would be next ({route.reason}), but "
                             f"the run is at its limit ({len(used)} tool call(s), "
                             f"{model_calls} model call(s)); answering with what it has.")
            break
        used.append(route.tool)
        call_id = f"route_{len(used)}"
        started = time.perf_counter()
        try:
            arguments = fill_arguments(settings, tool, part)
        except ToolError as exc:
            model_calls += 1
            yield AgentEvent("tool_result", name=tool.name, text=f"Error: {exc}", ok=False,
                             call_id=call_id, seconds=time.perf_counter() - started)
            results.append((tool.name, {}, f"Error: {exc}"))
            continue
        model_calls += arguments.model_calls
        yield AgentEvent("tool_call", name=tool.name, args=arguments.args, call_id=call_id,
                         decided_by=route.reason)
        started = time.perf_counter()
        try:
            text, _ = run_tool(tool, arguments.args)
            ok = True
        except ToolError as exc:
            text, ok = f"Error: {exc}", False
        guide = guide_of(tool)
        yield AgentEvent("tool_result", name=tool.name, text=text, ok=ok, call_id=call_id,
                         seconds=time.perf_counter() - started,
                         plain=ok and bool(guide and guide.result_is_answer))
        results.append((tool.name, arguments.args, text))
        if ok and guide and guide.result_is_answer and guide.answer_phrases:
            phrases += guide.answer_phrases(text, part)
    stated = _stated_by_llmapp(settings, tools, results)
    if stated:
        yield AgentEvent("token", text=stated)
        yield AgentEvent("answer", text=stated, decided_by="llmapp")
        return
    messages = answer_messages(question, results, history, as_json=bool(phrases))
    if phrases:
        yield from _stated_answer(settings, params, messages, phrases)
    elif results:
        yield from _answer(settings, grounded_params(params), messages)
    else:
        yield from _answer(settings, params, messages)


def _stated_by_llmapp(settings: Settings, tools: Mapping[str, BaseTool],
                      results: Sequence[tuple[str, dict, str]]) -> str:
    """For a model too small to word an answer (the bundled one), the answer
    when every tool that ran succeeded and its result answers the question by
    itself: each tool's own sentence (:attr:`~llmapp.tools.base.ToolGuide.state`),
    e.g. "23 * 19 = 437", or what llmapp reads out of a result that needs
    reading (:attr:`~llmapp.tools.base.ToolGuide.reader`: the knowledge
    base's quoted sentence); else "". Under a grammar that made it state the
    result, the 135M model still wrapped it in nonsense ("./2022/08/16/23*19
    is 43_56_10.jsx / 2022-08-16 23,17.10:20.437")."""
    if not results or active_provider(settings)[0].picks_tools:
        return ""
    sentences = []
    for name, args, text in results:
        guide = guide_of(tools[name])
        if text.startswith("Error:") or guide is None:
            return ""
        if guide.result_is_answer and guide.state:
            sentences.append(guide.state(args, text))
        elif guide.reader:
            sentences.append(guide.reader(args, text))
        else:
            return ""
    return " ".join(sentences)


def grounded_params(params: GenerationParams) -> GenerationParams:
    """``params`` held to stage 3's answer limits (:data:`llmapp.rag.answer.ANSWER_PARAMS`:
    temperature 0.2, 160 tokens) for answers read from tool results: on the
    Tools page, at 512 tokens, the 135M model drifted on "What does the
    handbook say about chunk overlap?" until the loop guard stopped it."""
    from llmapp.rag.answer import ANSWER_PARAMS

    return dataclasses.replace(
        params, temperature=min(params.temperature, ANSWER_PARAMS.temperature),
        max_tokens=min(params.max_tokens, ANSWER_PARAMS.max_tokens))


STATED_TEMPERATURE = 0.2
"""Most temperature for an answer that restates a result: it is extraction,
where one right answer exists (the sample handbook's own advice)."""
MAX_AROUND = 60
"""Characters the model may write before, and after, the result it must state
(the longer the room, the longer a 135M model rambles before it)."""


def answer_pattern(phrases: Sequence[str]) -> str:
    """A regular expression for a one-line answer that states one of
    ``phrases`` as a word of its own (not "value19"), with up to
    :data:`MAX_AROUND` characters on either side."""
    free = '"\\\\\\n'
    before = f"([^{free}]{{0,{MAX_AROUND - 1}}}[^A-Za-z0-9{free}])?"
    after = f"([^A-Za-z0-9{free}][^{free}]{{0,{MAX_AROUND - 1}}})?"
    return f"^{before}({'|'.join(map(pattern_escape, phrases))}){after}$"


def pattern_escape(text: str) -> str:
    """``text`` as a literal in a JSON Schema pattern that llama.cpp's grammar
    converter reads: only metacharacters escaped (:func:`re.escape` also
    escapes spaces, which it rejects, and then accepts any string)."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


def _stated_answer(settings: Settings, params: GenerationParams, messages: list[dict[str, str]],
                   phrases: Sequence[str]) -> Iterator[AgentEvent]:
    """The model's answer, decoded under a grammar that makes it state one of
    the results' ``phrases``: the 135M model, free, wrote "'hello world' has
    only one character" next to a right count of 11."""
    from llmapp.prompting.structured import StructuredOutputError, structured_output

    schema = {"type": "object", "properties": {"answer": {
        "type": "string", "pattern": answer_pattern(phrases)}}, "required": ["answer"],
        "additionalProperties": False}
    params = dataclasses.replace(params, temperature=min(params.temperature,
                                                         STATED_TEMPERATURE))
    try:
        text = structured_output(settings, messages, schema, params, repair=False).data["answer"]
    except StructuredOutputError:
        text = ""
    text = text.strip() or EMPTY_ANSWER
    yield AgentEvent("token", text=text)
    yield AgentEvent("answer", text=text)


def _answer(settings: Settings, params: GenerationParams,
            messages: list[dict[str, str]]) -> Iterator[AgentEvent]:
    """The model's free answer, through the same reply path as a chat page
    (:func:`llmapp.chat.start_reply`): fitted to the context window, guarded
    against loops, errors translated. ``messages[0]`` is the system prompt."""
    from llmapp.chat import ChatMessage, ChatStore, start_reply

    store = ChatStore()
    store.messages = [ChatMessage(m["role"], m["content"]) for m in messages[1:]]
    reply = start_reply(store, settings, params, messages[0]["content"])
    for text in reply.stream:
        yield AgentEvent("token", text=text)
    stats = reply.stream.stats
    yield AgentEvent("answer", text=reply.stream.text.strip() or EMPTY_ANSWER,
                     finish_reason=stats.finish_reason or "", stopped=stats.stopped or "")


def run_with_tools(settings: Settings, tools: Mapping[str, BaseTool], question: str, *,
                   params: GenerationParams, history: Sequence[Mapping[str, str]] = (),
                   max_model_calls: int = 6, max_tool_calls: int = 8,
                   guard: Guard | None = None) -> Iterator[AgentEvent]:
    """Answer ``question`` with ``tools``, the way these settings say
    (:func:`llmapp.routing.tool_choice`): the router path of this module, or
    the model's own tool calls (:func:`llmapp.agent.run_agent`). Pages, the
    CLI and the benchmark call this one function.

    With ``guard``, the question is checked before anything runs, and the
    final answer when it is complete: a blocked answer is followed by a
    ``withdrawn`` event with the reason.

    Raises:
        SafetyError: the guard blocked the question.
        ProviderError: the model failed (also when it fails inside the agent graph).
        LlmappError: a bad setting.
    """
    if guard is not None and guard.active:
        verdict = guard.check(question)
        if not verdict.allowed:
            raise SafetyError(verdict.reason("Your message"), verdict)
    answer = ""
    for event in _run_with_tools(settings, tools, question, params=params, history=history,
                                 max_model_calls=max_model_calls, max_tool_calls=max_tool_calls):
        answer = event.text if event.kind == "answer" else answer
        yield event
    if guard is not None and guard.active and answer.strip():
        verdict = guard.check(answer, output=True)
        if not verdict.allowed:
            yield AgentEvent("withdrawn", text=verdict.reason("This reply"))


def _run_with_tools(settings: Settings, tools: Mapping[str, BaseTool], question: str, *,
                    params: GenerationParams, history: Sequence[Mapping[str, str]],
                    max_model_calls: int, max_tool_calls: int) -> Iterator[AgentEvent]:
    if tool_choice(settings)[0] == "router":
        yield from run_routed_agent(settings, tools, question, params=params, history=history,
                                    max_model_calls=max_model_calls,
                                    max_tool_calls=max_tool_calls)
        return
    provider, _ = active_provider(settings)
    model = provider.chat_model(settings, params)
    agent = build_agent(model, list(tools.values()), max_model_calls=max_model_calls,
                        max_tool_calls=max_tool_calls)
    try:
        yield from run_agent(agent, question, history=[dict(m) for m in history])
    except LlmappError:
        raise
    except Exception as exc:  # a provider error raised inside the graph
        raise provider.describe_error(exc, settings) from exc


def run_summary(events: Iterator[AgentEvent] | Sequence[AgentEvent]) -> dict[str, Any]:
    """A run as JSON-ready data (``llmapp agent --json``)::

        {"answer": str,
         "steps": [{"tool": str, "args": {...}, "result": str, "ok": bool,
                    "decided_by": str}, ...],
         "results": [str, ...],     # results that answer by themselves
         "stopped": str | None}     # why a limit stopped the run

    A tool whose arguments could not be written has ``args`` ``{}`` and
    its error as ``result``.
    """
    answer, steps, stopped = "", [], None
    calls: dict[str, dict] = {}
    for event in events:
        if event.kind == "tool_call":
            calls[event.call_id] = {"tool": event.name, "args": event.args, "result": "",
                                    "ok": True, "decided_by": event.decided_by}
            steps.append(calls[event.call_id])
        elif event.kind == "tool_result":
            step = calls.get(event.call_id)
            if step is None:
                step = {"tool": event.name, "args": {}, "decided_by": ""}
                steps.append(step)
            step.update(result=event.text, ok=event.ok, plain=event.plain)
        elif event.kind == "answer":
            answer = event.text
        elif event.kind == "limit":
            stopped = event.text
        elif event.kind == "withdrawn":
            answer, stopped = "", event.text
    results = [s["result"] for s in steps if s.pop("plain", False)]
    return {"answer": answer, "steps": steps, "results": results, "stopped": stopped}
