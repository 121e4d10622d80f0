"""Is the judge right? Its verdicts checked against people's feedback.

An LLM judge is only worth its scores where it agrees with the people it
stands in for. People rate replies on every chat page (:mod:`llmapp.feedback`);
here the judge grades the same replies, and:

* **Agreement** is the share of rated replies where the judge's verdict
  (helpful when it scores :data:`PASS_SCORE` or more on a 0-3 scale) is the
  person's thumb; **Cohen's kappa** corrects it for the agreement two raters
  would reach by chance, from each rater's own rates: kappa = (p_o - p_e) /
  (1 - p_e) (Cohen, "A coefficient of agreement for nominal scales", 1960).
  1 is perfect agreement, 0 is chance, below 0 worse than chance.
* **Position-swap consistency**: where a person wrote a better answer, the
  judge compares it with the reply twice, in both orders. LLM judges tend to
  prefer whichever answer comes first (or second); a verdict counts as
  consistent only when it names the same answer both times (Zheng et al.,
  "Judging LLM-as-a-judge with MT-Bench and Chatbot Arena", NeurIPS 2023,
  section 3.3). Among consistent verdicts, how often the judge prefers the
  person's answer is one more measure of agreement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field

from llmapp.evaluation.judge import JUDGE_PARAMS, Judgement, Metric, judge
from llmapp.feedback import DOWN, UP, Feedback
from llmapp.settings import Settings

PASS_SCORE = 2
"""A judge score (0-3) at or above this is a thumbs up."""
HELPFULNESS = Metric(
    "helpfulness", ("question",),
    "3: answers the request fully and correctly, clearly. 2: answers it, with a minor flaw. "
    "1: tries, but is wrong, incomplete or confusing. 0: does not help, or is harmful.",
    'Question: "Name two fruits." Answer: "Apples and pears." -> '
    '{"reason": "Two fruits, as asked.", "score": 3}\n'
    'Question: "Name two fruits." Answer: "These include the aforementioned citrus." -> '
    '{"reason": "Names no two fruits and refers to nothing.", "score": 1}')
"""What the judge grades a rated reply on: the question a thumb answers."""
PAIR_SCHEMA = {"title": "preference", "type": "object",
               "properties": {"reason": {"type": "string", "maxLength": 120},
                              "better": {"type": "string", "enum": ["A", "B", "tie"]}},
               "required": ["reason", "better"], "additionalProperties": False}
"""A pairwise verdict: a reason of at most 120 characters, then A, B or tie."""


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items, in order.

    Returns None when it is undefined: no items, or both raters gave one and
    the same label to everything (chance agreement is then 1).

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(first) != len(second):
        raise ValueError(f"{len(first)} labels against {len(second)}")
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    one, two = Counter(first), Counter(second)
    chance = sum(one[label] * two[label] for label in one) / (n * n)
    if chance == 1:
        return None
    return (observed - chance) / (1 - chance)


@dataclass(frozen=True)
class Preference:
    """One pairwise verdict: ``better`` is ``"A"``, ``"B"``, ``"tie"`` or None
    (unscored: the judge's JSON was invalid after one repair)."""

    better: str | None
    reason: str
    raw: str = ""


def compare(settings: Settings, question: str, a: str, b: str) -> Preference:
    """Which of two answers to ``question`` is better, says the judge
    (under :data:`PAIR_SCHEMA`, greedy).

    Raises:
        ProviderError: the judge model failed.
    """
    from llmapp.prompting.structured import StructuredOutputError, structured_output

    messages = [
        {"role": "system", "content": "You compare two answers to the same question and say "
                                      "which is more helpful: correct, complete and clear. "
                                      "Their order says nothing about their quality."},
        {"role": "user", "content": f"Question:\n{question}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}"
                                    "\n\nWhich answer is better? A one-sentence reason, then A, "
                                    "B or tie."}]
    try:
        result = structured_output(settings, messages, PAIR_SCHEMA, JUDGE_PARAMS)
    except StructuredOutputError as exc:
        return Preference(None, f"Unscored: not valid JSON after one repair ({exc}).", exc.raw)
    return Preference(str(result.data["better"]), str(result.data["reason"]).strip(),
                      result.raw)


@dataclass
class Checked:
    """One feedback item as the judge saw it.

    Attributes:
        id: the feedback's reply id.
        question: the last user message before the reply.
        thumb: ``"up"``, ``"down"`` or None (only a correction).
        score: the judge's 0-3 grade of the reply, or None.
        reason: the judge's sentence.
        swap: for a corrected reply, ``[verdict with the correction second,
            verdict with it first]``, each ``"reply"``, ``"correction"``,
            ``"tie"`` or None.
    """

    id: str
    question: str
    thumb: str | None
    score: int | None = None
    reason: str = ""
    swap: list[str | None] = field(default_factory=list)

    @property
    def verdict(self) -> str | None:
        """The judge's thumb: ``"up"`` at :data:`PASS_SCORE` or more."""
        return None if self.score is None else "up" if self.score >= PASS_SCORE else "down"


@dataclass
class AgreementReport:
    """The judge against people, over ``items``.

    Attributes:
        rated: replies with a thumb; ``scored`` of them the judge graded.
        agreement: share of scored replies where the judge's verdict is the
            thumb (None without any).
        kappa: Cohen's kappa of the same (None when undefined).
        confusion: ``{"up/up": n, ...}``: the person's thumb / the judge's.
        pairs: corrected replies compared; ``consistent`` of them got the
            same verdict in both orders; ``prefers_correction`` of those
            preferred the person's answer.
        status: ``complete`` or ``stopped``.
    """

    items: list[Checked]
    rated: int
    scored: int
    agreement: float | None
    kappa: float | None
    confusion: dict[str, int]
    pairs: int
    consistent: int
    prefers_correction: int
    status: str = "complete"

    @property
    def consistency(self) -> float | None:
        """Share of compared pairs with the same verdict in both orders."""
        return self.consistent / self.pairs if self.pairs else None

    def to_dict(self) -> dict:
        return {**asdict(self), "consistency": self.consistency}


def question_of(item: Feedback) -> str:
    """The last user message before the reply."""
    return next((m["content"] for m in reversed(item.context) if m["role"] == "user"), "")


def check_judge(feedback: Sequence[Feedback], settings: Settings, *,
                grade: Callable[[Settings, str, str], Judgement] | None = None,
                prefer: Callable[[Settings, str, str, str], Preference] = compare,
                on_item: Callable[[int, Checked], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> AgreementReport:
    """Grade every rated reply in ``feedback`` with the judge ``settings``
    select, compare every corrected one with its correction in both orders,
    and report how the judge agrees with the people who gave the feedback.

    Args:
        grade: ``grade(settings, question, reply) -> Judgement``; default
            :func:`~llmapp.evaluation.judge.judge` on :data:`HELPFULNESS`.
        prefer: ``prefer(settings, question, a, b) -> Preference``.
        on_item: called after each item with its index and result.
        should_stop: checked before each item; True stops the check, and
            the report covers the items done (``status`` ``stopped``).

    Raises:
        ProviderError: the judge model failed.
    """
    grade = grade or (lambda s, question, reply: judge(s, HELPFULNESS, reply,
                                                       question=question))
    items: list[Checked] = []
    status = "complete"
    for index, entry in enumerate(feedback):
        if should_stop is not None and should_stop():
            status = "stopped"
            break
        question = question_of(entry)
        thumb = {UP: "up", DOWN: "down"}.get(entry.rating)
        checked = Checked(entry.id, question, thumb)
        if thumb is not None:
            grading = grade(settings, question, entry.reply)
            checked.score, checked.reason = grading.score, grading.reason
        if entry.correction:
            second = prefer(settings, question, entry.reply, entry.correction).better
            first = prefer(settings, question, entry.correction, entry.reply).better
            checked.swap = [{"A": "reply", "B": "correction"}.get(second, second),
                            {"A": "correction", "B": "reply"}.get(first, first)]
        items.append(checked)
        if on_item is not None:
            on_item(index, checked)
    return summarize(items, status)


def summarize(items: Sequence[Checked], status: str = "complete") -> AgreementReport:
    """The report over checked items (see :class:`AgreementReport`)."""
    rated = [i for i in items if i.thumb is not None]
    scored = [i for i in rated if i.verdict is not None]
    people, judged = [i.thumb for i in scored], [i.verdict for i in scored]
    agree = sum(a == b for a, b in zip(people, judged, strict=True))
    pairs = [i.swap for i in items if i.swap]
    consistent = [s for s in pairs if s[0] is not None and s[0] == s[1]]
    return AgreementReport(
        items=list(items), rated=len(rated), scored=len(scored),
        agreement=agree / len(scored) if scored else None,
        kappa=cohen_kappa(people, judged),
        confusion=dict(Counter(f"{a}/{b}" for a, b in zip(people, judged, strict=True))),
        pairs=len(pairs), consistent=len(consistent),
        prefers_correction=sum(s[0] == "correction" for s in consistent), status=status)
