"""The migrated schema matches the models on the database under test."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect

from bridge.store.migrate import current_revision, pending_diff
from bridge.store.models import Base


def test_no_pending_autogenerate_diff(engine: Engine) -> None:
    assert pending_diff(engine) == []


def test_at_head_with_every_table(engine: Engine) -> None:
    assert current_revision(engine) is not None
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_sqlite_is_durable(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas do not apply to PostgreSQL")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        # 2 = FULL: every commit is fsynced before it returns.
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
