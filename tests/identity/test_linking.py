"""Linking on ingest: NHS number first, then scored demographics with thresholds."""

from __future__ import annotations

import pytest

from bridge.core.settings import Settings
from bridge.fhir.validate import to_json_dict, validate
from bridge.identity import service as identity_service
from bridge.identity.scoring import Thresholds
from bridge.store.resources import PutResult, SourceRef
from tests.identity.builders import CHS_SYSTEM, INVALID_NHS, NHS, person
from tests.identity.conftest import World


def chs(rid: str, **kw: object) -> dict[str, object]:
    return person(rid, local_system=CHS_SYSTEM, **kw)  # type: ignore[arg-type]


class TestNhsNumber:
    def test_same_valid_number_links_one_person(self, world: World) -> None:
        first = world.add(person("ASC1", nhs_number=NHS[0]))
        second = world.add(chs("CHS1", nhs_number=NHS[0], family="Entirely-Different"), "chs")
        assert first.action == "created"
        assert (second.action, second.rule) == ("linked", "nhs-number")
        assert second.person_id == first.person_id
        assert second.evidence["decision"] == "nhs-number"

        person_res = world.resources.read("Person", first.person_id or "")
        assert person_res.content is not None
        refs = [link["target"]["reference"] for link in person_res.content["link"]]
        assert refs == [f"Patient/{first.patient_id}", f"Patient/{second.patient_id}"]
        assert {link["assurance"] for link in person_res.content["link"]} == {"level3"}
        # The Patient rows point at the Person (what the person view reads).
        for pid in (first.patient_id, second.patient_id):
            assert world.resources.read("Patient", pid).person_id == first.person_id

    def test_a_number_failing_its_check_digit_is_not_used(self, world: World) -> None:
        first = world.add(person("ASC1", invalid_nhs_number=INVALID_NHS, family="Abernethy"))
        second = world.add(chs("CHS1", invalid_nhs_number=INVALID_NHS, family="Okafor"), "chs")
        assert second.person_id != first.person_id

    def test_different_valid_numbers_are_never_linked(self, world: World) -> None:
        first = world.add(person("ASC1", nhs_number=NHS[0]))
        second = world.add(chs("CHS1", nhs_number=NHS[1]), "chs")
        assert second.person_id != first.person_id
        assert second.queued == ()

    def test_relinking_an_unchanged_patient_changes_nothing(self, world: World) -> None:
        first = world.add(person("ASC1", nhs_number=NHS[0]))
        world.add(chs("CHS1", nhs_number=NHS[0]), "chs")
        again = world.link(world.resources.read("Patient", first.patient_id))
        assert (again.action, again.person_id) == ("unchanged", first.person_id)
        assert len(world.ids.link_history(first.patient_id)) == 1


class TestScore:
    def test_auto_link_at_or_above_the_threshold(self, world: World) -> None:
        first = world.add(chs("CHS1", given="Margaret", nhs_number=NHS[0]), "chs")
        second = world.add(person("ASC1", given="Peggy"))
        assert (second.action, second.rule) == ("linked", "score")
        assert second.person_id == first.person_id
        assert second.score is not None
        assert second.score >= world.thresholds.auto
        fields = {f["field"]: f for f in second.evidence["fields"]}
        assert fields["given_name"]["agreement"] == "nickname"
        assert fields["birth_date"]["agreement"] == "exact"
        link = world.ids.active_link(second.patient_id)
        assert link is not None
        assert (link.rule, link.score) == ("score", second.score)
        person_res = world.resources.read("Person", first.person_id or "").content
        assert person_res is not None
        assert person_res["link"][1]["assurance"] == "level2"

    def test_between_the_thresholds_the_pair_is_queued(self, world: World) -> None:
        first = world.add(person("ASC1", given="Philippa"))
        second = world.add(chs("CHS1", given="Margaret"), "chs")
        assert second.action == "created"
        assert second.person_id != first.person_id
        assert len(second.queued) == 1
        cand = world.ids.get_candidate(second.queued[0])
        assert cand is not None
        assert cand.status == "open"
        assert {cand.patient_a, cand.patient_b} == {first.patient_id, second.patient_id}
        assert world.thresholds.review <= cand.score < world.thresholds.auto
        assert cand.evidence["summary"].startswith("needs review")
        # Linking again refreshes the pair rather than queueing it twice.
        again = world.link(world.resources.read("Patient", second.patient_id))
        assert again.queued == ()
        assert world.ids.count_candidates("open") == 1

    def test_below_the_review_threshold_nothing_happens(self, world: World) -> None:
        first = world.add(person("ASC1"))
        second = world.add(
            chs("CHS1", given="Chidi", family="Okafor", gender="male", postcode="BD3 9QQ"), "chs"
        )
        assert second.person_id != first.person_id
        assert second.queued == ()

    def test_thresholds_come_from_settings(self) -> None:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, match_auto_threshold=20, match_review_threshold=3
        )
        assert identity_service.thresholds_from_settings(settings) == Thresholds(20, 3)

    def test_settings_refuse_a_review_threshold_above_auto(self) -> None:
        with pytest.raises(ValueError, match="match_review_threshold"):
            Settings(  # type: ignore[call-arg]
                _env_file=None, match_auto_threshold=5, match_review_threshold=6
            )

    def test_a_lower_auto_threshold_links_what_was_queued(self, world: World) -> None:
        world.thresholds = Thresholds(auto=9.0, review=5.0)
        first = world.add(person("ASC1", given="Philippa"))
        second = world.add(chs("CHS1", given="Margaret"), "chs")
        assert second.person_id == first.person_id

    def test_two_persons_above_the_threshold_go_to_review(self, world: World) -> None:
        world.add(person("ASC1", nhs_number=NHS[0]))
        world.add(chs("CHS1", nhs_number=NHS[1]), "chs")
        third = world.add(person("ASC2"))
        assert third.action == "created"
        assert len(third.queued) == 2


