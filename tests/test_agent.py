"""The agent loop with a scripted tool-calling model at llmapp's boundary,
and the real tools (calculator on the real AST evaluator, knowledge base on
real Chroma)."""

import pytest
from langchain_core.messages import AIMessage

from helpers import call, chroma_settings, scripted_tool_model
from llmapp.agent import build_agent, run_agent
from llmapp.tools import calculator, make_knowledge_base_tool, word_count


def kinds(events):
    return [e.kind for e in events]


@pytest.mark.slow
def test_multi_step_run_calculator_then_knowledge_base_then_answer(tmp_path):
    from llmapp.rag.store import knowledge_base

    kb = knowledge_base(chroma_settings(tmp_path / "chroma"))
    kb.ingest("notes", b"# Budget\n\nThe team budget is 4242 euros.\n", "notes.md")
    model = scripted_tool_model([
        call("calculator", "c1", expression="23 * 19"),
        call("knowledge_base", "k1", query="team budget"),
        AIMessage("23 × 19 = 437, and the budget is 4242 euros [1]."),
    ])
    agent = build_agent(model, [calculator, make_knowledge_base_tool(kb, "notes")])
    events = [e for e in run_agent(agent, "What is 23*19, and what is our budget?")
              if e.kind != "token"]
    assert kinds(events) == ["tool_call", "tool_result", "tool_call", "tool_result", "answer"]
    assert (events[0].name, events[0].args) == ("calculator", {"expression": "23 * 19"})
    assert events[1].text == "437" and events[1].ok and events[1].call_id == "c1"
    assert events[3].text.startswith("[1] notes.md, chunk 0") and "4242" in events[3].text
    assert events[4].text.endswith("[1].")
    # the model saw each observation before its next step
    assert model.seen[1][-1].content == "437"
    assert "4242" in model.seen[2][-1].content


def test_a_tool_error_goes_back_to_the_model_which_recovers():
    model = scripted_tool_model([
        call("calculator", "c1", expression=""),  # what the 135M model really does
        call("calculator", "c2", expression="23*19"),
        AIMessage("437"),
    ])
    events = list(run_agent(build_agent(model, [calculator]), "23*19?"))
    results = [e for e in events if e.kind == "tool_result"]
    assert [r.ok for r in results] == [False, True]
    assert results[0].text.startswith("Error: The expression is empty")
    assert model.seen[1][-1].content.startswith("Error: The expression is empty")
    assert events[-1].kind == "answer" and events[-1].text == "437"


def test_a_run_that_hits_its_model_call_limit_stops_with_a_limit_event():
    model = scripted_tool_model([call("word_count", f"w{i}", text="again") for i in range(10)])
    events = list(run_agent(build_agent(model, [word_count], max_model_calls=3), "Loop!"))
    assert kinds(events).count("tool_call") == 3
    assert events[-1].kind == "limit" and "answer" not in kinds(events)
    assert len(model.seen) == 3


def test_tool_call_limit_answers_extra_calls_without_running_them():
    model = scripted_tool_model([call("calculator", f"c{i}", expression="1+1") for i in range(4)]
                                + [AIMessage("2")])
    events = list(run_agent(build_agent(model, [calculator], max_tool_calls=2), "1+1?"))
    results = [e for e in events if e.kind == "tool_result"]
    assert [r.text for r in results[:2]] == ["2", "2"]
    assert all(r.text != "2" for r in results[2:])


def test_steps_stream_in_order_with_timings():
    model = scripted_tool_model([call("calculator", "c1", expression="2**10"), AIMessage("1024")])
    events = list(run_agent(build_agent(model, [calculator]), "2^10?"))
    order = [e.kind for e in events if e.kind != "token"]
    assert order == ["tool_call", "tool_result", "answer"]
    assert events[order.index("tool_result")].seconds >= 0


@pytest.mark.slow
def test_the_bundled_model_runs_the_agent_and_reports_what_happened():
    from llmapp.providers.local import ChatLocalLlama

    model = ChatLocalLlama(temperature=0, max_tokens=60)
    bound = model.bind_tools([calculator, word_count])
    assert [t["name"] for t in bound.tools] == ["calculator", "word_count"] and not model.tools
    reply = bound.invoke("What is 23*19? Use the calculator.")
    if reply.tool_calls:  # a decision under the grammar: a known tool, string arguments
        [tool_call] = reply.tool_calls
        assert tool_call["name"] in ("calculator", "word_count")
        assert all(isinstance(v, str) for v in tool_call["args"].values())
    else:
        assert reply.text.strip()
    events = list(run_agent(build_agent(model, [calculator, word_count], max_model_calls=3),
                            "What is 23*19?"))
    assert events and events[-1].kind in ("answer", "limit")
    for event in events:
        if event.kind == "tool_call":
            assert event.name in ("calculator", "word_count")
