"""Write stage 7's demo dataset: ``data/tuning/short_answer.jsonl``.

It teaches the bundled model an answer style a stakeholder sees at once:
every answer is two labelled lines, ``**In short:** ...`` then ``**Why:**
...``. The facts are simple and generated from tables (capitals, arithmetic,
units, opposites, a glossary of this app's terms), so every answer is
correct. Half the examples carry the Simple Prompt page's system prompt, half
none, so the style shows on the page and in the API alike.

``data/tuning/short_answer_heldout.jsonl`` holds 20 more, with questions
phrased and valued unlike any training example: the Fine-tuning page and
``llmapp tune train`` keep them out of training and check the style on them
before and after.

    python scripts/make_tuning_demo.py
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmapp import config  # noqa: E402

OUT = ROOT / "data" / "tuning"
CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("Germany", "Berlin"), ("Canada", "Ottawa"), ("Australia", "Canberra"),
            ("Brazil", "Brasília"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"),
            ("India", "New Delhi"), ("China", "Beijing"), ("Mexico", "Mexico City"),
            ("Peru", "Lima"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
            ("Portugal", "Lisbon"), ("Greece", "Athens"), ("Poland", "Warsaw"),
            ("Ireland", "Dublin"), ("Argentina", "Buenos Aires"), ("Chile", "Santiago"),
            ("Turkey", "Ankara"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"),
            ("Morocco", "Rabat"), ("Finland", "Helsinki"), ("Austria", "Vienna")]
OPPOSITES = [("hot", "cold"), ("tall", "short"), ("early", "late"), ("open", "closed"),
             ("light", "dark"), ("empty", "full"), ("fast", "slow"), ("happy", "sad"),
             ("up", "down"), ("wet", "dry"), ("loud", "quiet"), ("rich", "poor"),
             ("old", "young"), ("strong", "weak"), ("hard", "soft"), ("near", "far")]
GLOSSARY = [
    ("a token", "A small piece of text, often part of a word, that a language model reads "
                "and writes.", "Models count their input and output in tokens, so prices and "
                "context windows are given in tokens too."),
    ("an embedding", "A list of numbers that stands for the meaning of a text.",
     "Texts with similar meanings get nearby vectors, so they can be compared by cosine "
     "similarity."),
    ("a chunk", "A short passage cut from a longer document for retrieval.",
     "Retrieval finds the few chunks closest to a question and gives only those to the model."),
    ("RAG", "Retrieval-augmented generation: answering from documents found for the question.",
     "The model reads the retrieved text in its prompt, so it can cite facts it was never "
     "trained on."),
    ("a context window", "The most tokens a model can read and write in one call.",
     "Everything the model sees, the prompt and the answer, has to fit inside it."),
    ("temperature", "A setting that controls how random a model's word choices are.",
     "At 0 the model always picks its most likely token; higher values pick less likely ones "
     "more often."),
    ("a system prompt", "Instructions given to the model before the conversation.",
     "It sets the model's role and rules for every reply that follows."),
    ("TTFT", "Time to first token: how long a reply takes to start appearing.",
     "It is the wait a user feels before anything shows, apart from the total time."),
    ("a tool call", "A model's request that the app run a function with given arguments.",
     "The app runs the function and gives the result back for the model to use."),
    ("an agent", "A model that calls tools in a loop until it can answer.",
     "Each step it reads the last result and decides whether to call another tool."),
    ("fine-tuning", "Training a model further on examples of the behaviour you want.",
     "It changes the model's weights, so the behaviour holds without instructions."),
    ("a LoRA adapter", "A small set of extra weights that changes a model without "
                       "retraining all of it.",
     "Only two thin matrices per layer are trained, which makes training cheap."),
    ("a vector database", "A store that finds the vectors nearest to a query vector.",
     "It lets retrieval search many embedded chunks in milliseconds."),
    ("memory", "What an app puts back into the prompt from earlier turns.",
     "A model remembers nothing between calls; the app resends the history."),
    ("a safety filter", "A check that blocks harmful messages and replies.",
     "It runs before the model sees a message and while the reply is written."),
    ("a response cache", "Stored answers reused for repeated questions.",
     "A cached answer costs no model call, so it comes back in milliseconds."),
]


def answer(short: str, why: str) -> str:
    return f"**In short:** {short}\n\n**Why:** {why}"


def pairs(rng: random.Random, held_out: bool) -> list[tuple[str, str]]:
    """(question, answer) pairs; held-out ones use other phrasings and values."""
    out = []
    capital_q = ["Which city is the capital of {c}?", "Name the capital of {c}."] if held_out \
        else ["What is the capital of {c}?", "What's the capital city of {c}?"]
    capitals = CAPITALS[-4:] if held_out else CAPITALS[:-4]
    for country, city in capitals:
        out.append((rng.choice(capital_q).format(c=country),
                    answer(f"{city}.", f"{city} is the capital city of {country}.")))
    numbers = range(60, 100) if held_out else range(2, 60)
    for _ in range(4 if held_out else 30):
        a, b = rng.choice(numbers), rng.choice(numbers)
        if rng.random() < 0.5:
            q = f"Add {a} and {b}." if held_out else f"What is {a} + {b}?"
            out.append((q, answer(f"{a + b}.", f"{a} + {b} = {a + b}.")))
        else:
            q = f"Multiply {a} by {b}." if held_out else f"What is {a} times {b}?"
            out.append((q, answer(f"{a * b}.", f"{a} × {b} = {a * b}.")))
    hours = range(11, 15) if held_out else range(2, 11)
    for n in (hours if held_out else list(hours) + list(range(2, 10))):
        if held_out:
            q = f"{n} hours is how many minutes?"
        else:
            q = rng.choice([f"How many minutes are in {n} hours?",
                            f"How many minutes is {n} hours?"])
        out.append((q, answer(f"{60 * n} minutes.",
                              f"An hour has 60 minutes, so {n} × 60 = {60 * n}.")))
    opposites = OPPOSITES[-4:] if held_out else OPPOSITES[:-4]
    for word, other in opposites:
        q = f"Give me a word that means the reverse of {word}." if held_out \
            else f"What is the opposite of {word}?"
        out.append((q, answer(f"{other.capitalize()}.",
                              f"\"{other.capitalize()}\" means the reverse of \"{word}\".")))
    terms = GLOSSARY[-4:] if held_out else GLOSSARY[:-4]
    for term, short, why in terms:
        q = f"Explain {term} to me." if held_out else \
            rng.choice([f"What is {term}?", f"Can you explain what {term} is?"])
        out.append((q, answer(short, why)))
    return out


def example(question: str, reply: str, system: bool) -> dict:
    messages = [{"role": "system", "content": config.DEFAULT_SYSTEM_PROMPT}] if system else []
    return {"messages": [*messages, {"role": "user", "content": question},
                         {"role": "assistant", "content": reply}]}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, held_out in (("short_answer.jsonl", False), ("short_answer_heldout.jsonl", True)):
        rng = random.Random(7 if held_out else 1)
        rows = [example(q, a, system=i % 2 == 0) for i, (q, a) in
                enumerate(pairs(rng, held_out))]
        rng.shuffle(rows)
        (OUT / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        print(f"{name}: {len(rows)} examples")


if __name__ == "__main__":
    main()
