"""The identity revision upgrades and downgrades cleanly on its own."""
# (The whole chain's agreement with the models is tested in tests/store.)

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from bridge.store.db import make_engine
from bridge.store.migrate import current_revision, upgrade

TABLES = {"identity_link", "identity_match", "identity_match_key", "identity_merge"}


def test_0006_up_and_down(tmp_path: Path) -> None:
    from alembic import command

    from bridge.store.migrate import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        upgrade(engine, "0005")
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(engine, "0006")
        assert current_revision(engine) == "0006"
        assert TABLES | {"identity_subject"} <= set(inspect(engine).get_table_names())
        cfg = alembic_config(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
        assert current_revision(engine) == "0005"
        assert not TABLES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
