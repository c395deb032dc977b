"""The unified person view end to end: the world ingested through the real adapters, read
over HTTP through the ASGI app, every decision audited."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bridge.auth.roles import Role
from tests.access.world import PEOPLE, World
from tests.consent.builders import actor, consent, provision

Headers = Callable[..., dict[str, str]]


def _texts(items: list[dict[str, Any]], key: str) -> list[str]:
    return sorted(str(i.get(key)) for i in items)


def _audit(client: Any, auth: Headers, **params: str) -> list[dict[str, Any]]:
    r = client.get("/audit", params=params, headers=auth(Role.IG_OFFICER))
    assert r.status_code == 200, r.text
    return list(r.json()["entries"])


def _detail(entry: dict[str, Any]) -> dict[str, Any]:
    detail = entry["detail"]
    return json.loads(detail) if isinstance(detail, str) else dict(detail)


class TestConsented:
    def test_allocated_worker_sees_consented_health_items_and_why(
        self, client: Any, world: World, worker: Headers
    ) -> None:
        r = client.get(f"/persons/{world['consented']}/view", headers=worker())
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        view = r.json()
        assert view["access"]["decision"] == "permit"
        assert view["access"]["why"] == [
            "Shown: you are this person's allocated worker (since 1 December 2025)."
        ]
        # Health: the physical problem only; mental health is excluded by the consent and
        # sexual health is never shared.
        assert _texts(view["health"]["conditions"], "condition") == ["Essential hypertension"]
        (condition,) = view["health"]["conditions"]
        assert condition["source"] == {"system": "chs", "name": "community health"}
        assert "consent recorded 8 January 2026 by Nadia Pemberton" in condition["why"][0]
        assert _texts(view["alerts"], "alert") == ["High risk of falls"]
        # Both systems' demographics, the NHS number once.
        assert view["identity"]["nhs_number"] == PEOPLE["consented"]["nhs"]
        assert sorted(r["source"]["system"] for r in view["identity"]["records"]) == ["asc", "chs"]
        (allocation,) = view["involvement"]["allocations"]
        assert allocation["members"][0]["name"] == "Worker W1"
        withheld = {(w["section"], w["reason"]): w["count"] for w in view["withheld"]}
        assert withheld == {
            ("health", "excluded-by-consent"): 1,
            ("health", "never-shared"): 1,
        }
        text = json.dumps(view)
        assert "Depressive" not in text
        assert "Chlamydia" not in text

    def test_view_is_audited_with_a_decision_for_every_record(
        self, client: Any, auth: Headers, world: World, worker: Headers
    ) -> None:
        client.get(f"/persons/{world['consented']}/view", headers=worker())
        (entry,) = _audit(client, auth, person=world["consented"], action="person.read")
        assert entry["outcome"] == "partial"
        assert entry["actor"]["user"] == "W1"
        detail = _detail(entry)
        effects = sorted((d["resource"].split("/")[0], d["effect"]) for d in detail["decisions"])
        # 2 Patients, 1 CareTeam, 3 Conditions, 1 Flag (the Consent is input, not a record).
        assert effects == [
            ("CareTeam", "permit"),
            ("Condition", "deny"),
            ("Condition", "deny"),
            ("Condition", "permit"),
            ("Flag", "permit"),
            ("Patient", "permit"),
            ("Patient", "permit"),
        ]
        assert detail["shown"] == 5
        assert detail["withheld"] == 2
        reasons = {tuple(d["reasons"]) for d in detail["decisions"] if d["effect"] == "deny"}
        assert reasons == {("excluded-by-consent",), ("never-shared",)}

    def test_a_withdrawal_takes_effect_on_the_next_request(
        self, client: Any, world: World, worker: Headers
    ) -> None:
        before = client.get(f"/persons/{world['consented']}/view", headers=worker()).json()
        asc_patient = next(
            r["record"] for r in before["identity"]["records"] if r["source"]["system"] == "asc"
        )
        withdrawal = consent(
            root=provision("deny", actors=[actor("E08000999")], purposes=["TREAT"]),
            recorded="2026-11-20",
            patient={"reference": asc_patient},
        )
        r = client.post("/fhir/Consent", json=withdrawal, headers=worker())
        assert r.status_code == 201, r.text
        after = client.get(f"/persons/{world['consented']}/view", headers=worker()).json()
        assert after["health"]["conditions"] == []
        assert after["alerts"] == []
        reasons = {w["reason"] for w in after["withheld"]}
        assert "consent-refused" in reasons
        # Social care's own records are still there.
        assert len(after["involvement"]["allocations"]) == 1


class TestNoConsent:
    def test_identity_and_involvement_only_with_withheld_reasons(
        self, client: Any, world: World, worker: Headers
    ) -> None:
        view = client.get(f"/persons/{world['no_consent']}/view", headers=worker()).json()
        assert [r["source"]["system"] for r in view["identity"]["records"]] == ["asc"]
        assert len(view["involvement"]["allocations"]) == 1
        assert view["health"]["conditions"] == []
        withheld = {(w["section"], w["reason"]): w["count"] for w in view["withheld"]}
        assert withheld == {("identity", "no-consent"): 1, ("health", "no-consent"): 1}
        assert "Osteoarthritis" not in json.dumps(view)


class TestNoRelationship:
    def test_forbidden_with_the_reason_and_the_refusal_is_audited(
        self, client: Any, auth: Headers, world: World, worker: Headers
    ) -> None:
        r = client.get(f"/persons/{world['unrelated']}/view", headers=worker())
        assert r.status_code == 403
        body = r.json()
        assert body["code"] == "BRIDGE-0302"
        assert [x["code"] for x in body["reasons"]] == ["no-care-relationship"]
        assert "Winifred" not in r.text
        assert "diabetes" not in r.text
        (entry,) = _audit(client, auth, person=world["unrelated"], action="person.read")
        assert entry["outcome"] == "deny"
        assert _detail(entry)["decisions"] == []

    def test_unknown_person_is_404(self, client: Any, world: World, worker: Headers) -> None:
        assert client.get("/persons/no-such-person/view", headers=worker()).status_code == 404

    def test_the_other_team_sees_it(self, client: Any, world: World, worker: Headers) -> None:
        r = client.get(f"/persons/{world['unrelated']}/view", headers=worker("W9", "T9"))
        assert r.status_code == 200
        assert _texts(r.json()["health"]["conditions"], "condition") == ["Type 2 diabetes"]

    def test_a_team_member_who_is_not_the_allocated_worker_sees_it(
        self, client: Any, world: World, worker: Headers
    ) -> None:
        r = client.get(f"/persons/{world['unrelated']}/view", headers=worker("W10", "T9"))
        assert r.status_code == 200
        assert r.json()["access"]["why"][0].startswith("Shown: your team is allocated")


class TestBreakGlass:
    REASON = "Found collapsed at home by a neighbour; need health history for the ambulance"

    def test_short_reason_is_refused_with_the_rule(
        self, client: Any, world: World, worker: Headers
    ) -> None:
        r = client.post(
            f"/persons/{world['unrelated']}/break-glass",
            json={"reason": "urgent"},
            headers=worker(),
        )
        assert r.status_code == 422
        assert [x["code"] for x in r.json()["reasons"]] == ["break-glass-reason"]
        assert (
            client.get(f"/persons/{world['unrelated']}/view", headers=worker()).status_code == 403
        )

    def test_break_glass_shows_the_permitted_subset_and_lands_in_review(
        self, client: Any, auth: Headers, world: World, worker: Headers, clock: Any
    ) -> None:
        pid = world["unrelated"]
        r = client.post(
            f"/persons/{pid}/break-glass", json={"reason": self.REASON}, headers=worker()
        )
        assert r.status_code == 201, r.text
        grant = r.json()
        assert grant["review_status"] == "open"
        assert grant["expires_at"] == "2026-11-23T14:00:00+00:00"  # 4 hours from 10:00
        view = client.get(f"/persons/{pid}/view", headers=worker())
        assert view.status_code == 200
        body = view.json()
        assert body["access"]["break_glass"]["id"] == grant["id"]
        assert body["access"]["why"][0].startswith("Shown under emergency (break-glass) access")
        assert _texts(body["health"]["conditions"], "condition") == ["Type 2 diabetes"]
        # Another worker is not covered by W1's break-glass.
        assert client.get(f"/persons/{pid}/view", headers=worker("W2")).status_code == 403
        # Audited as break-glass; the IG queue holds it with the reason.
        entries = _audit(client, auth, person=pid, break_glass="true")
        assert [e["action"] for e in entries] == ["person.read", "break-glass"]
        queue = client.get("/audit/break-glass", headers=auth(Role.IG_OFFICER)).json()
        (item,) = queue["entries"]
        assert (item["user"], item["person_id"], item["reason"]) == ("W1", pid, self.REASON)
        # IG challenges it; the decision is kept and audited.
        bad = client.post(
            f"/audit/break-glass/{grant['id']}",
            json={"decision": "challenge"},
            headers=auth(Role.IG_OFFICER, user="ig.1"),
        )
        assert bad.status_code == 422  # a challenge needs a note
        done = client.post(
            f"/audit/break-glass/{grant['id']}",
            json={"decision": "challenge", "note": "Ask the team manager"},
            headers=auth(Role.IG_OFFICER, user="ig.1"),
        )
        assert done.status_code == 200, done.text
        assert (done.json()["review_status"], done.json()["reviewer"]) == ("challenged", "ig.1")
        assert client.get("/audit/break-glass", headers=auth(Role.IG_OFFICER)).json()["total"] == 0
        reviews = [_detail(e) for e in _audit(client, auth, action="break-glass", user="ig.1")]
        assert reviews == [{"review": "challenged", "break_glass_id": grant["id"], "of_user": "W1"}]
        # After the time limit the emergency access is over.
        clock.advance(seconds=4 * 3600)
        assert client.get(f"/persons/{pid}/view", headers=worker()).status_code == 403

    def test_break_glass_never_exposes_excluded_categories(
        self, client: Any, world: World, worker: Headers, clock: Any
    ) -> None:
        # W9 of T9 breaks glass on the consented person: the restricted mental health and
        # never-shared sexual health problems stay withheld.
        pid = world["consented"]
        r = client.post(
            f"/persons/{pid}/break-glass", json={"reason": self.REASON}, headers=worker("W9", "T9")
        )
        assert r.status_code == 201
        view = client.get(f"/persons/{pid}/view", headers=worker("W9", "T9")).json()
        assert _texts(view["health"]["conditions"], "condition") == ["Essential hypertension"]
        assert {w["reason"] for w in view["withheld"]} >= {"never-shared"}


class TestRestrictedDemographics:
    def test_address_and_contact_withheld_from_every_record(
        self, client: Any, world: World, worker: Headers
    ) -> None:
        view = client.get(f"/persons/{world['restricted']}/view", headers=worker()).json()
        assert view["access"]["restricted_demographics"] is True
        records = view["identity"]["records"]
        assert sorted(r["source"]["system"] for r in records) == ["asc", "chs"]
        for record in records:
            assert "address" not in record
            assert "telecom" not in record
            assert any("address is restricted" in why for why in record["why"])
        assert "Larch Close" not in json.dumps(view)
        assert "07700 900111" not in json.dumps(view)


class TestSearch:
    def _search(self, client: Any, headers: dict[str, str], q: str) -> Any:
        return client.get("/persons", params={"q": q}, headers=headers)

    def test_by_nhs_number_name_and_birth_date(
        self, client: Any, world: World, worker: Headers
    ) -> None:
        nhs = PEOPLE["consented"]["nhs"]
        for q in (
            nhs,
            f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}",
            "pilkington",
            "Maud Pilk",
            "02/05/1938",
            "maud 1938-05-02",
        ):
            r = self._search(client, worker(), q)
            assert r.status_code == 200, (q, r.text)
            assert [p["id"] for p in r.json()["persons"]] == [world["consented"]], q
        (person,) = self._search(client, worker(), nhs).json()["persons"]
        assert person["names"] == ["Maud Pilkington", "Mrs Maud Pilkington"]  # asc, chs
        assert person["birth_date"] == "1938-05-02"

    def test_only_persons_the_caller_may_know_exist(
        self, client: Any, world: World, worker: Headers
    ) -> None:
        assert self._search(client, worker(), PEOPLE["unrelated"]["nhs"]).json()["count"] == 0
        assert self._search(client, worker(), "Castleton").json()["count"] == 0
        other = self._search(client, worker("W9", "T9"), "Castleton").json()
        assert [p["id"] for p in other["persons"]] == [world["unrelated"]]

    def test_name_words_match_the_start_of_name_words(
        self, client: Any, world: World, worker: Headers
    ) -> None:
        for q, who in (
            ("Reg", "no_consent"),
            ("thr agatha", "restricted"),
            ("oddie", "no_consent"),
        ):
            ids = [p["id"] for p in self._search(client, worker(), q).json()["persons"]]
            assert ids == [world[who]], q
        assert self._search(client, worker(), "Pilkington Oddie").json()["count"] == 0

    def test_bad_nhs_number_names_the_field(
        self, client: Any, world: World, worker: Headers
    ) -> None:
        r = self._search(client, worker(), "9990000019")
        assert r.status_code == 422
        assert r.json()["field"] == "q"

    def test_search_results_are_audited_per_person(
        self, client: Any, auth: Headers, world: World, worker: Headers
    ) -> None:
        self._search(client, worker(), PEOPLE["consented"]["nhs"])
        (entry,) = _audit(client, auth, person=world["consented"], action="person.read")
        assert _detail(entry)["view"] == "search"
        assert {d["resource"].split("/")[0] for d in _detail(entry)["decisions"]} == {"Patient"}


class TestRelationshipChanges:
    def test_ending_the_allocation_ends_access_on_the_next_request(
        self,
        client: Any,
        world: World,
        worker: Headers,
        settings: Any,
        db: Any,
        clock: Any,
        tmp_path: Any,
    ) -> None:
        from adapters.base import SourceRecord
        from bridge.ingest.service import Ingestor
        from bridge.store.db import make_session_factory, transaction
        from tests.access import world as w

        assert (
            client.get(f"/persons/{world['no_consent']}/view", headers=worker()).status_code == 200
        )
        row = {
            **w._allocation(2, PEOPLE["no_consent"], "W1", "T1"),
            "end_date": "2026-11-01",
            "updated_at": "2026-11-01T09:00:00+00:00",
        }
        record = SourceRecord(
            "asc",
            "allocation",
            row["allocation_id"],
            row["updated_at"],
            row,
            json.dumps(row).encode(),
        )
        with transaction(make_session_factory(db)) as s:
            out = Ingestor.from_settings(settings, clock).apply(s, record, channel="file")
        assert out.status == "applied"
        r = client.get(f"/persons/{world['no_consent']}/view", headers=worker())
        assert r.status_code == 403
        assert [x["code"] for x in r.json()["reasons"]] == ["no-care-relationship"]


class TestRestrictedCategories:
    def test_safeguarding_withheld_from_a_social_worker(
        self, client: Any, auth: Headers, world: World, worker: Headers
    ) -> None:
        view = client.get(f"/persons/{world['restricted']}/view", headers=worker()).json()
        assert view["alerts"] == []
        withheld = {(w["section"], w["reason"]): w["count"] for w in view["withheld"]}
        assert withheld == {
            ("alerts", "restricted-category"): 1,
            ("health", "restricted-category"): 1,
        }
        assert _audit(client, auth, action="ig.alert") == []

    def test_shown_to_a_safeguarding_lead_and_ig_alerted(
        self, client: Any, auth: Headers, world: World, worker: Headers
    ) -> None:
        lead = worker(care_roles=["safeguarding_lead"])
        view = client.get(f"/persons/{world['restricted']}/view", headers=lead).json()
        (alert,) = view["alerts"]
        assert alert["alert"] == "Psychological abuse"
        assert any("IG are told" in why for why in alert["why"])
        (entry,) = _audit(client, auth, action="ig.alert")
        detail = _detail(entry)
        assert entry["person_id"] == world["restricted"]
        assert detail["categories"] == ["safeguarding"]
        assert sorted(r.split("/")[0] for r in detail["resources"]) == ["Flag", "Observation"]
        (read,) = _audit(client, auth, action="person.read", person=world["restricted"])
        assert detail["audit_seq"] == read["seq"]


class TestConsentVersions:
    def test_a_new_version_of_the_same_consent_applies_on_the_next_request(
        self, client: Any, world: World, worker: Headers
    ) -> None:
        pid = world["no_consent"]
        first = client.get(f"/persons/{pid}/view", headers=worker()).json()
        assert first["health"]["conditions"] == []
        patient = first["identity"]["records"][0]["record"]
        agreed = consent(
            root=provision("permit", actors=[actor("E08000999")], purposes=["TREAT"]),
            recorded="2026-11-20",
            patient={"reference": patient},
        )
        created = client.post("/fhir/Consent", json=agreed, headers=worker())
        assert created.status_code == 201, created.text
        shown = client.get(f"/persons/{pid}/view", headers=worker()).json()
        assert _texts(shown["health"]["conditions"], "condition") == ["Osteoarthritis of knee"]
        cid = created.json()["id"]
        withdrawn = {**agreed, "id": cid, "status": "inactive"}
        r = client.put(f"/fhir/Consent/{cid}", json=withdrawn, headers=worker())
        assert r.status_code == 200, r.text
        again = client.get(f"/persons/{pid}/view", headers=worker()).json()
        assert again["health"]["conditions"] == []
        assert {w["reason"] for w in again["withheld"]} == {"no-consent"}
