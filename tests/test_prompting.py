"""Stage 2: selectors, templates, chains (with a recording model at llmapp's
boundary) and structured output on the real bundled model."""

import json

import pytest

from helpers import recording_chat_model
from llmapp.prompting import PromptError
from llmapp.prompting.chains import (COMPRESS, EXTRACT, LOOP_NOTE, REFORMAT, THINK, density,
                                     fit_document, parse_points, sequential, skeleton, thought)
from llmapp.prompting.selectors import (FOOD_EXAMPLES, fit_budget, ngram_overlap_score,
                                        parse_examples, select_examples)
from llmapp.prompting.structured import (StructuredOutputError, schema_of, structured_output,
                                         validate)
from llmapp.prompting.templates import PromptSpec

EXAMPLES = [{"input": "red apple pie", "output": "dessert"},
            {"input": "apple", "output": "fruit"},
            {"input": "green salad", "output": "starter"},
            {"input": "chocolate cake", "output": "dessert"}]


def inputs(examples):
    return [e["input"] for e in examples]


def test_ngram_orders_by_overlap_and_thresholds_follow_the_seed():
    everything = select_examples("ngram", EXAMPLES, "apple pie", threshold=-1)
    assert len(everything) == 4 and inputs(everything)[:2] == ["red apple pie", "apple"]
    scores = [ngram_overlap_score("apple pie", e["input"]) for e in everything]
    assert scores == sorted(scores, reverse=True)
    overlapping = select_examples("ngram", EXAMPLES, "apple pie", threshold=0)
    assert inputs(overlapping) == ["red apple pie", "apple"]  # no overlap -> dropped
    assert select_examples("ngram", EXAMPLES, "apple pie", threshold=1.01) == []


@pytest.fixture(scope="module")
def embedder():
    from llmapp.rag.embeddings import LocalEmbeddings

    return LocalEmbeddings()


@pytest.mark.slow
def test_semantic_top_k(embedder):
    picked = select_examples("semantic", FOOD_EXAMPLES, "mango", k=2, embedder=embedder)
    assert len(picked) == 2 and "banana" in inputs(picked)
    fish = select_examples("semantic", FOOD_EXAMPLES, "grilled trout", k=1, embedder=embedder)
    assert fish[0]["output"] == "fish"


@pytest.mark.slow
def test_mmr_is_more_diverse_than_similarity(embedder):
    # near-duplicates of the question crowd out everything else under plain similarity
    examples = [{"input": t, "output": "x"} for t in (
        "how to bake sourdough bread", "how to bake sourdough bread at home",
        "baking sourdough bread at home", "how to fix a flat bicycle tyre",
        "how to plant tomatoes")]
    similar = select_examples("semantic", examples, "bake sourdough bread", k=3,
                              embedder=embedder)
    diverse = select_examples("mmr", examples, "bake sourdough bread", k=3, embedder=embedder)
    assert sum("sourdough" in e for e in inputs(similar)) == 3
    assert sum("sourdough" in e for e in inputs(diverse)) < 3


def test_length_budget_drops_examples_and_says_which():
    report = fit_budget(FOOD_EXAMPLES, budget=30, count=lambda s: len(s.split()))
    assert 0 < len(report.kept) < len(FOOD_EXAMPLES) and report.tokens <= 30
    assert report.kept + report.dropped == FOOD_EXAMPLES
    assert report.notice.startswith(f"Left out {len(report.dropped)} example(s)")
    assert repr(report.dropped[0]["input"]) in report.notice


@pytest.mark.parametrize("text,words", [
    ("[]", "empty"), ("{oops", "not valid JSON"), ('[{"input": "a"}]', 'needs a string "input"'),
    ('{"input": "a", "output": "b"}', "empty")])
def test_bad_example_sets(text, words):
    with pytest.raises(PromptError, match=words):
        parse_examples(text)


