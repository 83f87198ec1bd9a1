"""Alembic migrations of the store's schema (run by :mod:`legato.store.database`)."""
