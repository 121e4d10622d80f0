"""Alembic migrations of llmapp's database (``alembic`` reads ``env.py`` and
``versions/`` here). Run by :meth:`llmapp.storage.Database.upgrade`, at
every open and by ``llmapp db upgrade``; there is no ``alembic.ini``.

To add a revision: change :mod:`llmapp.storage.schema`, then add a file to
``versions/`` whose ``down_revision`` is the current head.
"""
