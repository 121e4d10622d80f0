"""Stage 3's widgets: ingestion with progress, the collection manager,
retrieval settings, and answers with their sources."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import streamlit as st

from llmapp import config
from llmapp.chat import ChatMessage, ChatStore
from llmapp.errors import LlmappError
from llmapp.providers import GenerationParams
from llmapp.rag import IngestError, RagError
from llmapp.rag.answer import ANSWER_PARAMS, EXTRACTIVE_MODEL, RetrievalSettings, start_answer
from llmapp.rag.chunking import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PARENT_SIZE,
    STRATEGIES,
    ChunkSettings,
)
from llmapp.rag.embeddings import LocalEmbeddings, get_embedder
from llmapp.rag.extractive import FLOOR
from llmapp.rag.loaders import SUPPORTED, display_name
from llmapp.rag.store import DEFAULT_COLLECTION, RETRIEVERS, KnowledgeBase, make_client
from llmapp.settings import Settings
from llmapp.ui.chat import edit_earlier, render_body, reply_controls, stream_reply

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "handbook"
NEW = "➕ new collection…"


@st.cache_resource(show_spinner="Opening the vector store…")
def _client(path: str, host: str, port: int, ssl: bool, headers_hash: str, _settings: Settings):
    return make_client(_settings)


def _open(settings: Settings) -> KnowledgeBase:
    headers = settings.chroma_headers.get_secret_value() if settings.chroma_headers else ""
    client = _client(settings.chroma_path, settings.chroma_host, settings.chroma_port,
                     settings.chroma_ssl, hashlib.sha256(headers.encode()).hexdigest(), settings)
    embedder = LocalEmbeddings() if settings.embedder == "local" else get_embedder(settings)
    return KnowledgeBase(client, embedder)


def knowledge_base(settings: Settings) -> KnowledgeBase | None:
    """The knowledge base for these settings, or None with the error shown.
    The Chroma client is shared by sessions; an OpenAI embedder (which may
    carry a session's key) is built per session."""
    try:
        return _open(settings)
    except LlmappError as exc:
        st.error(str(exc), icon="🗄️")
        return None


def knowledge_base_quiet(settings: Settings) -> KnowledgeBase | None:
    """The same, or None without a message (for pages where it is optional,
    such as the agent's knowledge-base tool)."""
    try:
        return _open(settings)
    except LlmappError:
        return None


def _chunk_settings() -> ChunkSettings | None:
    c1, c2, c3 = st.columns(3)
    strategy = c1.selectbox("Chunking", STRATEGIES, key="rag_chunking",
                            help="recursive: windows with overlap; sentence: one per sentence; "
                                 "parent-child: search small chunks, read their parent; "
                                 "markdown: split at headers.")
    size = c2.number_input("Chunk size (characters)", 50, 20_000, DEFAULT_CHUNK_SIZE, 50,
                           key="rag_chunk_size", disabled=strategy == "sentence")
    overlap = c3.number_input("Overlap (characters)", 0, 10_000, DEFAULT_CHUNK_OVERLAP, 10,
                              key="rag_chunk_overlap", disabled=strategy == "sentence")
    parent = DEFAULT_PARENT_SIZE
    if strategy == "parent-child":
        parent = st.number_input("Parent size (characters)", 100, 20_000, DEFAULT_PARENT_SIZE,
                                 100, key="rag_parent_size")
    try:
        return ChunkSettings(strategy, int(size), int(overlap), int(parent))
    except LlmappError as exc:
        st.error(str(exc))
        return None


def ingest_panel(kb: KnowledgeBase) -> str:
    """Pick or name a collection, upload files or load the sample handbook,
    and ingest with a progress bar and a result per file. Returns the
    collection to ask."""
    existing = [c.name for c in kb.collections()]
    # Always drawn, empty after the first visit, so the widgets below keep
    # their place (and their state) across reruns.
    cold_start = st.container()
    if not existing and not st.session_state.get("_rag_cold_start_done"):
        # A fresh disk (a first run, or Community Cloud after a sleep or a
        # redeploy): load the sample handbook once per session, so the page
        # has something to ask.
        st.session_state["_rag_cold_start_done"] = True
        with cold_start:
            st.info("No collection yet: loading the sample handbook into "
                    f"**{DEFAULT_COLLECTION}**.", icon="📚")
            _ingest(kb, DEFAULT_COLLECTION, _sample_files(), ChunkSettings())
        st.session_state.pop("_rag_results", None)  # shown just now, not again below
        existing = [c.name for c in kb.collections()]
    options = existing + [NEW]
    pending = st.session_state.pop("_rag_select", None)
    if pending in existing:
        st.session_state["rag_collection"] = pending
    elif st.session_state.get("rag_collection") not in options:
        st.session_state["rag_collection"] = (
            DEFAULT_COLLECTION if DEFAULT_COLLECTION in existing else options[0])
    choice = st.selectbox("Collection", options, key="rag_collection")
    name = choice
    if choice.startswith("➕"):
        name = st.text_input("New collection name", DEFAULT_COLLECTION, key="rag_new_name")
    shown = st.session_state.pop("_rag_results", [])
    with st.expander("Add documents", expanded=not existing or bool(shown)):
        chunking = _chunk_settings()
        files = st.file_uploader("Upload files", type=[s[1:] for s in SUPPORTED],
                                 accept_multiple_files=True, key="rag_upload")
        left, right = st.columns(2)
        upload = left.button("Ingest uploads", disabled=not files or chunking is None,
                             width="stretch")
        sample = right.button("Ingest the sample handbook", disabled=chunking is None,
                              width="stretch", help=f"{len(list(SAMPLE.glob('*')))} files in "
                                                    "data/handbook: .md, .txt and .pdf")
        for level, text in shown:
            {"ok": st.success, "notice": st.warning}.get(level, st.error)(text, icon="📄")
        batch = []
        if upload and files:
            batch = [(f.name, f.getvalue()) for f in files]
        elif sample:
            batch = _sample_files()
        if batch and chunking is not None:
            _ingest(kb, name, batch, chunking)
            if choice == NEW:  # show the new collection as the selected one
                st.session_state["_rag_select"] = name
                st.rerun()
    return name


def sample_collection(kb: KnowledgeBase) -> str | None:
    """The sample handbook's collection, ingested now (with a progress bar)
    when it is missing; None if that failed (the error is shown)."""
    if DEFAULT_COLLECTION not in [c.name for c in kb.collections()]:
        st.info(f"Loading the sample handbook into **{DEFAULT_COLLECTION}** first.", icon="📚")
        _ingest(kb, DEFAULT_COLLECTION, _sample_files(), ChunkSettings())
        st.session_state.pop("_rag_results", None)
        if DEFAULT_COLLECTION not in [c.name for c in kb.collections()]:
            return None
    return DEFAULT_COLLECTION


def _sample_files() -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(SAMPLE.iterdir())
            if p.is_file() and p.suffix in SUPPORTED]


