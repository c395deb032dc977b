"""GET /admin/sync/jobs, /admin/sync/runs and /admin/outbox over real HTTP through the app."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bridge.auth.roles import Role
from bridge.core.clock import FixedClock
from bridge.store.crypto import StoreCrypto
from bridge.store.sync import OutboxRepository
from tests.api.conftest import Headers, TestClient
from tests.sync.conftest import RunnerFactory
from tests.sync.helpers import job


def test_operators_see_jobs_runs_and_alerts_without_content(
    client: TestClient,
    auth: Headers,
    make_runner: RunnerFactory,
    asc_dir: Path,
    session_factory: sessionmaker[Session],
    clock: FixedClock,
) -> None:
    text = f"jobs:\n  - {{name: asc, source: asc-export, path: {asc_dir}, schedule: 1m}}\n"
    result = make_runner().run(job(text, asc_dir))
    headers = auth(Role.INTEGRATION_ENGINEER)
    jobs = client.get("/admin/sync/jobs", headers=headers)
    assert jobs.status_code == 200
    (row,) = jobs.json()["jobs"]
    assert row["name"] == "asc"
    assert row["failing"] is False
    assert row["leaseOwner"] is None
    runs = client.get("/admin/sync/runs", params={"job": "asc"}, headers=headers).json()["runs"]
    assert [(r["status"], r["applied"]) for r in runs] == [("succeeded", result.counts.applied)]
    outbox = client.get("/admin/outbox", headers=headers)
    assert outbox.status_code == 200
    assert outbox.json() == {"lagSeconds": 0.0, "alerts": []}


def test_the_outbox_view_shows_delivery_state_not_payload(
    client: TestClient,
    auth: Headers,
    session_factory: sessionmaker[Session],
    clock: FixedClock,
) -> None:
    crypto: StoreCrypto = client.app.state.crypto
    with session_factory() as s, s.begin():
        OutboxRepository(s, crypto=crypto, clock=clock).add(
            idempotency_key="k1",
            person_id="p1",
            rule="inpatient-admitted",
            team="T02",
            org="E08000999",
            detailed=True,
            payload={"resource": {"resourceType": "Encounter", "secret": "ward 9"}},
        )
    clock.advance(seconds=30)
    body = client.get("/admin/outbox", headers=auth(Role.ADMIN)).json()
    assert body["lagSeconds"] == 30.0
    (alert,) = body["alerts"]
    assert alert["status"] == "pending"
    assert alert["team"] == "T02"
    assert "ward 9" not in str(body)


def test_social_workers_may_not_see_the_sync_view(
    client: TestClient,
    auth: Headers,
) -> None:
    for path in ("/admin/sync/jobs", "/admin/sync/runs", "/admin/outbox"):
        assert client.get(path, headers=auth(Role.SOCIAL_WORKER)).status_code == 403
        assert client.get(path).status_code == 401
