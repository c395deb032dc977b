"""Audit through the API: FHIR reads and writes are audited in their transaction; IG search
and export; fail closed."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle

from bridge.auth.roles import Role
from bridge.core.errors import StoreError
from bridge.store.db import make_session_factory
from tests.fixtures.fhir import patient
from tests.fixtures.schema import assert_fhir_r4

Headers = Any


def _put(client: Any, auth: Headers, rid: str = "p1", **kw: Any) -> None:
    r = client.put(f"/fhir/Patient/{rid}", json=patient(rid=rid, **kw), headers=auth(Role.ADMIN))
    assert r.status_code in (200, 201), r.text


def _entries(client: Any, auth: Headers, query: str = "") -> list[dict[str, Any]]:
    r = client.get(f"/audit{query}", headers=auth(Role.IG_OFFICER, user="ig.1"))
    assert r.status_code == 200, r.text
    return list(r.json()["entries"])


class TestAuditedFhir:
    def test_write_and_read_are_recorded_and_chained(
        self, client: Any, auth: Headers, app: FastAPI
    ) -> None:
        _put(client, auth)
        r = client.get(
            "/fhir/Patient/p1",
            headers={
                **auth(Role.HEALTH_PROFESSIONAL, user="nurse.1", org="RXX"),
                "X-Request-ID": "req-123",
            },
        )
        assert r.status_code == 200
        entries = _entries(client, auth)
        assert [e["action"] for e in entries] == ["fhir.read", "fhir.write"]
        read = entries[0]
        assert read["actor"]["user"] == "nurse.1"
        assert read["actor"]["org"] == "RXX"
        assert read["outcome"] == "permit"
        assert read["request_id"] == "req-123"
        assert '"Patient/p1/1"' in read["detail"]
        with make_session_factory(app.state.engine)() as s:
            report = app.state.audit.verify(s)
        assert report.ok
        assert report.entries == 2

    def test_history_and_vread_are_recorded(self, client: Any, auth: Headers) -> None:
        _put(client, auth)
        _put(client, auth, given="Second")
        hp = auth(Role.HEALTH_PROFESSIONAL, user="nurse.2")
        assert client.get("/fhir/Patient/p1/_history", headers=hp).status_code == 200
        assert client.get("/fhir/Patient/p1/_history/1", headers=hp).status_code == 200
        reads = _entries(client, auth, "?action=fhir.read")
        assert [e["actor"]["user"] for e in reads] == ["nurse.2", "nurse.2"]
        assert '"interaction":"vread"' in reads[0]["detail"]
        assert '"Patient/p1/2"' in reads[1]["detail"]

    def test_failed_read_leaves_no_permit_entry(self, client: Any, auth: Headers) -> None:
        r = client.get("/fhir/Patient/none", headers=auth(Role.HEALTH_PROFESSIONAL))
        assert r.status_code == 404
        assert _entries(client, auth, "?action=fhir.read") == []

    def test_fail_closed_when_the_audit_entry_cannot_be_written(
        self, client: Any, auth: Headers, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _put(client, auth)

        def broken(*_a: Any, **_k: Any) -> int:
            raise StoreError("audit log unavailable")

        monkeypatch.setattr(app.state.audit, "record", broken)
        r = client.get("/fhir/Patient/p1", headers=auth(Role.HEALTH_PROFESSIONAL))
        assert r.status_code == 503
        assert "Okonkwo" not in r.text
        assert "9990000018" not in r.text


class TestSearch:
    def test_only_ig_officers(self, client: Any, auth: Headers) -> None:
        for role in (Role.ADMIN, Role.SOCIAL_WORKER, Role.HEALTH_PROFESSIONAL):
            assert client.get("/audit", headers=auth(role)).status_code == 403

    def test_filters_and_paging(self, client: Any, auth: Headers) -> None:
        for n in range(5):
            _put(client, auth, rid=f"p{n}")
        for n in range(5):
            client.get(f"/fhir/Patient/p{n}", headers=auth(Role.HEALTH_PROFESSIONAL, user="hp"))
        first = client.get("/audit?user=hp&limit=2", headers=auth(Role.IG_OFFICER))
        body = first.json()
        assert [e["seq"] for e in body["entries"]] == [10, 9]
        second = client.get(body["next"], headers=auth(Role.IG_OFFICER)).json()
        assert [e["seq"] for e in second["entries"]] == [8, 7]
        assert len(_entries(client, auth, "?action=fhir.write")) == 5
        assert _entries(client, auth, "?outcome=deny") == []

    def test_bad_time_filter_is_a_clear_error(self, client: Any, auth: Headers) -> None:
        r = client.get("/audit?since=2026-11-01T00:00:00", headers=auth(Role.IG_OFFICER))
        assert r.status_code == 422
        assert r.json()["field"] == "since"
        r = client.get(
            "/audit?since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z",
            headers=auth(Role.IG_OFFICER),
        )
        assert r.status_code == 422
        assert r.json()["field"] == "until"


class TestExport:
    def test_fhir_audit_events_are_valid(self, client: Any, auth: Headers) -> None:
        _put(client, auth)
        client.get("/fhir/Patient/p1", headers=auth(Role.HEALTH_PROFESSIONAL, user="hp"))
        r = client.get("/audit/export?format=fhir", headers=auth(Role.IG_OFFICER))
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/fhir+json")
        bundle = r.json()
        Bundle.model_validate(bundle)
        assert bundle["total"] == 2
        events = [e["resource"] for e in bundle["entry"]]
        for event in events:
            assert_fhir_r4(event)
        read = events[1]
        assert read["action"] == "R"
        assert read["outcome"] == "0"
        assert read["subtype"][0]["code"] == "read"
        assert read["agent"][0]["who"]["identifier"]["value"] == "hp"
        assert {"reference": "Patient/p1"} in [e["what"] for e in read["entity"]]

    def test_csv_export_quotes_formula_cells(self, client: Any, auth: Headers) -> None:
        _put(client, auth)
        client.get("/fhir/Patient/p1", headers=auth(Role.HEALTH_PROFESSIONAL, user="=HYPERLINK(1)"))
        r = client.get("/audit/export?format=csv", headers=auth(Role.IG_OFFICER))
        assert r.status_code == 200
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["action"] for row in rows] == ["fhir.write", "fhir.read"]
        assert rows[1]["actor_user"] == "'=HYPERLINK(1)"