def test_template_renders_exactly_and_skips_empty_slots():
    spec = PromptSpec(role="You classify foods.", task="Name the group.",
                      examples=FOOD_EXAMPLES[:1], constraints="One word.")
    assert spec.render("mango") == [
        {"role": "system", "content": "You classify foods.\n\n## Task\nName the group.\n\n"
                                      "## Constraints\nOne word."},
        {"role": "user", "content": "## Examples\nInput: apple\nOutput: fruit\n\n"
                                    "## Question\nmango"}]


@pytest.mark.parametrize("spec,words", [
    (PromptSpec(user_template="{question} in {colour}"), "uses {colour}, which is not a slot"),
    (PromptSpec(user_template="{question"), "does not parse"),
    (PromptSpec(user_template="{context}", system_template="{role}"), "never use {question}"),
])
def test_bad_templates(spec, words):
    with pytest.raises(PromptError, match=words):
        spec.render("mango")


def consume(steps):
    out = []
    for step in steps:
        if step.stream is not None:
            "".join(step.stream)
        out.append(step)
    return out


def test_sequential_chain_sends_each_output_to_the_next_step():
    model = recording_chat_model(lambda p: f"<{len(p)}>")
    steps = consume(sequential("Doc text.", lambda role: model))
    assert [s.name for s in steps] == ["1. extract", "2. compress", "3. reformat"]
    prompts = [c[0] for c in model.calls]
    assert prompts[0] == "human: " + EXTRACT.format(text="Doc text.")
    assert prompts[1] == "human: " + COMPRESS.format(facts=steps[0].output)
    assert prompts[2] == "human: " + REFORMAT.format(summary=steps[1].output)
    assert steps[2].prompt[0]["content"] == REFORMAT.format(summary=steps[1].output)


def test_steps_can_run_on_different_models():
    a = recording_chat_model(lambda p: "A")
    b = recording_chat_model(lambda p: "B")
    consume(sequential("Doc.", lambda role: b if role == "compress" else a))
    assert len(a.calls) == 2 and len(b.calls) == 1 and "Facts:\nA" in b.calls[0][0]


def test_chain_of_density_runs_n_rounds_each_on_the_last():
    model = recording_chat_model(lambda p: f"summary {p.count('Previous summary')}")
    steps = consume(density("The article.", lambda role: model, rounds=4, words=40))
    assert [s.name for s in steps] == ["round 1", "round 2", "round 3", "round 4"]
    assert len(model.calls) == 4 and "Previous summary" not in model.calls[0][0]
    assert "Previous summary:\nsummary 0" in model.calls[1][0]
    with pytest.raises(PromptError, match="1 to 10 rounds"):
        list(density("x", lambda role: model, rounds=0))


def test_chain_of_thought_toggle():
    model = recording_chat_model(lambda p: "ok")
    consume(thought("Is 17 prime?", lambda role: model, step_by_step=True))
    consume(thought("Is 17 prime?", lambda role: model, step_by_step=False))
    assert model.calls[0][0] == "human: Is 17 prime?" + THINK
    assert model.calls[1][0] == "human: Is 17 prime?"


def test_a_final_step_that_loops_is_cut_where_the_loop_guard_trips():
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    pulled = []

    class Looping(BaseChatModel):  # a model at llmapp's boundary that never stops repeating
        @property
        def _llm_type(self) -> str:
            return "looping"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            raise NotImplementedError

        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            for n in range(200):
                pulled.append(n)
                yield ChatGenerationChunk(message=AIMessageChunk(content="Run a little every day. "))

    [step] = consume(thought("How do I start running?", lambda role: Looping()))
    assert step.notes == [LOOP_NOTE]
    assert 3 <= step.output.count("Run a little every day.") <= 5 and len(pulled) <= 6
    [plain] = consume(thought("Is 17 prime?", lambda role: recording_chat_model(lambda p: "Yes.")))
    assert plain.output == "Yes." and plain.notes == []


