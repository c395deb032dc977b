"""Merges (ADT A40 and manual) re-point links and resources; an unmerge restores exactly."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.audit.service import Actor
from bridge.core.errors import NotFoundError, ValidationError, VersionConflictError
from bridge.identity import service as identity_service
from bridge.store.resources import canonical_content
from tests.identity.builders import CHS_SYSTEM, NHS, person
from tests.identity.conftest import World

ACTOR = Actor("ig-officer-1", ("ig_officer",))


def chs(rid: str, **kw: Any) -> dict[str, Any]:
    return person(rid, local_system=CHS_SYSTEM, **kw)


def snapshot(world: World, patients: list[str], persons: list[str]) -> dict[str, Any]:
    """Everything a merge may change, as comparable data."""
    links = {}
    for pid in patients:
        link = world.ids.active_link(pid)
        assert link is not None
        links[pid] = (link.person_id, link.rule, link.score, link.evidence)
    contents = {}
    for person_id in persons:
        content = world.resources.read("Person", person_id).content
        assert content is not None
        contents[person_id] = canonical_content(content)
    pointers = {pid: world.resources.read("Patient", pid).person_id for pid in patients}
    resources = {
        p: identity_service.resources_of_person(world.session, person_id=p, crypto=world.crypto)
        for p in persons
    }
    return {"links": links, "persons": contents, "pointers": pointers, "resources": resources}


@pytest.fixture
def two_people(world: World) -> dict[str, str]:
    """Two Persons: an ASC and a CHS record of one, a CHS record with an Encounter of another."""
    a1 = world.add(person("ASC1", nhs_number=NHS[0]))
    a2 = world.add(chs("CHS1", nhs_number=NHS[0]), "chs")
    b1 = world.add(
        chs("CHS2", family="Okafor", given="Chidi", gender="male", birth_date="1962-05-30"),
        "chs",
    )
    encounter = world.put(
        {
            "resourceType": "Encounter",
            "id": "V1",
            "status": "finished",
            "class": {"code": "IMP"},
            "subject": {"reference": f"Patient/{b1.patient_id}"},
        },
        "chs",
    )
    identity_service.attach_resource(
        world.session, resource=encounter, crypto=world.crypto, clock=world.clock
    )
    assert a1.person_id == a2.person_id != b1.person_id
    return {
        "a1": a1.patient_id,
        "a2": a2.patient_id,
        "b1": b1.patient_id,
        "person_a": a1.person_id or "",
        "person_b": b1.person_id or "",
        "encounter": encounter.id,
    }


def do_merge(world: World, surviving: str, retired: str) -> identity_service.MergeOutcome:
    world.clock.advance(minutes=1)
    return identity_service.merge(
        world.session,
        surviving_patient=surviving,
        retired_patient=retired,
        reason="manual: duplicate found by IG",
        actor=ACTOR,
        crypto=world.crypto,
        clock=world.clock,
        audit=world.audit,
    )


def do_unmerge(world: World, merge_id: int) -> identity_service.MergeOutcome:
    world.clock.advance(minutes=1)
    return identity_service.unmerge(
        world.session,
        merge_id=merge_id,
        actor=ACTOR,
        crypto=world.crypto,
        clock=world.clock,
        audit=world.audit,
    )


class TestMerge:
    def test_repoints_links_and_resources_with_history(
        self, world: World, two_people: dict[str, str]
    ) -> None:
        p = two_people
        done = do_merge(world, p["a1"], p["b1"])
        assert (done.surviving_person_id, done.retired_person_id) == (p["person_a"], p["person_b"])
        assert done.patients_moved == (p["b1"],)
        assert world.person_of(p["b1"]) == p["person_a"]
        # The person view reads this: the Encounter came along, on the next query.
        got = identity_service.resources_of_person(
            world.session, person_id=p["person_a"], crypto=world.crypto
        )
        assert ("Encounter", p["encounter"]) in got
        assert ("Patient", p["b1"]) in got
        assert (
            identity_service.resources_of_person(
                world.session, person_id=p["person_b"], crypto=world.crypto
            )
            == []
        )
        retired = world.resources.read("Person", p["person_b"]).content
        assert retired is not None
        assert retired["active"] is False
        assert retired["link"][0]["target"] == {"reference": f"Person/{p['person_a']}"}
        history = world.ids.link_history(p["b1"])
        assert [(h.rule, h.ended_reason) for h in history] == [("new", "merged"), ("merge", None)]
        assert history[1].evidence["previously"] == {"rule": "new", "score": None}
        action, outcome, detail = world.audit_actions()[-1]
        assert (action, outcome, detail["merge_id"]) == ("identity.merge", "success", done.merge_id)

    def test_unmerge_restores_exactly(self, world: World, two_people: dict[str, str]) -> None:
        p = two_people
        patients = [p["a1"], p["a2"], p["b1"]]
        persons = [p["person_a"], p["person_b"]]
        before = snapshot(world, patients, persons)
        # Merge the other way round: the two-record Person is the one retired.
        done = do_merge(world, p["b1"], p["a2"])
        assert set(done.patients_moved) == {p["a1"], p["a2"]}
        assert snapshot(world, patients, persons) != before
        undone = do_unmerge(world, done.merge_id)
        assert set(undone.patients_moved) == {p["a1"], p["a2"]}
        assert snapshot(world, patients, persons) == before
        # History is kept: the merge's links are ended, not deleted.
        assert [h.ended_reason for h in world.ids.link_history(p["a2"])] == [
            "merged",
            "unmerged",
            None,
        ]
        merge_row = world.ids.get_merge(done.merge_id)
        assert merge_row is not None
        assert merge_row.unmerged_by == ACTOR.user
        assert world.audit_actions()[-1][2]["unmerge_of"] == done.merge_id

    def test_unmerge_twice_is_refused(self, world: World, two_people: dict[str, str]) -> None:
        done = do_merge(world, two_people["a1"], two_people["b1"])
        do_unmerge(world, done.merge_id)
        with pytest.raises(VersionConflictError, match="already undone"):
            do_unmerge(world, done.merge_id)

    def test_unmerge_after_a_later_merge_is_refused(
        self, world: World, two_people: dict[str, str]
    ) -> None:
        first = do_merge(world, two_people["a1"], two_people["b1"])
        c1 = world.add(chs("CHS3", family="Lindqvist", given="Astrid", birth_date="1939-12-24"))
        do_merge(world, c1.patient_id, two_people["b1"])
        with pytest.raises(VersionConflictError, match="re-linked after merge"):
            do_unmerge(world, first.merge_id)

    def test_bad_requests(self, world: World, two_people: dict[str, str]) -> None:
        with pytest.raises(ValidationError):
            do_merge(world, two_people["a1"], two_people["a1"])
        with pytest.raises(NotFoundError):
            do_merge(world, two_people["a1"], "no-such-patient")
        with pytest.raises(NotFoundError):
            do_unmerge(world, 999_999)


class TestSourceMerge:
    def test_a_replaced_by_patient_is_merged_once(self, world: World) -> None:
        real = world.add(chs("CHS1", nhs_number=NHS[0]), "chs")
        # A hurried duplicate registration with other details, so scoring leaves it apart.
        dup = world.add(chs("CHS9", birth_date="1950-02-02", postcode="BD3 9QQ"), "chs")
        assert dup.person_id != real.person_id
        # What the A40 mapping stores for the retired MRN.
        retired = {
            "resourceType": "Patient",
            "id": "CHS9",
            "identifier": [{"system": CHS_SYSTEM, "value": "CHS9", "use": "old"}],
            "active": False,
            "link": [{"other": {"reference": f"Patient/{real.patient_id}"}, "type": "replaced-by"}],
        }
        merged = world.add(dict(retired), "chs")
        assert (merged.action, merged.rule) == ("merged", "merge")
        assert merged.person_id == real.person_id
        assert merged.merge_id is not None
        again = world.add(dict(retired), "chs")
        assert again.action == "unchanged"
        assert world.ids.merge_ids(retired_patient_id=dup.patient_id) == [merged.merge_id]

    def test_replaced_by_an_identifier(self, world: World) -> None:
        real = world.add(chs("CHS1", nhs_number=NHS[0]), "chs")
        world.add(chs("CHS9", birth_date="1950-02-02", postcode="BD3 9QQ"), "chs")
        retired = {
            "resourceType": "Patient",
            "id": "CHS9",
            "active": False,
            "link": [
                {
                    "other": {"identifier": {"system": CHS_SYSTEM, "value": "CHS1"}},
                    "type": "replaced-by",
                }
            ],
        }
        merged = world.add(retired, "chs")
        assert (merged.action, merged.person_id) == ("merged", real.person_id)

    def test_already_linked_duplicate_keeps_its_person(self, world: World) -> None:
        real = world.add(chs("CHS1", nhs_number=NHS[0]), "chs")
        dup = world.add(chs("CHS9"), "chs")  # scored into the same Person
        assert dup.person_id == real.person_id
        retired = {
            "resourceType": "Patient",
            "id": "CHS9",
            "active": False,
            "link": [{"other": {"reference": f"Patient/{real.patient_id}"}, "type": "replaced-by"}],
        }
        merged = world.add(retired, "chs")
        assert merged.person_id == real.person_id
        assert [h.rule for h in world.ids.link_history(dup.patient_id)] == ["score", "merge"]
