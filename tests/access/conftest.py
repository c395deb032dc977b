"""Fixtures for access tests: the hand-made world loaded through the real ingest, and the
HTTP fixtures of tests/api (an app on the migrated test database, clients and tokens)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bridge.auth.roles import Role
from bridge.core.clock import FixedClock
from bridge.core.settings import Settings
from tests.access import world as world_module
from tests.api.conftest import app, auth, client, make_app, make_client

__all__ = ["app", "auth", "client", "make_app", "make_client"]

Headers = Callable[..., dict[str, str]]


@pytest.fixture
def world(tmp_path: Path, settings: Settings, db: Engine, clock: FixedClock) -> world_module.World:
    """The four people of tests/access/world.py, ingested; returns their person ids."""
    return world_module.load(tmp_path / "sources", settings, db, clock)


@pytest.fixture
def worker(auth: Headers) -> Callable[..., dict[str, str]]:
    """Headers for a social worker of the council: W1 of team T1 unless told otherwise."""

    def headers(user: str = "W1", team: str = "T1", **claims: Any) -> dict[str, str]:
        return auth(Role.SOCIAL_WORKER, user=user, team=team, org=world_module.COUNCIL, **claims)

    return headers
