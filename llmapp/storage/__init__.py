"""Everything the app persists, on SQLAlchemy: SQLite by default, PostgreSQL
when ``LLMAPP_DATABASE_URL`` names one.

- :mod:`llmapp.storage.urls`: database URLs, read and masked for people.
- :mod:`llmapp.storage.schema`: the tables (SQLAlchemy Core).
- :mod:`llmapp.storage.database`: :class:`Database`, an engine with errors a
  user can act on, write transactions that serialize, and migrations run at
  open.
- :mod:`llmapp.storage.migrations`: the Alembic revisions.

Stores built on it (:mod:`llmapp.conversations`) hold no SQL dialect of
their own: the same code runs on both databases.
"""

from llmapp.storage.database import Database, StoreError
from llmapp.storage.urls import database_url, mask_url, sqlite_file

__all__ = ["Database", "StoreError", "database_url", "mask_url", "sqlite_file"]
