"""The sync revision upgrades to a schema equal to the models, and downgrades."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect

from bridge.store.db import make_engine
from bridge.store.migrate import alembic_config, current_revision, pending_diff, upgrade

TABLES = {"sync_job", "sync_run", "sync_checkpoint", "outbox"}


def test_0008_up_and_down(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        upgrade(engine, "0007")
        assert TABLES.isdisjoint(inspect(engine).get_table_names())
        upgrade(engine, "0008")
        assert TABLES <= set(inspect(engine).get_table_names())
        upgrade(engine)
        assert pending_diff(engine) == []
        cfg = alembic_config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0007")
        assert current_revision(engine) == "0007"
        assert TABLES.isdisjoint(inspect(engine).get_table_names())
    finally:
        engine.dispose()
