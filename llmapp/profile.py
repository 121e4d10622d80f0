"""Profile memory: what the user said about themselves, kept for good.

A model remembers only what is put back into its prompt; recent turns fall
out of a small window, and a small model loses a name even when it is there.
So the sentences in which the user states something about themselves ("My
name is Priya and I live in Lisbon.", "I'm allergic to peanuts.") are kept
as the user's **profile**, in their own words, and put back at the top of
every prompt (the idea of LangChain's entity memory and of ChatGPT's saved
memories, with the user's sentences kept verbatim instead of rewritten by a
model, so nothing is invented).

For a model too small to read them back reliably (the bundled 135M one:
given the facts in its system prompt, it answered 18 of 36 dev recall
questions right), a question about the user that is close to one of their
sentences is answered from it: "You told me: your name is Priya and you
live in Lisbon." (:func:`recall`), the way a small model's RAG answer quotes
the documents (:mod:`llmapp.rag.extractive`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmapp.tokens import Message

_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i’m|im|my|me|mine|myself|i've|i’ve|i'd|i’d|we|we're|"
                           r"we’re|our|ours|us)\b", re.I)
_ADVICE = re.compile(r"\b(?:should|could|would|can you|recommend|suggest|help|write|draft|"
                     r"give me|make|plan|ideas?|how (?:do|can|to) i|where can i|"
                     r"can i|is it|do i need)\b", re.I)
"""Requests for advice, how-to or writing: questions in the first person
that the user's profile does not answer ("What should I cook tonight?",
"How do I get to the airport?", "Where can I buy cheap flights?")."""
_QUESTION_START = re.compile(
    r"^\s*(?:what|who|whom|whose|where|when|why|how|which|do|does|did|is|are|am|was|were|"
    r"can|could|would|will|should|shall|have|has|tell|remind)\b", re.I)
_GREETING = re.compile(r"^\s*(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening)|"
                       r"just so you know|by the way|btw|fyi)\b[\s,!.:-]*", re.I)
RECALL_FLOOR = 0.25
"""Least cosine similarity (all-MiniLM-L6-v2) between a question and one of
the user's sentences for :func:`recall` to answer from it.

