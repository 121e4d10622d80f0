"""Stage 2's widgets: techniques, their inputs, and each step as it runs."""

from __future__ import annotations

import json

import streamlit as st

from llmapp.chat import to_langchain
from llmapp.errors import LlmappError
from llmapp.prompting import PromptError
from llmapp.prompting.chains import Step, density, fit_document, sequential, skeleton, thought
from llmapp.prompting.selectors import (FOOD_EXAMPLES, BudgetReport, check_examples, fit_budget,
                                        label_set, parse_examples, select_examples)
from llmapp.prompting.structured import (BUILT_IN, StructuredOutputError, classify, schema_of,
                                         structured_output)
from llmapp.prompting.templates import SYSTEM_TEMPLATE, USER_TEMPLATE, PromptSpec
from llmapp.providers import PROVIDERS, GenerationParams, active_provider, chat_model_for
from llmapp.settings import Settings
from llmapp.streaming import coalesce

TECHNIQUES = {
    "template": "Prompt template + few-shot examples",
    "structured": "Structured output (JSON)",
    "sequential": "Sequential chain: extract → compress → reformat",
    "density": "Chain of density",
    "thought": "Chain of thought",
    "skeleton": "Skeleton of thought",
}
ROLES = {"sequential": ("extract", "compress", "reformat"), "density": ("density",),
         "thought": ("answer",), "skeleton": ("skeleton", "expand")}
SAMPLE_DOCUMENT = (
    "Acme Corp launched its Rocket app on 3 March 2026 in Oslo. Chief executive Jane Doe said "
    "10,000 people signed up in the first week, twice the company's forecast. The app plans "
    "running routes from a runner's past pace and the weather, and costs 5 euros a month. "
    "Acme, founded in 2019, employs 40 people and raised 12 million euros last year. A web "
    "version follows in June; an Android beta is open now.")


def technique_picker() -> str:
    """The technique select box; returns its key."""
    return st.selectbox("Technique", list(TECHNIQUES), format_func=TECHNIQUES.get,
                        key="chain_technique")


def _models(settings: Settings, technique: str, params: GenerationParams):
    """Per-step provider choice; returns ``model_for(role)``."""
    active, _ = active_provider(settings)
    runnable = [n for n, p in PROVIDERS.items() if n == active.name or p.status(settings).ok]
    choice = {}
    roles = ROLES.get(technique, ())
    if len(roles) > 1 and len(runnable) > 1:
        cols = st.columns(len(roles))
        for col, role in zip(cols, roles, strict=True):
            choice[role] = col.selectbox(f"Model for {role}", runnable,
                                         index=runnable.index(active.name), key=f"chain_m_{role}")
    cache: dict[str, object] = {}

    def model_for(role: str):
        name = choice.get(role, active.name)
        if name not in cache:
            cache[name] = chat_model_for(settings, name, params)
        return cache[name]
    return model_for


def render_step(step: Step) -> None:
    """A finished step: its exact prompt, its output and its notes."""
    with st.expander(f"{step.name} · {step.seconds:.2f} s", expanded=False):
        for message in step.prompt:
            st.caption(message["role"])
            st.code(message["content"], language=None, wrap_lines=True)
        st.caption("output")
        st.markdown(step.output)
        for note in step.notes:
            st.caption(note)


def _run_steps(events) -> list[Step]:
    """Run a chain: its intermediate steps live in a status box that closes
    when done; the final step's answer streams below it, in view."""
    steps = []
    holder = st.empty()  # a chain of one step (chain of thought) has no box to show
    status = holder.status("Running…", expanded=True)
    below = st.container()
    try:
        for step in events:
            if step.stream is not None:
                status.update(label="Final step", state="running")
                with below:
                    render_answer(step, stream=True)
            else:
                with status:
                    render_step(step)
            steps.append(step)
            status.update(label=f"Done: {step.name}")
    except LlmappError as exc:
        status.update(label="Stopped", state="error")
        below.error(str(exc))
        return steps
    done = len(steps) - any(step.stream is not None for step in steps)
    if done == 0:
        holder.empty()
        return steps
    status.update(label=f"{done} intermediate step{'' if done == 1 else 's'}", state="complete",
                  expanded=False)
    return steps


