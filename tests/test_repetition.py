"""The loop detector used to choose the local model's sampling defaults."""

from llmapp.repetition import LoopGuard, loops, most_repeated


def test_a_sentence_said_three_times_loops():
    text = "Chunk overlap is good. Chunk overlap is good. Chunk overlap is good."
    assert loops(text) and most_repeated(text) == ("chunk overlap is good", 3)


def test_twice_is_not_a_loop_and_case_and_punctuation_do_not_matter():
    assert not loops("Chunk overlap is good. chunk overlap, is GOOD!")
    assert loops("The end is near; the END is near, the end is NEAR.")


def test_markdown_table_rules_are_not_loops():
    table = "| a | b |\n| --- | --- |\n| --- | --- |\n| --- | --- |\n| --- | --- |"
    assert not loops(table)


def test_short_texts():
    assert most_repeated("too short") == ("", 0) and not loops("")


def test_the_guard_trips_on_the_third_run_of_eight_words_fed_in_pieces():
    from llmapp.repetition import LoopGuard

    sentence = "The code will be: Ada ASAUSSENI-RADEMES-PINNADE and more. "
    guard = LoopGuard()
    text = sentence * 4
    pieces = [text[i:i + 3] for i in range(0, len(text), 3)]
    tripped_at = next(i for i, p in enumerate(pieces) if guard.feed(p))
    fed = "".join(pieces[:tripped_at + 1])
    assert 2 * len(sentence) < len(fed) <= 3 * len(sentence) + 20


def test_the_guard_leaves_prose_lists_and_tables_alone():
    from llmapp.repetition import LoopGuard

    prose = ("Python is a dynamic language with a large standard library. Rust is a systems "
             "language that checks memory safety at compile time. ") * 2
    table = "| Feature | Python | Rust |\n|---|---|---|\n" + "".join(
        f"| Feature {i} | value {i} for Python | value {i} for Rust |\n" for i in range(30))
    steps = "".join(f"{i}. Open the file and read line {i} of the list.\n" for i in range(30))
    for text in (prose, table, steps):
        guard = LoopGuard()
        assert not any(guard.feed(text[i:i + 5]) for i in range(0, len(text), 5)), text[:40]


def test_a_looping_stream_is_stopped_and_the_model_stream_closed():
    from langchain_core.messages import AIMessageChunk

    from llmapp.repetition import LoopGuard
    from llmapp.streaming import ReplyStats, ReplyStream

    closed = []

    def endless():
        try:
            while True:
                yield AIMessageChunk(content="I like green tea with honey and lemon today. ")
        finally:
            closed.append(True)

    stream = ReplyStream(endless, ReplyStats("local", "m"), count_text=lambda t: len(t.split()),
                         guard=LoopGuard())
    text = stream.consume()
    assert text.count("green tea") == 3 and closed == [True]
    assert stream.stats.stopped == "repetition"
    assert stream.stats.summary().endswith("stopped: it began repeating itself")


def test_a_runaway_list_of_ever_new_items_is_stopped():
    """No 8-word run repeats in a list of new place names; the list rule
    stops it after 25 short items."""
    guard = LoopGuard()
    places = [f"Vila {name}" for name in ("Nova", "Real", "Verde", "Franca", "Alta", "Baixa")]
    text = ", ".join(f"{p} {i}" for i in range(10) for p in places)
    pieces = [text[i:i + 5] for i in range(0, len(text), 5)]
    fed = 0
    while not guard.feed(pieces[fed]):
        fed += 1
    assert guard.reason == "list" and 25 * 10 < sum(map(len, pieces[:fed + 1])) < 30 * 14


def test_ordinary_lists_and_prose_are_not_stopped():
    guard = LoopGuard()
    steps = "\n".join(f"{i}. {step}" for i, step in enumerate(
        ("Boil fresh water.", "Warm the pot with a splash of it.", "Add one spoon of leaves per "
         "cup.", "Pour the water while it still bubbles.", "Wait three to five minutes.",
         "Strain into cups.", "Add milk or lemon if you like."), start=1))
    prose = ("Lisbon is the capital of Portugal, a city of hills, trams and tiled facades. "
             "It sits on the Tagus estuary, and its old quarters, Alfama and Mouraria, survived "
             "the earthquake of 1755 that destroyed much of the rest. ") * 1
    fruit = "Apples, pears, plums, cherries, grapes, figs and dates all grow in Portugal."
    for text in (steps, prose, fruit):
        assert not guard.feed(text + "\n"), guard.reason


def test_a_collapsing_vocabulary_is_stopped_even_without_a_repeated_run():
    import random

    rng = random.Random(7)
    words = "red blue green star moon sun sky sea day night rain wind".split()
    text = " ".join(rng.choice(words) + ("." if rng.random() < 0.1 else "") for _ in range(400))
    guard = LoopGuard(n=40)  # no 40-word run repeats: only the diversity rule can trip
    assert guard.feed(text) and guard.reason == "diversity"
