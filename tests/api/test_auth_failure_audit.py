"""Refused tokens are audited (auth.failure), and a flood of them does not flood the log."""

from __future__ import annotations

import json
from typing import Any

from bridge.auth.roles import Role
from bridge.core.clock import FixedClock

Headers = Any


def _failures(client: Any, auth: Headers) -> list[dict[str, Any]]:
    r = client.get("/audit", params={"action": "auth.failure"}, headers=auth(Role.IG_OFFICER))
    assert r.status_code == 200
    return list(r.json()["entries"])


def _detail(entry: dict[str, Any]) -> dict[str, Any]:
    d = entry["detail"]
    return json.loads(d) if isinstance(d, str) else dict(d)


def test_a_refused_token_is_audited_without_the_token(client: Any, auth: Headers) -> None:
    bad = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.c2ln"
    r = client.get("/fhir/metadata", headers={"Authorization": f"Bearer {bad}"})
    assert r.status_code == 401
    (entry,) = _failures(client, auth)
    assert entry["outcome"] == "failure"
    assert entry["actor"]["user"] == "unauthenticated"
    assert entry["client_address"] == "testclient"
    assert entry["request_id"]
    detail = _detail(entry)
    assert detail["path"] == "/fhir/metadata"
    assert "algorithm" in detail["reason"]
    assert bad not in json.dumps(entry)
    assert "mallory" not in json.dumps(entry)


def test_no_token_at_all_is_not_a_login_failure(client: Any, auth: Headers) -> None:
    assert client.get("/fhir/metadata").status_code == 401
    assert _failures(client, auth) == []


def test_a_flood_is_counted_not_written(client: Any, auth: Headers, clock: FixedClock) -> None:
    for _ in range(25):
        r = client.get("/fhir/metadata", headers={"Authorization": "Bearer not.a.jwt"})
        assert r.status_code == 401
    assert len(_failures(client, auth)) == 10
    clock.advance(seconds=60)
    client.get("/fhir/metadata", headers={"Authorization": "Bearer not.a.jwt"})
    entries = _failures(client, auth)
    assert len(entries) == 11
    assert _detail(entries[0])["suppressed"] == 15  # newest first
