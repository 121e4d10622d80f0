"""The loop detector used to choose the local model's sampling defaults."""

from llmapp.repetition import loops, most_repeated


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
