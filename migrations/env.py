"""Alembic environment: runs against the URL carebridge passes in (never a hard-coded one)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from bridge.store.db import make_engine
from bridge.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate using the connection handed over by bridge.store.migrate, or the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("carebridge migrations run online only")
run_migrations_online()
