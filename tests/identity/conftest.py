"""Fixtures for identity tests: a linker bound to the rolled-back session, and the HTTP
fixtures of tests/api (an app on the migrated test database, clients and tokens)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.audit.service import AuditLog
from bridge.core.clock import FixedClock
from bridge.core.crypto import Hasher
from bridge.identity import service as identity_service
from bridge.identity.scoring import Thresholds
from bridge.store.crypto import StoreCrypto
from bridge.store.identity import IdentityRepository
from bridge.store.models import AuditEntry
from bridge.store.resources import ResourceRepository, SourceRef, StoredResource
from tests.api.conftest import app, auth, client, make_app, make_client

__all__ = ["app", "auth", "client", "make_app", "make_client"]


@dataclass
class World:
    """Store, link and inspect Patients in one rolled-back transaction."""

    session: Session
    crypto: StoreCrypto
    clock: FixedClock
    audit: AuditLog
    thresholds: Thresholds

    @property
    def resources(self) -> ResourceRepository:
        return ResourceRepository(self.session, crypto=self.crypto, clock=self.clock)

    @property
    def ids(self) -> IdentityRepository:
        return IdentityRepository(self.session, crypto=self.crypto)

    def put(self, resource: dict[str, Any], system: str = "asc") -> StoredResource:
        """Store a resource as ingest would (its id derived from the source record)."""
        rid = resource.pop("id")
        kind = "person" if resource["resourceType"] == "Patient" else "record"
        return self.resources.put(resource, source=SourceRef(system, kind, rid)).stored

    def link(self, patient: StoredResource) -> identity_service.LinkOutcome:
        self.clock.advance(seconds=1)
        return identity_service.link_patient(
            self.session,
            patient=patient,
            crypto=self.crypto,
            clock=self.clock,
            audit=self.audit,
            thresholds=self.thresholds,
        )

    def add(self, resource: dict[str, Any], system: str = "asc") -> identity_service.LinkOutcome:
        """Store a Patient and link it."""
        return self.link(self.put(resource, system))

    def person_of(self, patient_id: str) -> str | None:
        return identity_service.person_of(self.session, patient_id=patient_id, crypto=self.crypto)

    def audit_actions(self) -> list[tuple[str, str, dict[str, Any]]]:
        import json

        rows = self.session.execute(
            select(AuditEntry.action, AuditEntry.outcome, AuditEntry.detail).order_by(
                AuditEntry.seq
            )
        ).all()
        return [(a, o, json.loads(d)) for a, o, d in rows]


@pytest.fixture
def world(session: Session, crypto: StoreCrypto, clock: FixedClock) -> World:
    """Identity services on the rolled-back test session."""
    return World(session, crypto, clock, AuditLog(Hasher(os.urandom(32)), clock), Thresholds())


WorldFactory = Callable[..., World]
