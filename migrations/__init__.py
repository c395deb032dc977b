"""Alembic migrations (shipped with the package so `carebridge db upgrade` works anywhere)."""
