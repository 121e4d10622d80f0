"""Prompt chains from LCEL runnables: ``model | StrOutputParser()``.

Every chain yields :class:`Step` events as it goes, each with the exact
messages sent and the output, so a page can show intermediate steps as they
appear. The last step of a chain carries ``stream``: iterate it for the final
text (plain ``str`` chunks, for ``st.write_stream``).

Each step names its ``role`` (e.g. ``extract``); ``model_for(role)`` gives the
chat model for it, so steps can run on different providers or models.

Techniques:

* ``sequential``: extract the facts, compress them, reformat (3 steps).
* ``density``: chain-of-density summarization, N rounds, each denser than the
  last (Adams et al. 2023, "From Sparse to Dense").
* ``thought``: one answer, optionally with chain-of-thought ("Let's think
  step by step", Kojima et al. 2022).
* ``skeleton``: skeleton-of-thought: short points first, then each point
  expanded, in parallel with ``batch`` (Ning et al. 2023); both parallel and
  sequential expansion are timed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser

from llmapp.prompting import PromptError
from llmapp.repetition import LoopGuard
from llmapp.streaming import ReplyStats, ReplyStream
from llmapp.tokens import TokenCounter

TECHNIQUES = ("sequential", "density", "thought", "skeleton")
ModelFor = Callable[[str], BaseChatModel]

EXTRACT = ("Extract the key facts from the text below as a short bulleted list. Use only the "
           "text.\n\nText:\n{text}")
COMPRESS = ("Compress these facts into one short paragraph. Do not add anything that is not "
            "in them.\n\nFacts:\n{facts}")
REFORMAT = ("Rewrite this paragraph as at most three Markdown bullet points for a busy "
            "reader.\n\nParagraph:\n{summary}")
DENSITY_FIRST = ("Article:\n{text}\n\nWrite a summary of the article in about {words} words. "
                 "Keep it general: few names, numbers or specifics.")
DENSITY_NEXT = ("Article:\n{text}\n\nPrevious summary:\n{summary}\n\nFind 1 to 3 informative "
                "entities (names, numbers, specifics) from the article that are missing from the "
                "previous summary. Write a new summary of about {words} words that keeps every "
                "entity of the previous one and adds the missing ones; compress to make room. "
                "Reply with the new summary only.")
THINK = "\n\nLet's think step by step."
SKELETON = ("Give only the skeleton of an answer to the question: a numbered list of 3 to 5 "
            "points, each 3 to 6 words. No explanations.\n\nQuestion: {question}")
EXPAND = ("Question: {question}\n\nSkeleton of the answer:\n{skeleton}\n\nWrite one or two "
          "sentences that expand only point {n}: {point}")


@dataclass
class Step:
    """One call of a chain.

    Attributes:
        name: what the step did, e.g. ``"2. compress"`` or ``"round 3"``.
        role: the step kind, used to pick its model.
        prompt: the messages exactly as sent.
        output: the text it returned ('' until a streamed step is consumed).
        seconds: wall time of the call.
        stream: for the final step, the text as it arrives.
        notes: sentences for the UI (timings, truncation).
        final: the chain's answer (it had a stream), kept once the stream
            is consumed.
    """

    name: str
    role: str
    prompt: list[dict[str, str]]
    output: str = ""
    seconds: float = 0.0
    stream: Iterator[str] | None = None
    notes: list[str] = field(default_factory=list)
    final: bool = False


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _lc(messages):
    from llmapp.chat import to_langchain

    return to_langchain(messages)


def _run(model: BaseChatModel, name: str, role: str, prompt) -> Step:
    chain = model | StrOutputParser()
    started = time.perf_counter()
    output = chain.invoke(_lc(prompt))
    return Step(name, role, prompt, output.strip(), time.perf_counter() - started)


LOOP_NOTE = "Stopped early: the model began repeating itself (llmapp's loop guard)."


def _streamed(model: BaseChatModel, name: str, role: str, prompt,
              check: Callable[[str], list[str]] | None = None) -> Step:
    """A step whose text streams through :class:`~llmapp.streaming.ReplyStream`
    with a :class:`~llmapp.repetition.LoopGuard`, as on the chat pages: a
    reply that loops is cut where the guard trips, the model's stream is
    closed, and the step notes it (:data:`LOOP_NOTE`). The model's own stream
    is read, not ``model | StrOutputParser()``'s: closing that early still
    drains the model. ``check``, given the whole output, returns more notes."""
    step = Step(name, role, prompt)

    def text() -> Iterator[str]:
        started = time.perf_counter()
        stream = ReplyStream(lambda: model.stream(_lc(prompt)), ReplyStats(role, name),
                             guard=LoopGuard())
        try:
            yield from stream
        finally:
            stream.close()  # frees the local model's slot at once when the reader stops
            if stream.stats.stopped in LoopGuard.REASONS:
                step.notes.append(LOOP_NOTE)
            step.output = stream.text.strip()
            step.seconds = time.perf_counter() - started
            if check is not None:
                step.notes += check(step.output)

    step.stream = text()
    return step


def fit_document(text: str, counter: TokenCounter, budget: int) -> tuple[str, str | None]:
    """``text`` cut to at most ``budget`` tokens, with a notice if it was cut.

    Raises:
        PromptError: the document is empty, or the budget leaves no room.
    """
    if not text.strip():
        raise PromptError("Paste a document first.")
    if budget < 32:
        raise PromptError("The model's context window leaves no room for a document; lower "
                          "max tokens.")
    total = counter.count_text(text)
    if total <= budget:
        return text, None
    cut = text
    while counter.count_text(cut) > budget:
        cut = cut[: int(len(cut) * budget / counter.count_text(cut) * 0.95)]
    return cut, (f"The document has {total} tokens; only the first {counter.count_text(cut)} "
                 f"fit the context window, so it was truncated.")


def sequential(text: str, model_for: ModelFor) -> Iterator[Step]:
    """Extract -> compress -> reformat; the last step streams."""
    facts = _run(model_for("extract"), "1. extract", "extract", _user(EXTRACT.format(text=text)))
    yield facts
    summary = _run(model_for("compress"), "2. compress", "compress",
                   _user(COMPRESS.format(facts=facts.output)))
    yield summary
    yield _streamed(model_for("reformat"), "3. reformat", "reformat",
                    _user(REFORMAT.format(summary=summary.output)))


_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][A-Za-z'’-]+(?:\s+[A-Z][A-Za-z'’-]+)*|"
                   r"\b\d[\d,.]*\d\b|\b\d\b", re.MULTILINE)
"""Names (capitalized words not starting a sentence, with the capitalized
words after them) and numbers: the details a summary must not invent."""


def not_in_source(summary: str, source: str) -> list[str]:
    """The names and numbers of ``summary`` that ``source`` does not contain
    (case-insensitive), in order, each once: details the model invented, or
    at best reworded. Chain of density asks a model to add details, and a
    small one adds them from nowhere (found in a walk of the bundled model)."""
    known = " ".join(source.lower().split())
    found = [m.group().rstrip(".,") for m in _NAME.finditer(summary)]
    return list(dict.fromkeys(f for f in found if f.lower() not in known))


def _invented_note(source: str) -> Callable[[str], list[str]]:
    def check(summary: str) -> list[str]:
        missing = not_in_source(summary, source)
        if not missing:
            return ["Every name and number in this summary is in the document."]
        return [f"⚠️ Not in the document: {', '.join(missing[:12])}. A model this small "
                "invents details; check each against the source."]
    return check


def density(text: str, model_for: ModelFor, rounds: int = 5, words: int = 60) -> Iterator[Step]:
    """Chain-of-density: ``rounds`` summaries, each denser; the last streams.
    Every round notes the names and numbers it has that the document has
    not (:func:`not_in_source`).

    Raises:
        PromptError: rounds not 1 to 10.
    """
    if not 1 <= rounds <= 10:
        raise PromptError(f"Chain of density takes 1 to 10 rounds, got {rounds}.")
    summary = ""
    for n in range(1, rounds + 1):
        prompt = _user(DENSITY_FIRST.format(text=text, words=words) if n == 1 else
                       DENSITY_NEXT.format(text=text, summary=summary, words=words))
        if n == rounds:
            yield _streamed(model_for("density"), f"round {n}", "density", prompt,
                            check=_invented_note(text))
            return
        step = _run(model_for("density"), f"round {n}", "density", prompt)
        step.notes += _invented_note(text)(step.output)
        summary = step.output
        yield step


def thought(question: str, model_for: ModelFor, step_by_step: bool = True,
            messages: Sequence[dict[str, str]] | None = None) -> Iterator[Step]:
    """One streamed answer; with ``step_by_step``, chain-of-thought."""
    prompt = [dict(m) for m in messages] if messages else _user(question)
    if step_by_step:
        prompt[-1]["content"] += THINK
    yield _streamed(model_for("answer"), "answer", "answer", prompt)


def parse_points(skeleton: str) -> list[str]:
    """The points of a numbered (or bulleted) list, in order."""
    points = [m.group(1).strip() for m in
              re.finditer(r"^\s*(?:\d+[.)]|[-*])\s+(.+)$", skeleton, flags=re.MULTILINE)]
    return points[:8]


PARALLEL_SLOWER = (
    "Parallel was slower here: the local model serves one request per core (a one-thread "
    "server per core, so a second runs only when a core is free), and requests that decode "
    "at once share the CPU's memory bandwidth. On a server that batches requests (vLLM, "
    "OpenAI), the points decode together and parallel expansion cuts the wait.")
"""Why the skeleton's parallel expansion can lose on the bundled model: it
measured parallel/sequential = 1.49 on 2 cores."""


def assemble(points: Sequence[str], expanded: Sequence[str]) -> str:
    """The skeleton's answer as a valid Markdown numbered list: each point in
    bold, then its expansion as one paragraph (an expansion's own line breaks
    and lists would end the list: "point 5 merged into a paragraph")."""
    return "\n".join(f"{i}. **{p.strip().rstrip(':')}**: {' '.join(t.split())}"
                     for i, (p, t) in enumerate(zip(points, expanded, strict=True), start=1))


def skeleton(question: str, model_for: ModelFor, compare: bool = True) -> Iterator[Step]:
    """Skeleton-of-thought: a skeleton, then every point expanded in parallel
    (``batch``); with ``compare``, also one by one, and both wall times noted.
    The final step streams the assembled answer.

    A skeleton that is not a numbered list has its sentences taken as points.

    Raises:
        PromptError: the skeleton is empty.
    """
    sk = _run(model_for("skeleton"), "1. skeleton", "skeleton",
              _user(SKELETON.format(question=question)))
    yield sk
    points = parse_points(sk.output)
    fallback = None
    if not points:
        from llmapp.rag.chunking import sentences

        points = [s.rstrip(".") for s in sentences(sk.output)][:5]
        fallback = "The skeleton was not a numbered list; each of its sentences became a point."
    if not points:
        raise PromptError(f"The skeleton has no points to expand: {sk.output[:200]!r}")
    prompts = [_user(EXPAND.format(question=question, skeleton=sk.output, n=i, point=p))
               for i, p in enumerate(points, start=1)]
    chain = model_for("expand") | StrOutputParser()
    started = time.perf_counter()
    expanded = chain.batch([_lc(p) for p in prompts], config={"max_concurrency": len(prompts)})
    parallel_s = time.perf_counter() - started
    notes = ([fallback] if fallback else []) + [
        f"Expanded {len(points)} points in parallel in {parallel_s:.2f} s."]
    if compare:
        started = time.perf_counter()
        for p in prompts:
            chain.invoke(_lc(p))
        sequential_s = time.perf_counter() - started
        notes.append(f"One by one: {sequential_s:.2f} s (parallel/sequential = "
                     f"{parallel_s / sequential_s:.2f}).")
        if parallel_s > sequential_s:
            notes.append(PARALLEL_SLOWER)
    for i, (prompt, text) in enumerate(zip(prompts, expanded, strict=True), start=1):
        yield Step(f"2.{i} expand", "expand", prompt, text.strip(), parallel_s / len(prompts))
    answer = assemble(points, expanded)
    final = Step("3. answer", "answer", [], answer, parallel_s, notes=notes)
    final.stream = iter([answer])
    yield final
