"""The staged roadmap the app walks through, with what is built so far.

Home renders this list; keeping it here means the CLI, a notebook and the
tests read the same truth as the page.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One stage of the roadmap.

    Attributes:
        number: 1 to 6 for the stages; 0 for the production pieces.
        title: short name.
        page: the Streamlit page file, or None while it is not built.
        summary: one sentence on what the stage teaches.
    """

    number: int
    title: str
    page: str | None
    summary: str

    @property
    def built(self) -> bool:
        """Whether the stage has a page yet."""
        return self.page is not None


STAGES: tuple[Stage, ...] = (
    Stage(1, "Simple prompt", "pages/1_Simple_Prompt.py",
          "One model call: a system prompt, sampling controls, a streamed Markdown answer, "
          "and what it cost in time and tokens."),
    Stage(2, "Prompt chains", "pages/2_Prompt_Chains.py",
          "Templates, few-shot example selectors, multi-step chains and structured output."),
    Stage(3, "RAG over Chroma", "pages/3_RAG.py",
          "Chunk and embed your documents, retrieve the relevant chunks, answer with citations "
          "(quoted from them, for a model too small to answer)."),
    Stage(4, "Memory", "pages/4_Memory.py",
          "Window, token-budget, summary and profile memory; conversations that persist and "
          "export, and exactly what the model received each turn."),
    Stage(5, "Tools", "pages/5_Tools.py",
          "Tool calling: the model asks for a calculator, a clock, a search, your knowledge "
          "base; for a model too small to choose, a semantic router picks."),
    Stage(6, "Agent", "pages/6_Agent.py",
          "A ReAct loop that plans tool calls until it can answer, with visible, bounded steps."),
    Stage(7, "Fine-tuning", "pages/7_Fine-tuning.py",
          "Learn from use: feedback on every reply, datasets from it, LoRA training on the CPU, "
          "and the tuned model beside the base."),
)

@dataclass(frozen=True)
class Piece:
    """A production piece of an LLM system, around the stages.

    Attributes:
        name: what the field calls it.
        page: where it shows, or None.
        status: what is built, in a few words.
    """

    name: str
    page: str | None
    status: str


PRODUCTION_PIECES = (
    Piece("Safety filter", "pages/8_Guardrails.py",
          "input and output checks at child, teen and adult levels; protected phrases; "
          "instructions in documents fenced"),
    Piece("Cache", None, "exact and semantic, on the Simple Prompt, Memory and RAG pages and "
          "in `llmapp chat` (sidebar: Storage and cache)"),
    Piece("Prompt templates and example selectors", "pages/2_Prompt_Chains.py", "stage 2"),
    Piece("Output formatting", "pages/2_Prompt_Chains.py", "structured JSON output, stage 2"),
    Piece("Evaluation", "pages/9_Evaluation.py",
          "a judge model grades answers over a question set; runs saved and compared in "
          "charts; retrieval metrics; the judge checked against people's feedback"),
    Piece("HTTP API", None, "`llmapp serve`: OpenAI's chat completions API over chat, RAG and "
          "the agent, streamed, with auth and a bounded queue"),
    Piece("Notebook", None, "`llmapp.notebook.Chatbot` streams into Jupyter; "
          "`notebooks/01_chatbot.ipynb` walks stages 1, 4 and 3"),
)
"""What a production LLM system adds around the stages, and what is built."""
