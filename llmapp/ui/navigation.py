"""The menu: every page, titled as the roadmap numbers it (:mod:`llmapp.roadmap`)."""

from __future__ import annotations

import re

import streamlit as st

from llmapp.roadmap import PRODUCTION_PIECES, STAGES

HOME = "pages/0_Roadmap.py"


def url_path(page: str) -> str:
    """A page file's address, as Streamlit gave it before the menu was built
    here (``pages/3_RAG.py`` -> ``RAG``), so links and bookmarks keep working."""
    return re.sub(r"^\d+_", "", page.rsplit("/", 1)[-1].removesuffix(".py"))


def navigation() -> dict[str, list]:
    """``st.navigation``'s sections: Home; the roadmap's stages as
    ``n · title``; then the production pieces that have a page of their own."""
    stages = [st.Page(s.page, title=f"{s.number} · {s.title}", url_path=url_path(s.page))
              for s in STAGES if s.page]
    shown = {s.page for s in STAGES}
    pieces = []
    for piece in PRODUCTION_PIECES:
        if piece.page and piece.page not in shown:
            shown.add(piece.page)
            pieces.append(st.Page(piece.page, title=piece.name, url_path=url_path(piece.page)))
    return {"": [st.Page(HOME, title="Home", url_path="roadmap", default=True)], "Roadmap": stages,
            "Production pieces": pieces}