class TestMoves:
    def test_a_corrected_record_moves_from_its_own_person(self, world: World) -> None:
        first = world.add(person("ASC1", birth_date="1950-01-01", postcode="BD3 9QQ"))
        other = world.add(chs("CHS1", nhs_number=NHS[0]), "chs")
        assert other.person_id != first.person_id
        moved = world.add(person("ASC1"))  # the social care record is corrected
        assert (moved.action, moved.person_id) == ("moved", other.person_id)
        history = world.ids.link_history(first.patient_id)
        assert [(h.rule, h.ended_reason) for h in history] == [("new", "relinked"), ("score", None)]
        old = world.resources.read("Person", first.person_id or "").content
        assert old is not None
        assert old["active"] is False
        assert old["link"] == [
            {"target": {"reference": f"Person/{other.person_id}"}, "assurance": "level3"}
        ]

    def test_a_rejected_pair_is_never_linked_automatically(self, world: World) -> None:
        first = world.add(person("ASC1", given="Philippa"))
        second = world.add(chs("CHS1", given="Margaret"), "chs")
        identity_service.decide_match(
            world.session,
            candidate_id=second.queued[0],
            accept=False,
            note=None,
            actor=identity_service.SYSTEM_ACTOR,
            crypto=world.crypto,
            clock=world.clock,
            audit=world.audit,
        )
        world.thresholds = Thresholds(auto=5.0, review=1.0)
        again = world.link(world.resources.read("Patient", second.patient_id))
        assert again.person_id != first.person_id
        assert again.queued == ()


class TestResourcesOfPerson:
    def test_resources_follow_their_patient_into_the_person(self, world: World) -> None:
        asc = world.put(person("ASC1", nhs_number=NHS[0]))
        condition = world.put(
            {
                "resourceType": "Condition",
                "id": "C1",
                "subject": {"reference": f"Patient/{asc.id}"},
                "code": {"text": "falls"},
            },
            "chs",
        )
        # Stored before its Patient was linked: no Person yet, remembered for later.
        assert (
            identity_service.attach_resource(
                world.session, resource=condition, crypto=world.crypto, clock=world.clock
            )
            is None
        )
        linked = world.link(asc)
        chs_patient = world.add(chs("CHS1", nhs_number=NHS[0]), "chs")
        assert chs_patient.person_id == linked.person_id
        got = identity_service.resources_of_person(
            world.session, person_id=linked.person_id or "", crypto=world.crypto
        )
        assert got == [
            ("Patient", asc.id),
            ("Patient", chs_patient.patient_id),
            ("Condition", condition.id),
        ]
        assert world.resources.read("Condition", condition.id).person_id == linked.person_id

    def test_a_resource_stored_after_linking_is_pointed_at_once(self, world: World) -> None:
        linked = world.add(person("ASC1"))
        flag = world.put(
            {
                "resourceType": "Flag",
                "id": "F1",
                "status": "active",
                "code": {"text": "key safe"},
                "subject": {"reference": f"Patient/{linked.patient_id}"},
            }
        )
        got = identity_service.attach_resource(
            world.session, resource=flag, crypto=world.crypto, clock=world.clock
        )
        assert got == linked.person_id
        assert world.resources.read("Flag", flag.id).person_id == linked.person_id


class TestAudit:
    def test_links_and_queued_pairs_are_audited(self, world: World) -> None:
        world.add(person("ASC1", nhs_number=NHS[0]))
        world.add(chs("CHS1", nhs_number=NHS[0]), "chs")
        world.add(chs("CHS2", given="Margaret"), "chs")
        entries = world.audit_actions()
        assert [(a, o, d.get("rule")) for a, o, d in entries] == [
            ("identity.link", "success", "new"),
            ("identity.link", "success", "nhs-number"),
            ("identity.link", "success", "new"),
            ("identity.link", "partial", None),
        ]
        assert entries[-1][2]["queued_for_review"]