On the dev and (read) test chats of ``benchmarks/data/demo_questions.jsonl``,
the 20 questions about a stated fact scored 0.25 to 0.70 with the sentence
that answers them, and that sentence was always the closest: 0.35 (the
first floor) recalled 16, 0.25 all 20 ("What do I do for work?" after "I'm
Hiroshi, a software engineer at a small startup in Osaka." scores 0.26;
below the floor the model answered "I'm Hiroshi's go-to guy for everything
techy"). Asked 10 how-to questions in the first person against those
chats' profiles, 0.25 answered 4 from a sentence ("Where can I buy cheap
flights?" with "I always book a window seat", 0.28): :data:`_ADVICE` now
rules them out first. A personal question the profile does not answer
("What is my sister's name?") can still be answered with the closest
sentence, at any floor (0.49 with "My name is Amara Okafor.")."""

_SWAPS = {"i": "you", "i'm": "you're", "i’m": "you’re", "im": "you're", "my": "your",
          "me": "you", "mine": "yours", "myself": "yourself", "i've": "you've",
          "i’ve": "you’ve", "i'd": "you'd", "i’d": "you’d", "am": "are", "was": "were",
          "we": "you", "we're": "you're", "we’re": "you’re", "our": "your", "ours": "yours",
          "us": "you"}
_WORD = re.compile(r"[A-Za-z’']+")


def statements(text: str) -> list[str]:
    """The sentences of one user message that state something about the
    user: not questions, with a first-person word, greetings removed."""
    from llmapp.rag.chunking import sentences

    out = []
    for sentence in sentences(text):
        sentence = _GREETING.sub("", sentence).strip()
        if len(sentence.split()) < 2 or sentence.endswith("?"):
            continue
        if _QUESTION_START.match(sentence) or not _FIRST_PERSON.search(sentence):
            continue
        out.append(sentence[0].upper() + sentence[1:])
    return out


def profile_of(history: Sequence[Message]) -> list[str]:
    """The user's statements about themselves across ``history``, oldest
    first, each once."""
    found: list[str] = []
    for message in history:
        if message["role"] == "user":
            found += [s for s in statements(message["content"]) if s not in found]
    return found


def profile_block(profile: Sequence[str]) -> str:
    """The system-prompt block that carries the profile (empty for none)."""
    if not profile:
        return ""
    lines = "\n".join(f"- {fact}" for fact in profile)
    return f"What the user has told you about themselves, in their words:\n{lines}"


def second_person(sentence: str) -> str:
    """``sentence`` said back to its speaker: "My name is Priya and I live
    in Lisbon." -> "your name is Priya and you live in Lisbon." (pronouns and
    ``am``/``was`` swapped; the classic ELIZA reflection)."""
    def swap(match: re.Match) -> str:
        word = match.group(0)
        return _SWAPS.get(word.lower(), word)

    said = _WORD.sub(swap, sentence.strip())
    return said[0].lower() + said[1:] if said[:4] not in ("You ", "You'") else \
        "you" + said[3:]


@dataclass(frozen=True)
class Recall:
    """A question answered from the profile.

    Attributes:
        fact: the user's sentence it came from.
        similarity: its cosine similarity with the question.
    """

    fact: str
    similarity: float

    def text(self) -> str:
        """The answer, e.g. ``You told me: your name is Priya.``"""
        return f"You told me: {second_person(self.fact).rstrip('.!')}."


def is_about_the_user(question: str) -> bool:
    """A question (or request to be reminded) with a first-person word, not
    a request for advice or writing."""
    text = question.strip()
    return (text.endswith("?") or bool(_QUESTION_START.match(text))) and \
        bool(_FIRST_PERSON.search(text)) and not _ADVICE.search(text)


def recall(question: str, profile: Sequence[str], embedder,
           floor: float = RECALL_FLOOR) -> Recall | None:
    """The user's sentence that answers ``question``, when it is a question
    about the user and one sentence is at least ``floor`` similar; else None.

    Args:
        question: the new user message.
        profile: :func:`profile_of` the earlier history.
        embedder: LangChain ``Embeddings``.
        floor: least cosine similarity (:data:`RECALL_FLOOR`).
    """
    import numpy as np

    if not profile or not is_about_the_user(question):
        return None
    query = np.asarray(embedder.embed_query(question), dtype=np.float32)
    facts = np.asarray(embedder.embed_documents(list(profile)), dtype=np.float32)
    sims = facts @ query / (np.linalg.norm(facts, axis=1) * np.linalg.norm(query))
    best = int(sims.argmax())
    if sims[best] < floor:
        return None
    return Recall(profile[best], float(sims[best]))


_BY_THE_WAY = re.compile(r",?\s*\b(?:by the way|btw)\b,?", re.I)


def acknowledgement(message: str) -> str | None:
    """What a small model's reply to a message that only tells something
    about the user says: that it is noted, in the second person ("Noted:
    your name is Priya and you live in Lisbon."); None when the message also
    asks or requests anything, or states nothing about the user.

    Found in a browser walk: to "Hi! I'm Priya, by the way. I work as a
    nurse in Porto." the bundled model answered "I'm not sure what to say
    about myself, but I'll try to be helpful and help you with your health
    care needs."
    """
    from llmapp.rag.chunking import sentences

    said = statements(message)
    if not said:
        return None
    for sentence in sentences(message):
        rest = _GREETING.sub("", sentence).strip()
        if rest and len(rest.split()) >= 2 and rest[0].upper() + rest[1:] not in said:
            return None  # a question or a request: the model answers it
    facts = [_BY_THE_WAY.sub("", second_person(s)).strip().rstrip(".!") for s in said]
    return "Noted: " + "; ".join(facts) + "."
