"""Fixtures for sync tests: an ingestor with identity linking, a runner factory, sample files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bridge.audit.service import AuditLog, audit_log_from_settings
from bridge.core.clock import FixedClock
from bridge.core.settings import Settings
from bridge.identity import service as identity_service
from bridge.ingest.service import Ingestor, Linking
from bridge.mapping import Mappings
from bridge.store.crypto import StoreCrypto
from bridge.sync.runner import JobRunner

# The HTTP fixtures, for the operator view's tests (tests/sync/test_admin_api.py).
from tests.api.conftest import app, auth, client, make_app, make_client  # noqa: F401
from tests.sync.helpers import SAMPLE

RunnerFactory = Callable[..., JobRunner]


@pytest.fixture(scope="session")
def mappings() -> Mappings:
    """The shipped mapping specs, compiled once."""
    return Mappings.load(None)


@pytest.fixture
def audit(settings: Settings, clock: FixedClock) -> AuditLog:
    """The audit log with this test's key."""
    return audit_log_from_settings(settings, clock)


@pytest.fixture
def ingestor(
    mappings: Mappings, crypto: StoreCrypto, clock: FixedClock, audit: AuditLog, settings: Settings
) -> Ingestor:
    """An ingestor that links identities, as every product edge does."""
    return Ingestor(
        mappings=mappings,
        crypto=crypto,
        clock=clock,
        linking=Linking(
            audit=audit, thresholds=identity_service.thresholds_from_settings(settings)
        ),
    )


@pytest.fixture
def make_runner(
    session_factory: sessionmaker[Session], ingestor: Ingestor, audit: AuditLog, clock: FixedClock
) -> RunnerFactory:
    """Build job runners on the committing test database (owner ``test-worker`` unless given)."""

    def build(**kwargs: Any) -> JobRunner:
        kwargs.setdefault("owner", "test-worker")
        kwargs.setdefault("clock", clock)
        return JobRunner(session_factory, ingestor=ingestor, audit=audit, **kwargs)

    return build


@pytest.fixture
def asc_dir(tmp_path: Path) -> Path:
    """A copy of the sample social care export (tests may change it)."""
    target = tmp_path / "asc"
    shutil.copytree(SAMPLE / "asc", target)
    return target


@pytest.fixture
def chs_dir(tmp_path: Path) -> Path:
    """A copy of the sample community health files (HL7 batch and extracts)."""
    target = tmp_path / "chs"
    shutil.copytree(SAMPLE / "chs", target)
    return target
