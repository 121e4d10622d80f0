"""The menu: every page in the sidebar, titled as the roadmap numbers it
(:mod:`llmapp.roadmap`), the production pieces grouped after the stages.

Streamlit's own menu names pages after their files, without the stage
numbers. ``st.navigation`` could title them, but Streamlit runs any app with
a ``pages/`` folder as a v1 multipage app, and a page opened by its address
then never runs the entry script that would call it (found in Chromium:
``/Simple_Prompt`` showed the unnumbered menu). So the built-in menu is off
(``client.showSidebarNavigation = false``) and this one is drawn by
:func:`llmapp.ui.sidebar` on every page.
"""

from __future__ import annotations

import streamlit as st

from llmapp.roadmap import PRODUCTION_PIECES, STAGES

HOME = "Home.py"


def menu() -> None:
    """Links to Home, the numbered stages, and the production pieces that
    have a page of their own, at the top of the sidebar.

    A page run as the entry script itself (AppTest runs pages so) cannot
    link to the others, whose paths are relative to ``Home.py``: it draws no
    menu. ``tests/pages/test_home.py`` checks every link from ``Home.py``."""
    from streamlit.errors import StreamlitAPIException

    try:
        _links(st.sidebar.container())
    except StreamlitAPIException:
        pass


def _links(bar) -> None:
    bar.page_link(HOME, label="Home", icon="🧭")
    bar.caption("The roadmap")
    shown = set()
    for stage in STAGES:
        if stage.page:
            shown.add(stage.page)
            bar.page_link(stage.page, label=f"{stage.number} · {stage.title}")
    bar.caption("Production pieces")
    for piece in PRODUCTION_PIECES:
        if piece.page and piece.page not in shown:
            shown.add(piece.page)
            bar.page_link(piece.page, label=piece.name)
    bar.divider()
