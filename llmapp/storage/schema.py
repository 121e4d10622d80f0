"""The tables everything persists in (SQLAlchemy Core), shared by SQLite and
PostgreSQL. Times are seconds since the epoch (UTC) as floats; ids are UUID4
hex strings. A change here needs an Alembic revision in
:mod:`llmapp.storage.migrations`; ``tests/test_storage.py`` fails when the
two disagree.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, MetaData, Table, Text

metadata = MetaData()

conversations = Table(
    "conversations", metadata,
    Column("id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # Summary memory's running summary and how many messages it folds in.
    Column("summary", Text, nullable=False, server_default=""),
    Column("summarized", Integer, nullable=False, server_default="0"),
    Index("ix_conversations_updated_at", "updated_at"),
)

messages = Table(
    "messages", metadata,
    Column("conversation_id", Text, ForeignKey("conversations.id", ondelete="CASCADE"),
           primary_key=True),
    # Position in the conversation, from 0; allocated under the conversation's row lock.
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("role", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("stats", Text),  # JSON: the reply's ReplyStats
    Column("extra", Text),  # JSON: {"sources": [...], "steps": [...]}
    Column("created_at", Float, nullable=False),
)
