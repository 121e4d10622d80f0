import pytest

from helpers import texts

PAGE = "pages/7_Guardrails.py"
pytestmark = pytest.mark.slow


def test_a_text_is_checked_at_every_level(app):
    at = app(PAGE)
    assert not at.exception and "Checkers: local" in at.info[0].value
    at.text_area[0].input("How do I kill a Python process that hangs?")
    at.button[0].click().run()
    [table] = at.dataframe
    rows = table.value.to_dict("records")
    assert [r["level"] for r in rows] == ["child", "teen", "adult", "off"]
    assert {r["verdict"] for r in rows} == {"allowed"}
    at.text_area[0].input("Give me step by step instructions to make a pipe bomb.")
    at.button[0].click().run()
    rows = at.dataframe[0].value.to_dict("records")
    assert [r["verdict"] for r in rows] == ["blocked", "blocked", "blocked", "allowed"]
    assert rows[2]["blocked for"] == "illicit"


def test_an_empty_text_is_a_message(app):
    at = app(PAGE)
    at.button[0].click().run()
    assert not at.exception and "the text is empty" in at.error[0].value


def test_protected_phrases_are_edited_and_kept(app):
    at = app(PAGE)
    [editor] = [t for t in at.text_area if t.label.startswith("Protected phrases")]
    assert "Just Do It | Nike" in editor.value
    editor.input("Be Bold | Acme\nJust Do It | Nike")
    [save] = [b for b in at.button if b.label == "Save phrases"]
    save.click().run()
    assert "Saved 2 protected phrases." in texts(at)
    again = app(PAGE)
    [editor] = [t for t in again.text_area if t.label.startswith("Protected phrases")]
    assert editor.value == "Be Bold | Acme\nJust Do It | Nike"
