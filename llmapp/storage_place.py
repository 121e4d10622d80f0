"""Where the app keeps its data, and whether that place outlives the machine.

Streamlit Community Cloud runs the app from a checkout under ``/mount/src``
on a disk that is not kept: sleep (after 12 hours without traffic), reboot
and redeploy wipe it, and with it ``.llmapp/`` (Chroma and the conversations).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from llmapp.settings import Settings
from llmapp.storage.urls import sqlite_file

CLOUD_SOURCE_ROOT = "/mount/src"
"""Where Community Cloud checks out the app's repository."""


@dataclass(frozen=True)
class LocalPlace:
    """Data kept on this machine's disk.

    Attributes:
        where: the path, for people.
        setting: the setting that moves it elsewhere.
        on_cloud: True when this process runs on Community Cloud.
    """

    where: str
    setting: str
    on_cloud: bool


def on_community_cloud(cwd: str | None = None) -> bool:
    """True when the app runs from Community Cloud's checkout folder."""
    return Path(cwd or os.getcwd()).resolve().as_posix().startswith(CLOUD_SOURCE_ROOT)


def local_storage(settings: Settings, what: str) -> LocalPlace | None:
    """``what`` is ``"documents"`` (Chroma) or ``"conversations"`` (the
    database): a :class:`LocalPlace` when it is kept on this machine's disk,
    None when it is kept on a server."""
    if what == "documents":
        if settings.chroma_host:
            return None
        return LocalPlace(settings.chroma_path, "CHROMA_HOST", on_community_cloud())
    path = sqlite_file(settings.database_url.get_secret_value())
    if path is None:
        return None
    return LocalPlace(str(path), "LLMAPP_DATABASE_URL", on_community_cloud())