def render_answer(step: Step, stream: bool = False) -> None:
    """The chain's final answer, in view: its prompt (collapsed), the answer
    (streamed as it arrives, or as kept) and its notes."""
    if step.prompt:
        with st.expander(f"{step.name}: prompt as sent"):
            for message in step.prompt:
                st.code(message["content"], language=None, wrap_lines=True)
    st.markdown("**Answer**")
    if stream:
        written = st.write_stream(coalesce(step.stream))
        step.output = step.output or (written if isinstance(written, str) else "")
    else:
        st.markdown(step.output)
    for note in step.notes:
        st.caption(note)


def chain_panel(settings: Settings, technique: str, params: GenerationParams) -> None:
    """Inputs, model choice and a Run button for the chain techniques."""
    model_for = _models(settings, technique, params)
    if technique in ("sequential", "density"):
        text = st.text_area("Document", SAMPLE_DOCUMENT, height=150, key="chain_doc")
        rounds = st.slider("Rounds", 1, 8, 5, key="chain_rounds") if technique == "density" \
            else 0
    else:
        text = st.text_input("Question", "How do I start running?", key="chain_question")
        cot = st.toggle("Let's think step by step", True, key="chain_cot") \
            if technique == "thought" else False
    key = f"_chain_steps_{technique}"
    if not st.button("Run", type="primary", key="chain_run"):
        last = st.session_state.get(key, [])  # the last run, redrawn after reruns
        for step in last:
            if step.final:
                render_answer(step)
            else:
                render_step(step)
        return
    try:
        if technique == "sequential":
            events = sequential(_fit(settings, text, params), model_for)
        elif technique == "density":
            events = density(_fit(settings, text, params), model_for, rounds)
        elif technique == "thought":
            events = thought(text, model_for, step_by_step=cot)
        else:
            events = skeleton(text, model_for)
    except LlmappError as exc:
        st.error(str(exc))
        return
    steps = _run_steps(events)
    for step in steps:
        step.final = step.stream is not None
        step.stream = None
    st.session_state[key] = steps


def _fit(settings: Settings, text: str, params: GenerationParams) -> str:
    provider, _ = active_provider(settings)
    budget = provider.context_window(settings) - params.max_tokens - 300
    fitted, notice = fit_document(text, provider.token_counter(settings), budget)
    if notice:
        st.warning(notice, icon="✂️")
    return fitted


def examples_editor() -> list[dict[str, str]] | None:
    """The example set, editable as a table or as JSON; None with a message
    when it is unusable."""
    mode = st.radio("Edit examples as", ["table", "JSON"], horizontal=True, key="ex_mode")
    if mode == "table":
        rows = st.data_editor(st.session_state.get("_examples", FOOD_EXAMPLES), num_rows="dynamic",
                              key="ex_table", width="stretch")
        try:
            examples = check_examples([r for r in rows if r.get("input") or r.get("output")])
        except PromptError as exc:
            st.error(str(exc))
            return None
    else:
        text = st.text_area("Examples (JSON)", json.dumps(
            st.session_state.get("_examples", FOOD_EXAMPLES), indent=1), height=200,
            key="ex_json")
        try:
            examples = parse_examples(text)
        except PromptError as exc:
            st.error(str(exc))
            return None
    st.session_state["_examples"] = examples
    return examples


