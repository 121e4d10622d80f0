"""LLM-as-judge: a model grades an answer on one metric, as an integer with a
one-sentence reason.

The scale and the prompts follow Databricks' "Best Practices for LLM
Evaluation of RAG Applications" (Leng, Uhlenhuth and Polyzotis, 2023): a
low-precision integer scale (0 to 3) with a rubric per score, and grading
examples in the prompt, which made GPT-4 and GPT-3.5 judges agree with human
graders and with each other. The examples below are llmapp's own.

The judge answers under a JSON Schema (``reason`` of at most 120 characters,
then ``score``): constrained decoding on the bundled model, JSON-schema mode
on OpenAI and compatible servers, so even a small judge returns valid JSON.
ragas, deepeval and promptfoo's most common complaint, a small judge's
malformed JSON, is then rare; when it happens anyway (a cut-off reply), the
judge is asked once to repair it (:func:`llmapp.prompting.structured.structured_output`),
and the row is kept as *unscored*, with the raw text, never dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from llmapp.errors import LlmappError
from llmapp.providers import GenerationParams
from llmapp.settings import Settings

SCALE = (0, 3)
GRADE = {"type": "object",
         "properties": {"reason": {"type": "string", "maxLength": 120},
                        "score": {"type": "integer", "minimum": SCALE[0], "maximum": SCALE[1]}},
         "required": ["reason", "score"], "additionalProperties": False}
SCHEMA = {"title": "grade", **GRADE}
"""One metric's grade: a reason of at most 120 characters, then the score."""
JUDGE_PARAMS = GenerationParams(temperature=0.0, top_p=1.0, max_tokens=160)
"""Greedy; 160 tokens hold one grade, :data:`GROUP_TOKENS` a group."""
GROUP_TOKENS = 80
"""Tokens per metric when several are graded in one call."""


@dataclass(frozen=True)
class Metric:
    """One thing a judge grades.

    Attributes:
        name: ``correctness``, ``faithfulness``, ``relevance`` or ``readability``.
        needs: the inputs it reads besides the answer (``reference``, ``context``,
            ``question``).
        rubric: what each score means.
        examples: grading examples, as text.
    """

    name: str
    needs: tuple[str, ...]
    rubric: str
    examples: str


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("correctness", ("question", "reference"),
           "3: says what the reference says, nothing wrong. 2: mostly right, a minor "
           "mistake or omission. 1: partly right, a major mistake or omission. 0: wrong, or "
           "no answer.",
           'Reference: "Paris is the capital of France." Answer: "The capital is Paris." -> '
           '{"reason": "Same fact as the reference.", "score": 3}\n'
           'Reference: "Water boils at 100 °C at sea level." Answer: "It boils at 90 °C." -> '
           '{"reason": "The temperature contradicts the reference.", "score": 0}'),
    Metric("faithfulness", ("context",),
           "3: every claim is supported by the context. 2: one minor claim is not in the "
           "context. 1: several claims are not in the context. 0: the answer contradicts the "
           "context or ignores it.",
           'Context: "The office opens at 9." Answer: "It opens at 9 [1]." -> '
           '{"reason": "The only claim is in the context.", "score": 3}\n'
           'Context: "The office opens at 9." Answer: "It opens at 8 and has free parking." '
           '-> {"reason": "Both claims are unsupported; one contradicts it.", "score": 0}'),
    Metric("relevance", ("question",),
           "3: answers exactly what was asked. 2: answers it, with some off-topic text. 1: "
           "touches the topic but does not answer. 0: unrelated.",
           'Question: "How long is the warranty?" Answer: "Two years." -> '
           '{"reason": "Answers the question directly.", "score": 3}\n'
           'Question: "How long is the warranty?" Answer: "Our shop sells TVs." -> '
           '{"reason": "Does not answer the question.", "score": 0}'),
    Metric("readability", (),
           "3: clear, fluent and well organized. 2: understandable with small flaws. 1: hard "
           "to follow. 0: garbled or repetitive.",
           'Answer: "Chunks overlap so that a sentence cut in two stays whole in one." -> '
           '{"reason": "One clear sentence.", "score": 3}\n'
           'Answer: "overlap overlap the the chunk chunk" -> '
           '{"reason": "Garbled and repetitive.", "score": 0}'),
)}
"""The judge's metrics, by name."""


@dataclass(frozen=True)
class Judgement:
    """One metric's grade of one answer.

    Attributes:
        metric: the metric's name.
        score: 0 to 3, or None when unscored.
        reason: the judge's sentence, or why it is unscored.
        raw: the judge's raw text (for an unscored row: what it said).
        attempts: 1, or 2 after a repair.
    """

    metric: str
    score: int | None
    reason: str
    raw: str = ""
    attempts: int = 1

    @property
    def scored(self) -> bool:
        return self.score is not None

    def to_dict(self) -> dict:
        return asdict(self)


