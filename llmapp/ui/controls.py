"""Generation controls: system prompt, temperature, top_p, max tokens, stop."""

from __future__ import annotations

import streamlit as st

from llmapp import config
from llmapp.providers import GenerationParams, active_provider
from llmapp.settings import Settings


def parse_stop(text: str) -> tuple[str, ...]:
    """Stop sequences, one per line; blank lines ignored, escapes like ``\\n``
    kept literally."""
    return tuple(line for line in text.splitlines() if line.strip())


def generation_controls(settings: Settings, page: str,
                        system: bool = True) -> tuple[GenerationParams, str]:
    """Sidebar controls for one page; returns the params and the system prompt
    ('' when ``system`` is False and the page writes its own prompts)."""
    provider, _ = active_provider(settings)
    info = provider.model_info(settings)
    sampling = info is None or info.supports_sampling
    window = provider.context_window(settings)
    bar = st.sidebar
    bar.subheader("Generation")
    system_prompt = bar.text_area("System prompt", config.DEFAULT_SYSTEM_PROMPT,
                                  key=f"{page}_system", height=110,
                                  help="Sent first, on every turn: the model's persona and rules."
                                  ) if system else ""
    defaults = GenerationParams.for_page(page)
    temperature = bar.slider("Temperature", 0.0, 2.0, defaults.temperature, 0.05,
                             key=f"{page}_temperature", disabled=not sampling,
                             help="0 picks the likeliest token every time; higher is more varied.")
    top_p = bar.slider("Top p", 0.05, 1.0, defaults.top_p, 0.05, key=f"{page}_top_p",
                       disabled=not sampling,
                       help="Sample only from the smallest set of tokens whose probability "
                            "adds up to p.")
    if not sampling:
        bar.caption(f"`{provider.model_name(settings)}` is a reasoning model: it accepts only "
                    "the default temperature and top p.")
    limit = max(16, min(config.MAX_TOKENS_LIMIT, window // 2))
    max_tokens = bar.slider("Max tokens", 16, limit, min(defaults.max_tokens, limit), 16,
                            key=f"{page}_max_tokens",
                            help=f"Longest reply, in tokens. The model's window is {window} "
                                 "tokens; older turns are dropped to make room.")
    stop = bar.text_area("Stop sequences", "", key=f"{page}_stop", height=68,
                         help="One per line. Generation ends when the model writes one.")
    params = GenerationParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                              stop=parse_stop(stop))
    return params, system_prompt.strip()