def update(world: World, resource: dict[str, object], system: str = "asc") -> PutResult:
    """Store a new version of a source record as ingest would; return the whole result."""
    rid = str(resource.pop("id"))
    kind = "person" if resource["resourceType"] == "Patient" else "record"
    return world.resources.put(resource, source=SourceRef(system, kind, rid))


def relink(world: World, put: PutResult) -> identity_service.LinkOutcome:
    world.clock.advance(seconds=1)
    return identity_service.link_patient(
        world.session,
        patient=put.stored,
        crypto=world.crypto,
        clock=world.clock,
        audit=world.audit,
        thresholds=world.thresholds,
        previous=put.previous,
    )


class TestUpdates:
    def test_an_update_matching_does_not_read_keeps_the_link_unscored(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = world.add(person("ASC1", nhs_number=NHS[0]))
        before = world.audit_actions()
        phone = [{"system": "phone", "value": "0113 496 0000"}]
        put = update(world, person("ASC1", nhs_number=NHS[0], telecom=phone))
        assert put.changed
        assert put.previous is not None

        def no_scoring(*_a: object, **_k: object) -> None:
            raise AssertionError("an unchanged Patient was scored again")

        monkeypatch.setattr(identity_service, "_candidates", no_scoring)
        again = relink(world, put)
        assert (again.action, again.person_id, again.rule) == (
            "unchanged",
            first.person_id,
            "new",
        )
        assert world.audit_actions() == before
        assert len(world.ids.link_history(first.patient_id)) == 1

    def test_an_update_of_what_matching_reads_is_linked_again(self, world: World) -> None:
        other = world.add(chs("CHS1", nhs_number=NHS[0], family="Okafor"), "chs")
        first = world.add(person("ASC1", nhs_number=NHS[1], family="Abernethy"))
        assert first.person_id != other.person_id
        # The source corrects the NHS number: now the same human as CHS1.
        again = relink(world, update(world, person("ASC1", nhs_number=NHS[0], family="Abernethy")))
        assert (again.action, again.rule, again.person_id) == (
            "moved",
            "nhs-number",
            other.person_id,
        )

    def test_a_merged_away_record_is_linked_again_even_when_unchanged(self, world: World) -> None:
        survivor_id = SourceRef("chs", "person", "CHS2").resource_id()
        replaced = {
            "active": False,
            "link": [{"type": "replaced-by", "other": {"reference": f"Patient/{survivor_id}"}}],
        }
        # Merged away before its surviving record arrived: nothing to merge into yet.
        first = world.add(chs("CHS1", nhs_number=NHS[0], **replaced), "chs")
        assert first.action == "created"
        world.add(chs("CHS2", nhs_number=NHS[1]), "chs")
        phone = [{"system": "phone", "value": "0113 496 0000"}]
        again = relink(
            world, update(world, chs("CHS1", nhs_number=NHS[0], telecom=phone, **replaced), "chs")
        )
        assert again.action == "merged"

    def test_a_new_resource_is_attached_and_followed_when_its_patient_links(
        self, world: World
    ) -> None:
        patient = world.put(person("ASC1"))
        flag = world.put(
            {
                "resourceType": "Flag",
                "id": "F1",
                "status": "active",
                "code": {"text": "key safe"},
                "subject": {"reference": f"Patient/{patient.id}"},
            }
        )
        attached = identity_service.attach_resource(
            world.session, resource=flag, crypto=world.crypto, clock=world.clock, new=True
        )
        assert attached is None  # its Patient is not linked yet
        linked = world.link(patient)
        assert world.resources.read("Flag", flag.id).person_id == linked.person_id

    def test_a_patient_just_created_links_as_any_other(self, world: World) -> None:
        def add_new(resource: dict[str, object], system: str) -> identity_service.LinkOutcome:
            put = update(world, resource, system)
            assert put.previous is None
            world.clock.advance(seconds=1)
            return identity_service.link_patient(
                world.session,
                patient=put.stored,
                crypto=world.crypto,
                clock=world.clock,
                audit=world.audit,
                thresholds=world.thresholds,
                created=True,
            )

        first = add_new(person("ASC1", nhs_number=NHS[0]), "asc")
        second = add_new(chs("CHS1", nhs_number=NHS[0]), "chs")
        assert (first.action, second.action, second.rule) == ("created", "linked", "nhs-number")
        assert second.person_id == first.person_id
        stored = world.resources.read("Person", first.person_id or "")
        assert stored.content is not None
        # The Person written without re-validation is valid R4B all the same.
        body = {k: v for k, v in stored.content.items() if k != "meta"}
        assert to_json_dict(validate(body)) == body
        assert [link["target"]["reference"] for link in stored.content["link"]] == [
            f"Patient/{first.patient_id}",
            f"Patient/{second.patient_id}",
        ]
        assert world.ids.match_keys(first.patient_id)
