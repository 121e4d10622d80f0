"""Stage 7: a fine-tuning dataset checked before anything trains."""

from __future__ import annotations

import json

import pytest
from helpers import run_cli

from llmapp.providers import get_provider
from llmapp.tuning.validate import KINDS, MIN_EXAMPLES, validate


def example(question: str, answer: str, system: str | None = None) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return json.dumps({"messages": messages})


GOOD = [example(f"What is {n} plus {n}?", f"{n} plus {n} is {2 * n}.", "Answer briefly.")
        for n in range(1, MIN_EXAMPLES + 2)]

BAD = {
    "invalid_json": '{"messages": [',
    "data_type": '["a list", "not an object"]',
    "missing_messages_list": '{"prompt": "Hi", "completion": "Hello"}',
    "message_missing_key": json.dumps({"messages": [
        {"role": "user"}, {"role": "assistant", "content": "Hello"}]}),
    "message_unrecognized_key": json.dumps({"messages": [
        {"role": "user", "content": "Hi", "mood": "sunny"},
        {"role": "assistant", "content": "Hello"}]}),
    "unrecognized_role": json.dumps({"messages": [
        {"role": "human", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}),
    "missing_content": json.dumps({"messages": [
        {"role": "user", "content": ""}, {"role": "assistant", "content": "Hello"}]}),
    "example_missing_assistant_message": json.dumps({"messages": [
        {"role": "user", "content": "Hi"}]}),
    "duplicate": GOOD[0],
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_each_error_class_is_named_with_its_line(kind):
    report = validate([*GOOD, "", BAD[kind]])
    assert (report.problems[0].line, report.problems[0].kind) == (len(GOOD) + 2, kind)
    assert {p.line for p in report.problems} == {len(GOOD) + 2} and not report.ok
    # as in OpenAI's cookbook, a message with no content also counts as missing_content
    assert report.counts() == ({kind: 1, "missing_content": 1}
                               if kind == "message_missing_key" else {kind: 1})
    assert kind in KINDS


def test_a_good_dataset_passes_and_counts_tokens(local_settings):
    provider = get_provider("local")
    counter = provider.token_counter(local_settings)
    report = validate(GOOD, count_messages=counter.count_messages, window=2048)
    assert report.ok and report.examples == len(GOOD) and report.window == 2048
    assert len(report.tokens) == len(GOOD)
    assert all(t > a > 0 for t, a in zip(report.tokens, report.assistant_tokens))
    assert report.tokens[0] == counter.count_messages(json.loads(GOOD[0])["messages"])


def test_too_few_and_too_long_examples(local_settings):
    counter = get_provider("local").token_counter(local_settings)
    few = validate(GOOD[:3])
    assert [(p.line, p.kind) for p in few.problems] == [(0, "too_few_examples")]
    long = example("Summarize: " + "words " * 400, "Words.")
    report = validate([*GOOD, long], count_messages=counter.count_messages, window=256)
    assert [(p.line, p.kind) for p in report.problems] == [(len(GOOD) + 1, "too_long")]
    assert "over the 256-token window" in report.problems[0].message


@pytest.mark.slow
def test_llmapp_tune_validate_reports_lines_and_exits_1(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join([*GOOD, BAD["unrecognized_role"], BAD["duplicate"]]) + "\n")
    result = run_cli("tune", "validate", str(path))
    assert result.returncode == 1
    assert f"line {len(GOOD) + 1}: unrecognized_role" in result.stdout
    assert f"line {len(GOOD) + 2}: duplicate: the same messages as line 1." in result.stdout
    assert "usable examples" in result.stderr and "Traceback" not in result.stderr
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(GOOD))
    data = json.loads(run_cli("tune", "validate", str(good), "--json").stdout)
    assert data["ok"] is True and data["examples"] == len(GOOD) and data["window"] == 2048
    missing = run_cli("tune", "validate", str(tmp_path / "absent.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