def _each(outcomes, progress, total: int):
    """Pass ``(source, result)`` pairs through, moving the progress bar."""
    for i, (source, result) in enumerate(outcomes, start=1):
        progress.progress(i / total, text=f"{source} ({i} of {total})")
        yield source, result


def _ingest(kb: KnowledgeBase, name: str, batch: list[tuple[str, bytes]],
            chunking: ChunkSettings) -> None:
    progress = st.progress(0.0, text=f"Embedding {len(batch)} files…")
    results = st.session_state["_rag_results"] = []
    try:
        outcomes = list(_each(kb.ingest_many(name, batch, chunking), progress, len(batch)))
    except (IngestError, RagError) as exc:  # the collection itself (another embedder)
        results.append(("error", str(exc)))
        st.error(str(exc), icon="📄")
        return
    for source, result in outcomes:  # sources come escaped (display_name)
        if isinstance(result, Exception):
            text = display_name(str(result))  # one line, whatever the parser said
            results.append(("error", text))
            st.error(text, icon="📄")
            continue
        verb = {"added": "added", "replaced": "replaced (it had changed)",
                "unchanged": "unchanged, nothing added"}[result.status]
        text = f"{source}: {verb}, {result.chunks} chunks ({result.seconds:.1f} s)"
        if result.notice:
            text += f". Note: {result.notice}."
        results.append(("notice" if result.notice else "ok", text))
        (st.warning if result.notice else st.success)(text, icon="📄")
    progress.progress(1.0, text=f"Done: {len(batch)} files")


