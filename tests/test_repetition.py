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
