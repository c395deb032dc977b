"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when
CAREBRIDGE_TEST_DATABASE_URL is set), keys, a fixed clock and settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bridge.core.clock import FixedClock
from bridge.core.crypto import Hasher, KeyRing
from bridge.core.settings import Settings
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_engine, make_session_factory
from bridge.store.migrate import upgrade
from bridge.store.models import Base

REPO_ROOT = Path(__file__).resolve().parent.parent
PG_ENV = "CAREBRIDGE_TEST_DATABASE_URL"


def pytest_report_header() -> str:
    url = os.environ.get(PG_ENV)
    return f"carebridge test database: {'PostgreSQL ' + url if url else 'SQLite (temporary file)'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, empty database for this test run: its URL."""
    admin_url = os.environ.get(PG_ENV)
    if not admin_url:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    name = f"carebridge_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The test database, migrated with Alembic (as production is)."""
    eng = (
        make_engine(database_url, pool_size=25, max_overflow=5)
        if "postgresql" in (database_url)
        else make_engine(database_url)
    )
    upgrade(eng)
    yield eng
    eng.dispose()


def _wipe(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(text(f"DELETE FROM {t}"))


@pytest.fixture
def db(engine: Engine) -> Iterator[Engine]:
    """The migrated engine for tests that commit; every table is emptied afterwards."""
    _wipe(engine)
    yield engine
    _wipe(engine)


@pytest.fixture
def session_factory(db: Engine) -> sessionmaker[Session]:
    """Session factory on the committing test database."""
    return make_session_factory(db)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    with engine.connect() as conn:
        tx = conn.begin()
        s = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield s
        finally:
            s.close()
            tx.rollback()


@pytest.fixture(scope="session")
def crypto() -> StoreCrypto:
    """Keys made for this test run (never written to the repository)."""
    return StoreCrypto(KeyRing.generate(development=True), Hasher(os.urandom(32)))


@pytest.fixture
def clock() -> FixedClock:
    """A fixed clock at 2026-11-23 10:00 UTC."""
    return FixedClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Development settings with keys under a temporary DATA_DIR and the test database."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path / "var", database_url=database_url
    )