def collection_manager(kb: KnowledgeBase, name: str) -> list[str]:
    """Counts, documents with delete buttons, and reset. Returns the
    collection's document names."""
    infos = {c.name: c for c in kb.collections()}
    with st.sidebar.expander("Collections", expanded=False):
        if not infos:
            st.caption("None yet.")
        for info in infos.values():
            st.markdown(f"**{info.name}** · {info.documents} documents, {info.chunks} chunks  \n"
                        f"<small>{info.embedder} · {info.chunking}</small>",
                        unsafe_allow_html=True)
    if name not in infos:
        return []
    documents = kb.documents(name)
    with st.sidebar.expander(f"Documents in {name}", expanded=False):
        for source, count in documents.items():
            cols = st.columns([4, 1])
            cols[0].caption(f"{source} · {count} chunks")
            if cols[1].button("🗑", key=f"del_{name}_{source}", help=f"Delete {source}"):
                kb.delete_document(name, source)
                st.rerun()
        sure = st.checkbox(f"Yes, delete all of {name}", key=f"reset_{name}")
        if st.button("Reset collection", disabled=not sure, type="primary"):
            kb.reset(name)
            st.rerun()
    return list(documents)


_ANSWER_LABELS = {"auto": "auto (quoted for small models)", "extractive": "quoted from the sources",
                  "generative": "written by the model"}


def answer_mode_control(settings: Settings) -> Settings:
    """A sidebar select for how answers are made (``LLMAPP_RAG_ANSWER``),
    and a note saying which applies and why; returns the settings with the
    choice made here."""
    from llmapp.rag.extractive import answer_mode

    chosen = st.sidebar.selectbox(
        "Answer", config.RAG_ANSWER_MODES, index=config.RAG_ANSWER_MODES.index(settings.rag_answer),
        format_func=_ANSWER_LABELS.get, key="rag_answer",
        help="Quoted: the sentences of the retrieved chunks that best match the question (by "
             "meaning and by words), each cited; "
             "no model writes them, so they cannot contradict the sources. Written: the model "
             "answers from the chunks, which takes a capable model.")
    settings = dataclasses.replace(settings, rag_answer=chosen)
    mode, reason = answer_mode(settings)
    if mode == "extractive":
        st.info(f"Answers are **quoted** from your documents: {reason}. The sentence of the "
                "retrieved chunks that best matches the question, by meaning and by words, is "
                "quoted and cited, or the answer says the documents do not say. Pick *written "
                "by the model* in the sidebar to see the model try.",
                icon="📌")
    return settings


