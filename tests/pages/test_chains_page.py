import pytest

from helpers import texts

PAGE = "pages/2_Prompt_Chains.py"
pytestmark = pytest.mark.slow


def run_technique(at, technique):
    at.selectbox(key="chain_technique").select(technique).run()
    next(b for b in at.button if b.label == "Run").click().run()
    assert not at.exception
    return at


def test_template_technique_shows_examples_prompt_and_answer(app):
    at = app(PAGE)
    at.text_input(key="t_question").input("green apple").run()
    at.selectbox(key="t_selector").select("ngram").run()
    at.number_input(key="t_threshold").set_value(0.0).run()
    run_technique(at, "template")
    shown = texts(at)
    assert "**Selected examples** (1 of 10" in shown and "`apple`" in shown
    codes = [c.value for c in at.code]
    assert codes[0].startswith("You are a nutritionist who classifies foods.")
    assert codes[1] == "## Examples\nInput: apple\nOutput: fruit\n\n## Question\ngreen apple"


def test_sequential_chain_shows_every_step_and_survives_a_rerun(app):
    at = run_technique(app(PAGE), "sequential")
    labels = [e.label for e in at.expander]
    assert any(label.startswith("1. extract") for label in labels)
    assert any(label.startswith("2. compress") for label in labels)
    assert any(label.startswith("3. reformat") for label in labels)
    # the answer is in view, outside the closed box of intermediate steps
    assert at.status[0].proto.label == "2 intermediate steps"
    answer = [m.value for m in at.main.markdown]
    assert "**Answer**" in answer and answer[answer.index("**Answer**") + 1].strip()
    at.run()  # redraws the last run
    redrawn = [e.label.split(" · ")[0] for e in at.expander]
    assert ["1. extract", "2. compress", "3. reformat: prompt as sent"] == [
        label for label in redrawn if label[:2] in ("1.", "2.", "3.")]
    assert "**Answer**" in [m.value for m in at.main.markdown]


def test_structured_output_shows_valid_json(app):
    at = run_technique(app(PAGE), "structured")
    assert at.success[0].value in ("Valid JSON after 1 attempt(s).",
                                   "Valid JSON after 2 attempt(s).")
    assert at.json[0].value


def test_bad_example_json_is_a_message(app):
    at = app(PAGE)
    at.radio(key="ex_mode").set_value("JSON").run()
    at.text_area(key="ex_json").input('[{"input": "apple"').run()
    assert not at.exception
    assert "The examples are not valid JSON" in at.error[0].value


@pytest.mark.parametrize("technique,expected", [
    ("density", ["round 1", "round 2", "round 3", "round 4", "round 5: prompt as sent"]),
    ("thought", ["answer: prompt as sent"]),
    ("skeleton", ["1. skeleton", "2.1 expand"]),
])
def test_every_chain_technique_runs_on_the_bundled_model(app, technique, expected):
    at = run_technique(app(PAGE), technique)
    assert not at.error, [e.value for e in at.error]
    labels = [e.label.split(" · ")[0] for e in at.expander]
    assert all(label in labels for label in expected), labels
    if technique == "density":  # every round says what it has that the document has not
        notes = [c.value for c in at.caption if "in the document" in c.value]
        assert len(notes) == 5, notes
    if technique == "thought":
        assert any(c.value.endswith("Let's think step by step.") for c in at.code)
        assert not at.status  # one step: no empty "0 intermediate steps" box (found in a walk)
    else:
        assert [s.label for s in at.status][0].endswith("intermediate steps")


def test_the_few_shot_example_answers_from_the_label_set_on_the_bundled_model(app):
    """The page's own example: "mango" is a fruit, decoded under an enum of
    the examples' outputs (free sampling gave "Boskakes…" in a browser walk)."""
    at = run_technique(app(PAGE), "template")
    assert at.toggle(key="t_closed").value is True
    assert "**fruit**" in [m.value for m in at.markdown]
    assert any(c.value.startswith("Constrained to the examples' outputs: fruit, vegetable")
               for c in at.caption)
