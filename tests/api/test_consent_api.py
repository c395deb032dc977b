"""Recording consent through /fhir/Consent: validated by the consent engine, versioned,
audited, never deleted, searchable by patient for IG."""

from __future__ import annotations

from typing import Any

from bridge.auth.roles import Role
from tests.consent.builders import actor, consent, provision
from tests.fixtures.fhir import patient
from tests.fixtures.schema import assert_fhir_r4

Headers = Any


def _audit(client: Any, auth: Headers, action: str) -> list[dict[str, Any]]:
    r = client.get(f"/audit?action={action}", headers=auth(Role.IG_OFFICER))
    return list(r.json()["entries"])


class TestRecord:
    def test_social_worker_records_then_withdraws(self, client: Any, auth: Headers) -> None:
        client.put("/fhir/Patient/p1", json=patient(rid="p1"), headers=auth(Role.ADMIN))
        sw = auth(Role.SOCIAL_WORKER, user="sw.1", team="north-locality")
        created = client.post("/fhir/Consent", json=consent(id_="ignored"), headers=sw)
        assert created.status_code == 201, created.text
        body = created.json()
        cid = body["id"]
        assert cid != "ignored"  # the server assigns ids on create
        assert created.headers["location"].endswith(f"/fhir/Consent/{cid}/_history/1")
        assert_fhir_r4(body)
        withdrawn = consent(id_=cid, status="inactive")
        updated = client.put(
            f"/fhir/Consent/{cid}", json=withdrawn, headers={**sw, "If-Match": 'W/"1"'}
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["meta"]["versionId"] == "2"
        stale = client.put(
            f"/fhir/Consent/{cid}", json=withdrawn, headers={**sw, "If-Match": 'W/"1"'}
        )
        assert stale.status_code == 412
        assert [e["action"] for e in _audit(client, auth, "consent.create")] == ["consent.create"]
        (change,) = _audit(client, auth, "consent.update")
        assert change["actor"]["user"] == "sw.1"
        assert '"status":"inactive"' in change["detail"]

    def test_never_deleted(self, client: Any, auth: Headers) -> None:
        r = client.post("/fhir/Consent", json=consent(), headers=auth(Role.IG_OFFICER))
        cid = r.json()["id"]
        gone = client.delete(f"/fhir/Consent/{cid}", headers=auth(Role.ADMIN))
        assert gone.status_code == 405
        assert "withdrawal" in gone.json()["issue"][0]["diagnostics"]
        read = client.get(f"/fhir/Consent/{cid}", headers=auth(Role.IG_OFFICER))
        assert read.status_code == 200

    def test_uninterpretable_consent_is_refused_naming_the_element(
        self, client: Any, auth: Headers
    ) -> None:
        odd = provision(
            "permit",
            actors=[{**actor(), "reference": {"reference": "Organization/x"}}],
            purposes=["TREAT"],
        )
        r = client.post("/fhir/Consent", json=consent(root=odd), headers=auth(Role.SOCIAL_WORKER))
        assert r.status_code == 422
        issue = r.json()["issue"][0]
        assert issue["expression"][0].startswith("Consent.provision.actor")
        assert "cannot interpret" in issue["diagnostics"]
        assert _audit(client, auth, "consent.create") == []

    def test_invalid_fhir_is_refused(self, client: Any, auth: Headers) -> None:
        r = client.post(
            "/fhir/Consent", json=consent(dateTime="yesterday"), headers=auth(Role.SOCIAL_WORKER)
        )
        assert r.status_code == 422

    def test_roles(self, client: Any, auth: Headers) -> None:
        for role in (Role.ADMIN, Role.INTEGRATION_ENGINEER, Role.SYNC_SERVICE):
            r = client.post("/fhir/Consent", json=consent(), headers=auth(role))
            assert r.status_code == 403, role


class TestSearch:
    def test_ig_finds_a_patients_consents(self, client: Any, auth: Headers) -> None:
        for pid in ("p1", "p1", "p2"):
            c = consent()
            c["patient"] = {"reference": f"Patient/{pid}"}
            assert (
                client.post(
                    "/fhir/Consent", json=c, headers=auth(Role.HEALTH_PROFESSIONAL)
                ).status_code
                == 201
            )
        r = client.get("/fhir/Consent?patient=Patient/p1", headers=auth(Role.IG_OFFICER))
        assert r.status_code == 200
        bundle = r.json()
        assert bundle["type"] == "searchset"
        assert bundle["total"] == 2
        assert {e["resource"]["patient"]["reference"] for e in bundle["entry"]} == {"Patient/p1"}
        assert (
            client.get("/fhir/Consent?patient=p2", headers=auth(Role.IG_OFFICER)).json()["total"]
            == 1
        )
        denied = client.get("/fhir/Consent?patient=p1", headers=auth(Role.SOCIAL_WORKER))
        assert denied.status_code == 403
