"""The tables everything persists in (SQLAlchemy Core), shared by SQLite and
PostgreSQL. Times are seconds since the epoch (UTC) as floats; ids are UUID4
hex strings. A change here needs an Alembic revision in
:mod:`llmapp.storage.migrations`; ``tests/test_storage.py`` fails when the
two disagree.
"""

from __future__ import annotations

from sqlalchemy import (Column, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, Table,
                        Text)

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
    # The page it belongs to: memory, agent, simple, rag, tools (each lists its own).
    Column("page", Text, nullable=False, server_default="memory"),
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

response_cache = Table(
    "response_cache", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # "shared", or "session:<id>" / "cli": who may be served this entry.
    Column("scope", Text, nullable=False),
    # SHA-256 of what the model sees besides the question, the model and its
    # sampling settings: entries only match within one partition.
    Column("partition_key", Text, nullable=False),
    # SHA-256 of the partition and the normalized question.
    Column("exact_key", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("embedding", LargeBinary),  # float32 unit vector, all-MiniLM-L6-v2
    Column("answer", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("hits", Integer, nullable=False, server_default="0"),
    Index("ix_response_cache_exact", "scope", "exact_key"),
    Index("ix_response_cache_partition", "scope", "partition_key"),
)

protected_phrases = Table(
    "protected_phrases", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phrase", Text, nullable=False),
    Column("owner", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
)

eval_runs = Table(
    "eval_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("status", Text, nullable=False),  # complete | stopped
    Column("config", Text, nullable=False),  # JSON: RunConfig
    Column("totals", Text, nullable=False),  # JSON: summarize()
)

eval_rows = Table(
    "eval_rows", metadata,
    Column("run_id", Integer, ForeignKey("eval_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("data", Text, nullable=False),  # JSON: Row
)

feedback = Table(
    "feedback", metadata,
    # The rated reply's message id (ChatMessage.id): one row per reply.
    Column("id", Text, primary_key=True),
    Column("page", Text, nullable=False),  # where it was given: simple, rag, memory, ...
    # The stored conversation it belongs to, if any (no foreign key: feedback
    # outlives a deleted conversation, as dataset material).
    Column("conversation_id", Text),
    Column("rating", Integer),  # 1 up, -1 down, NULL: only a correction
    Column("correction", Text),  # a better answer, written by the user
    Column("context", Text, nullable=False),  # JSON: [{role, content}] before the reply
    Column("reply", Text, nullable=False),
    Column("model", Text),  # "provider:model"
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_feedback_updated_at", "updated_at"),
)
