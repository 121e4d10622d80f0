"""The model manager in the sidebar: pick a local model on disk, download a
bigger one from the catalog (only on a click), or use an Ollama server on
this machine. The library side is :mod:`llmapp.providers.catalog`."""

from __future__ import annotations

import streamlit as st

from llmapp import config
from llmapp.errors import LlmappError
from llmapp.settings import Settings

PATH_SETTING = "LLMAPP_LOCAL_MODEL_PATH"


def model_manager(settings: Settings) -> None:
    """Draw the *Local model* picker, the catalog with a Download button per
    model, and Ollama's models when one answers on localhost. Call it inside
    the provider panel, after the settings are resolved; a pick reruns the
    page, which then resolves with it."""
    from llmapp.providers.catalog import local_models
    from llmapp.ui.settings import _persistent_widget, typed

    found = {str(m.path): f"{m.label} · {m.size_mb:,} MB" for m in local_models(settings)}
    current = typed(PATH_SETTING) or ""
    if current and current not in found:
        found[current] = current
    st.markdown("**Local model**")
    _persistent_widget(st.selectbox, "Local model", PATH_SETTING, "", options=["", *found],
                       format_func=lambda v: found.get(v) or f"bundled {config.LOCAL_MODEL_NAME}",
                       help="The GGUF the local provider runs. Download a bigger one below; the "
                            "first reply after a switch loads it (seconds).")
    with st.popover("Download a bigger model", icon="⬇️", width="stretch"):
        _catalog(settings)
    _ollama()


def _catalog(settings: Settings) -> None:
    from llmapp.providers.catalog import CATALOG, downloaded, memory_limit_mb

    limit = memory_limit_mb()
    st.caption("Downloaded from Hugging Face only when you click. Sizes are approximate; "
               "tokens/s are estimates for 2 free cores, scaled from the bundled model's "
               "measured ~140 (less when the cores are shared)."
               + (f" This box allows {limit[0]:,} MB of memory ({limit[1]})." if limit else ""))
    for entry in CATALOG:
        here = downloaded(settings, entry)
        too_big = limit is not None and limit[0] < entry.memory_mb
        st.markdown(f"**{entry.label}** · {entry.size_mb:,} MB · ~{entry.memory_mb:,} MB memory · "
                    f"~{entry.tokens_per_s:.0f} tokens/s · {entry.licence}  \n{entry.note}")
        if here:
            st.caption("Downloaded: pick it under *Local model*.")
        elif st.button("Download", key=f"_dl_{entry.key}", disabled=too_big,
                       help="Too big for this box's memory." if too_big else None):
            _download(settings, entry.key)


def _download(settings: Settings, key: str) -> None:
    from llmapp.providers.catalog import download
    from llmapp.ui.settings import set_typed

    bar = st.progress(0.0, text="Starting the download…")

    def progress(done: int, total: int | None) -> None:
        if total:
            bar.progress(min(done / total, 1.0),
                         text=f"{done / 1e6:,.0f} of {total / 1e6:,.0f} MB")

    try:
        path = download(settings, key, progress=progress)
    except LlmappError as exc:
        bar.empty()
        st.error(str(exc), icon="⚠️")
        return
    set_typed(PATH_SETTING, str(path))
    st.rerun()


def _ollama() -> None:
    from llmapp.providers.catalog import OLLAMA_URL, ollama_models
    from llmapp.ui.settings import set_typed

    names = ollama_models()
    if not names:
        return
    st.markdown(f"**Ollama on this machine** ({len(names)} models)")
    name = st.selectbox("Ollama model", names, key="_w_ollama_model")
    if st.button("Use it", key="_use_ollama"):
        set_typed("LLMAPP_PROVIDER", "openai-compatible")
        set_typed("OPENAI_COMPATIBLE_BASE_URL", f"{OLLAMA_URL}/v1")
        set_typed("OPENAI_COMPATIBLE_MODEL", name)
        st.rerun()