def template_panel(settings: Settings, params: GenerationParams) -> None:
    """Five slots, an example selector with a token budget, the rendered
    prompt, and the streamed answer."""
    c1, c2 = st.columns(2)
    role = c1.text_input("Role", "You are a nutritionist who classifies foods.", key="t_role")
    task = c2.text_input("Task", "Give the food group of the food in the question.",
                         key="t_task")
    context = c1.text_area("Context", "", height=68, key="t_context")
    constraints = c2.text_area("Constraints", "Answer with the food group only, in one word.",
                               height=68, key="t_constraints")
    with st.expander("Templates (editable)"):
        system_t = st.text_area("System template", SYSTEM_TEMPLATE, key="t_system_t")
        user_t = st.text_area("User template", USER_TEMPLATE, key="t_user_t")
    examples = examples_editor()
    s1, s2, s3, s4 = st.columns(4)
    kind = s1.selectbox("Selector", ["ngram", "semantic", "mmr"], key="t_selector",
                        format_func={"ngram": "n-gram overlap", "semantic": "semantic similarity",
                                     "mmr": "max marginal relevance"}.get)
    k = s2.number_input("k", 1, 20, 3, key="t_k", disabled=kind == "ngram")
    threshold = s3.number_input("n-gram threshold", -1.0, 1.5, -1.0, 0.1, key="t_threshold",
                                disabled=kind != "ngram")
    budget = s4.number_input("Example budget (tokens)", 10, 4000, 200, 10, key="t_budget")
    question = st.text_input("Question", "mango", key="t_question")
    labels = label_set(examples or [])
    closed = st.toggle("Answer with one of the examples' outputs (constrained decoding)",
                       bool(labels), key="t_closed", disabled=not labels,
                       help="The answer is decoded under a JSON Schema enum of the outputs ("
                            + (", ".join(labels) or "the examples have no closed set of short "
                               "outputs") + "): a grammar on the local model, OpenAI's "
                            "structured outputs elsewhere. A small model then cannot wander off "
                            "the label set; off, it writes freely.")
    if examples is None or not st.button("Run", type="primary", key="t_run"):
        return
    provider, _ = active_provider(settings)
    try:
        embedder = None
        if kind != "ngram":
            from llmapp.rag.embeddings import get_embedder

            embedder = get_embedder(settings)
        chosen = select_examples(kind, examples, question, k=int(k), threshold=float(threshold),
                                 embedder=embedder)
        report: BudgetReport = fit_budget(chosen, int(budget),
                                          provider.token_counter(settings).count_text)
        spec = PromptSpec(role, task, report.kept, context, constraints, system_t, user_t)
        messages = spec.render(question)
    except LlmappError as exc:
        st.error(str(exc))
        return
    st.markdown(f"**Selected examples** ({len(report.kept)} of {len(examples)}, "
                f"{report.tokens} tokens): " + (", ".join(f"`{e['input']}`" for e in report.kept)
                                                or "none"))
    if report.notice:
        st.warning(report.notice, icon="✂️")
    with st.expander("The prompt exactly as sent", expanded=True):
        for message in messages:
            st.caption(message["role"])
            st.code(message["content"], language=None, wrap_lines=True)
    if closed and labels:
        try:
            with st.spinner("Choosing among the labels…"):
                st.markdown(f"**{classify(settings, messages, labels)}**")
            st.caption(f"Constrained to the examples' outputs: {', '.join(labels)}.")
        except LlmappError as exc:
            st.error(str(exc))
        return
    model = chat_model_for(settings, provider.name, params)
    try:
        chunks = (str(c.text) for c in model.stream(to_langchain(messages)) if c.text)
        st.write_stream(coalesce(chunks))
    except LlmappError as exc:
        st.error(str(exc))
    except Exception as exc:
        st.error(str(provider.describe_error(exc, settings)))


def structured_panel(settings: Settings) -> None:
    """A schema (built-in or pasted JSON Schema) and a text; validated JSON out."""
    names = list(BUILT_IN) + ["custom"]
    choice = st.selectbox("Schema", names, key="s_schema",
                          format_func=lambda n: n if n == "custom" else
                          f"{n}: {BUILT_IN[n].__doc__}")
    spec = choice
    if choice == "custom":
        spec = st.text_area("JSON Schema", json.dumps(BUILT_IN["food"].model_json_schema(),
                                                      indent=1), height=200, key="s_custom")
    text = st.text_area("Input", {"food": "Classify the food: salmon.",
                                  "contact": "Call Jane Doe at jane@acme.com; she works at Acme.",
                                  "summary": "Summarize: " + SAMPLE_DOCUMENT}.get(choice, "salmon"),
                        key="s_input", height=100)
    if not st.button("Run", type="primary", key="s_run"):
        return
    try:
        schema = schema_of(spec)
        with st.spinner("Decoding under the schema…"):
            result = structured_output(settings, [{"role": "user", "content": text}], schema)
    except StructuredOutputError as exc:
        st.error(str(exc))
        st.code(exc.raw, language="json")
        return
    except LlmappError as exc:
        st.error(str(exc))
        return
    for i, prompt in enumerate(result.prompts, start=1):
        with st.expander(f"Attempt {i}: prompt as sent"):
            for message in prompt:
                st.caption(message["role"])
                st.code(message["content"], language=None, wrap_lines=True)
    st.success(f"Valid JSON after {result.attempts} attempt(s).", icon="✅")
    st.json(result.data)
