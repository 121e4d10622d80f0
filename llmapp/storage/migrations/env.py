"""Alembic's entry point: migrate the connection that
:func:`llmapp.storage.database.Database.upgrade` hands over (no URL, no
alembic.ini). SQLite migrations run in batch mode, which copies a table where
SQLite's ALTER TABLE falls short.
"""

from alembic import context

from llmapp.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