def prompt(metric: Metric, answer: str, *, question: str = "", reference: str = "",
           context: str = "") -> list[dict[str, str]]:
    """The judge's messages for one metric (OpenAI-style dicts).

    A metric that reads the context opens exactly as the grounded answer's
    prompt did (the same system message,
    :data:`llmapp.rag.answer.GROUNDED_TEMPLATE` with the same numbered
    chunks), and gives its instructions in the user's message: a server
    with prefix caching (llama.cpp's slots, OpenAI's prompt caching) then
    reuses the context it already processed for the answer. On the bundled
    model, on one thread, that context is most of a call's time.
    """
    given = {"question": question, "reference": reference, "context": context}
    task = (f"You grade answers for {metric.name} on an integer scale from {SCALE[0]} to "
            f"{SCALE[1]}. {metric.rubric}\nExamples:\n{metric.examples}")
    if "context" in metric.needs:
        from llmapp.rag.answer import GROUNDED_TEMPLATE

        others = [f"{n.capitalize()}:\n{given[n]}" for n in metric.needs if n != "context"]
        return [
            {"role": "system", "content": GROUNDED_TEMPLATE.format(context=context)},
            {"role": "user", "content": f"Do not answer a question now. {task}\n\n"
                                        + "\n\n".join([*others, f"Answer:\n{answer}"])
             + f"\n\nGrade the answer's {metric.name}: a one-sentence reason, then the score."},
        ]
    parts = [f"{name.capitalize()}:\n{given[name]}" for name in metric.needs]
    return [
        {"role": "system", "content": task},
        {"role": "user", "content": "\n\n".join([*parts, f"Answer:\n{answer}"])
         + f"\n\nGrade the answer's {metric.name}: a one-sentence reason, then the score."},
    ]


def group_prompt(metrics: list[Metric], answer: str, *, question: str = "",
                 reference: str = "") -> list[dict[str, str]]:
    """One prompt grading several metrics that need no context."""
    given = {"question": question, "reference": reference}
    needed = [n for n in ("question", "reference") if any(n in m.needs for m in metrics)]
    rubrics = "\n".join(f"{m.name}: {m.rubric}\nExamples:\n{m.examples}" for m in metrics)
    parts = [f"{name.capitalize()}:\n{given[name]}" for name in needed]
    names = ", ".join(m.name for m in metrics)
    return [
        {"role": "system",
         "content": f"You grade answers on an integer scale from {SCALE[0]} to {SCALE[1]}, "
                    f"for each of: {names}.\n{rubrics}"},
        {"role": "user", "content": "\n\n".join([*parts, f"Answer:\n{answer}"])
         + f"\n\nGrade the answer's {names}: for each, a one-sentence reason, then the score."},
    ]


def judge_group(settings: Settings, metrics: list[str], answer: str, *, question: str = "",
                reference: str = "", context: str = "") -> dict[str, Judgement]:
    """Grade ``answer`` on several metrics: the ones that read the context
    one call each, the others together in one call (one prompt to process
    instead of several: on the bundled model, prompt processing is most of
    a judge call's time).

    Returns:
        metric -> :class:`Judgement`; a group whose JSON fails after one
        repair leaves each of its metrics unscored, with the raw text.

    Raises:
        ProviderError: the judge model failed.
    """
    from llmapp.prompting.structured import StructuredOutputError, structured_output

    out: dict[str, Judgement] = {}
    together = [METRICS[m] for m in metrics if "context" not in METRICS[m].needs]
    for m in metrics:
        if METRICS[m] not in together or len(together) == 1:
            out[m] = judge(settings, m, answer, question=question, reference=reference,
                           context=context)
    if len(together) < 2:
        return {m: out[m] for m in metrics}
    if not answer.strip():
        out.update({m.name: Judgement(m.name, None, "There is no answer to grade.")
                    for m in together})
        return {m: out[m] for m in metrics}
    schema = {"title": "grades", "type": "object",
              "properties": {m.name: GRADE for m in together},
              "required": [m.name for m in together], "additionalProperties": False}
    params = GenerationParams(temperature=0.0, top_p=1.0,
                              max_tokens=GROUP_TOKENS * len(together))
    try:
        result = structured_output(settings, group_prompt(together, answer, question=question,
                                                          reference=reference), schema, params)
    except StructuredOutputError as exc:
        out.update({m.name: Judgement(m.name, None, f"Unscored: the judge's reply was not "
                                                    f"valid JSON after one repair ({exc}).",
                                      exc.raw, 2) for m in together})
    else:
        for m in together:
            grade = result.data[m.name]
            out[m.name] = Judgement(m.name, int(grade["score"]), str(grade["reason"]).strip(),
                                    result.raw, result.attempts)
    return {m: out[m] for m in metrics}


def judge(settings: Settings, metric: str | Metric, answer: str, *, question: str = "",
          reference: str = "", context: str = "",
          params: GenerationParams = JUDGE_PARAMS) -> Judgement:
    """Grade ``answer`` on ``metric`` (a name in :data:`METRICS`, or a
    :class:`Metric` of the caller's) with the model these settings select.

    Returns:
        A :class:`Judgement`; unscored (``score`` None, the raw text kept)
        when the judge's JSON is invalid even after one repair, or the answer
        is empty.

    Raises:
        KeyError: an unknown metric.
        ProviderError: the judge model failed (a server down, a wrong key).
    """
    from llmapp.prompting.structured import StructuredOutputError, structured_output

    spec = metric if isinstance(metric, Metric) else METRICS[metric]
    metric = spec.name
    if not answer.strip():
        return Judgement(metric, None, "There is no answer to grade.")
    try:
        result = structured_output(settings, prompt(spec, answer, question=question,
                                                    reference=reference, context=context),
                                   SCHEMA, params)
    except StructuredOutputError as exc:
        return Judgement(metric, None, f"Unscored: the judge's reply was not valid JSON "
                                       f"after one repair ({exc}).", exc.raw, 2)
    except LlmappError:
        raise
    data = result.data
    return Judgement(metric, int(data["score"]), str(data["reason"]).strip(), result.raw,
                     result.attempts)