def test_skeleton_of_thought_expands_points_in_parallel():
    def reply(prompt):
        return "1. Warm up\n2. Start slow\n3. Rest days" if "skeleton of an answer" in prompt \
            else "Expanded."
    model = recording_chat_model(reply, delay_s=0.3)
    steps = consume(skeleton("How do I start running?", lambda role: model))
    assert [s.name for s in steps] == ["1. skeleton", "2.1 expand", "2.2 expand", "2.3 expand",
                                       "3. answer"]
    parallel = model.calls[1:4]
    assert max(start for _, start, _ in parallel) < min(end for _, _, end in parallel)
    sequential_calls = model.calls[4:7]
    for (_, _, end), (_, start, _) in zip(sequential_calls, sequential_calls[1:], strict=False):
        assert start >= end
    assert any("expand only point 2: Start slow" in prompt for prompt, _, _ in parallel)
    assert steps[-1].output.startswith("1. **Warm up**: Expanded.")
    assert "parallel/sequential" in steps[-1].notes[-1]


def test_the_skeletons_answer_is_one_valid_markdown_list():
    from llmapp.prompting.chains import assemble

    answer = assemble(["Shoes", "Pace:"], ["Buy good ones.\n\n- light\n- cushioned", "Go slow."])
    assert answer == ("1. **Shoes**: Buy good ones. - light - cushioned\n"
                      "2. **Pace**: Go slow.")


def test_points_are_parsed_from_numbered_or_bulleted_lists():
    assert parse_points("1. One\n2) Two\n- Three\nnot a point") == ["One", "Two", "Three"]


def test_a_document_bigger_than_the_window_is_truncated_with_a_notice():
    class Words:
        def count_text(self, text):
            return len(text.split())

    text = "word " * 1000
    fitted, notice = fit_document(text, Words(), 100)
    assert len(fitted.split()) <= 100 and "has 1000 tokens" in notice and "truncated" in notice
    assert fit_document("short", Words(), 100) == ("short", None)


def test_schemas():
    assert schema_of("food")["properties"]["category"]["enum"][0] == "fruit"
    assert validate({"item": "x", "category": "meat"}, schema_of("food")).startswith(
        "at category:")
    for bad, words in (("nope", "neither a built-in"), ('{"type": 5}', "not a valid JSON Schema"),
                       ('{"type": "array"}', "top level must be")):
        with pytest.raises(PromptError, match=words):
            schema_of(bad)


@pytest.mark.slow
def test_structured_output_on_the_bundled_model(local_settings):
    for name, text in (("food", "Classify the food: salmon."),
                       ("contact", "Call Jane Doe at jane@acme.com.")):
        schema = schema_of(name)
        result = structured_output(local_settings, [{"role": "user", "content": text}], schema)
        assert validate(result.data, schema) is None
        assert json.loads(result.raw) == result.data and result.attempts in (1, 2)


@pytest.mark.slow
def test_an_unfillable_schema_fails_clearly_with_the_raw_text(local_settings):
    schema = schema_of('{"type": "object", "properties": {"n": {"type": "integer", '
                       '"minimum": 10, "maximum": 5}}, "required": ["n"]}')
    with pytest.raises(StructuredOutputError) as err:
        structured_output(local_settings, [{"role": "user", "content": "Pick n."}], schema)
    assert "even after one repair attempt" in str(err.value) and err.value.raw.startswith("{")


def test_a_label_set_is_read_from_short_closed_outputs_only():
    from llmapp.prompting.selectors import FOOD_EXAMPLES, label_set

    assert label_set(FOOD_EXAMPLES) == ["fruit", "vegetable", "fish", "dairy", "grain"]
    assert label_set([{"input": "a", "output": "a long free answer of many words"}]) == []
    many = [{"input": str(n), "output": f"label {n}"} for n in range(21)]
    assert label_set(many) == [] and label_set([]) == []


def test_chain_of_density_names_what_the_document_does_not_hold():
    """Found in a walk: the bundled model's dense summaries added names and
    dates from nowhere."""
    from llmapp.prompting.chains import not_in_source

    source = ("Streamlit reruns the script on every click. Chroma stores 384-dimensional "
              "vectors on disk. It was released in 2022.")
    summary = "The app uses Streamlit and Chroma, released in 2019 by Google Research. 384 dims."
    assert not_in_source(summary, source) == ["2019", "Google Research"]
    assert not_in_source("Streamlit reruns scripts. Chroma stores vectors.", source) == []