def retrieval_controls(documents: list[str]) -> RetrievalSettings:
    """Retriever, k, MMR, a cap per document, score threshold and a source
    filter, in the sidebar."""
    bar = st.sidebar
    bar.subheader("Retrieval")
    retriever = bar.selectbox(
        "Retriever", RETRIEVERS, key="rag_retriever",
        format_func={"hybrid": "hybrid (embeddings + BM25)", "dense": "embeddings only",
                     "lexical": "BM25 only"}.get,
        help="Hybrid ranks by meaning (embeddings) and by exact words (BM25), and fuses the "
             "two rankings (reciprocal rank fusion): names of functions and options are "
             "found even when embeddings miss them.")
    k = bar.slider("Chunks to retrieve (k)", 1, 10, 4, key="rag_k")
    cap = bar.slider("At most per document", 0, 10, 0, key="rag_cap",
                     help="0: no limit. A cap keeps one long document from crowding out the "
                          "rest.")
    mmr = bar.toggle("Max marginal relevance", key="rag_mmr",
                     help="Prefer relevant chunks that differ from each other.")
    threshold = bar.slider("Minimum similarity", 0.0, 1.0, 0.0, 0.05, key="rag_threshold",
                           help="Cosine similarity; 0 keeps every retrieved chunk.")
    sources = bar.multiselect("Only these documents", documents, key="rag_sources")
    return RetrievalSettings(k=k, mmr=mmr, score_threshold=threshold or None,
                             sources=tuple(sources) or None, retriever=retriever,
                             max_per_source=cap or None)


FOUND_BY = {"dense": "found by embeddings", "lexical": "found by BM25",
            "both": "found by both"}


def render_sources(message: ChatMessage) -> None:
    """The numbered sources of an answer, each expandable, marked cited,
    matched by llmapp, or unused."""
    if not message.sources:
        return
    matched = any(s["cited"] == "matched" for s in message.sources)
    cited = any(s["cited"] in ("model", "quoted") for s in message.sources)
    quoting = message.stats is not None and message.stats.model == EXTRACTIVE_MODEL
    if quoting and not cited:
        st.caption(f"No sentence of these chunks was close enough to the question (similarity "
                   f"below {FLOOR}), so nothing was quoted.")
    elif matched:
        st.caption("The model cited no source; llmapp matched its sentences to the closest "
                   "sources by embedding similarity.")
    elif not cited:
        st.caption("No source was cited or matched: check the answer against them.")
    for s in message.sources:
        page = f", page {s['page']}" if s["page"] else ""
        mark = {"model": "✅ cited", "matched": "🔗 matched", "quoted": "📌 quoted",
                "": "not used"}[s["cited"]]
        found = FOUND_BY.get(s.get("found_by", "dense"), "")
        signs = s.get("injection") or []
        warn = " · ⚠️ instructions to the model" if signs else ""
        with st.expander(f"[{s['n']}] {s['source']}{page}, chunk {s['index']} · "
                         f"similarity {s['score']:.2f} · {found} · {mark}{warn}"):
            if signs:
                st.warning(f"This chunk carries instructions to the model ({', '.join(signs)}). "
                           "It was fenced in the prompt as data, and the model was told not "
                           "to follow it.", icon="🛡️")
            if s.get("section"):
                st.caption(s["section"])
            st.text(s["text"])


def render_rag_chat(store: ChatStore) -> None:
    """The transcript with each answer's sources; Retry under a failed
    answer, the edit box under a blocked question, "Ask the model instead"
    under a cached answer."""
    from llmapp.ui.feedback import feedback_row, saved_feedback

    saved = saved_feedback(store)
    for message in store:
        with st.chat_message(message.role):
            render_body(message)
            render_sources(message)
            edit_earlier(store, message)
            feedback_row(store, message, saved.get(message.id))
    reply_controls(store)


def answer(kb: KnowledgeBase, name: str, store: ChatStore, settings: Settings,
           retrieval: RetrievalSettings, params: GenerationParams = ANSWER_PARAMS) -> None:
    """Retrieve, stream a cited answer, show its sources, and store it."""
    from llmapp.ui.cache import cache_use
    from llmapp.ui.safety import page_guard

    stream_reply(store, lambda: start_answer(kb, name, store, settings, params, retrieval,
                                             cache=cache_use(settings), guard=page_guard(settings)),
                 "Retrieving…", after=render_sources)
    reply_controls(store)
