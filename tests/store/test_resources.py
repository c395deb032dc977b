"""ResourceRepository: versioning, idempotent puts, logical delete, optimistic concurrency."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bridge.core.clock import FixedClock
from bridge.core.errors import (
    FhirValidationError,
    GoneError,
    NotFoundError,
    UnknownResourceTypeError,
    ValidationError,
    VersionConflictError,
)
from bridge.core.ids import stable_id
from bridge.core.nhs_number import NHS_NUMBER_SYSTEM
from bridge.store.crypto import StoreCrypto
from bridge.store.db import make_session_factory
from bridge.store.models import ResourceCurrent, ResourceHistory
from bridge.store.resources import ResourceRepository, SourceRef
from tests.fixtures.fhir import NHS_NUMBERS, patient


@pytest.fixture
def repo(session: Session, crypto: StoreCrypto, clock: FixedClock) -> ResourceRepository:
    return ResourceRepository(session, crypto=crypto, clock=clock)


class TestPut:
    def test_first_put_creates_version_1_with_meta(self, repo: ResourceRepository) -> None:
        result = repo.put(patient())
        assert result.created
        assert result.changed
        assert result.stored.version_id == 1
        meta = result.stored.content["meta"]  # type: ignore[index]
        assert meta["versionId"] == "1"
        assert meta["lastUpdated"] == "2026-11-23T10:00:00.000Z"
        assert repo.read("Patient", "p1").content == result.stored.content

    def test_same_content_makes_no_new_version(
        self, repo: ResourceRepository, clock: FixedClock
    ) -> None:
        repo.put(patient())
        clock.advance(minutes=5)
        again = repo.put(patient())
        assert not again.changed
        assert again.stored.version_id == 1
        assert len(repo.history("Patient", "p1")) == 1

    def test_changed_content_makes_new_version_and_keeps_history(
        self, repo: ResourceRepository, clock: FixedClock
    ) -> None:
        repo.put(patient())
        clock.advance(minutes=5)
        second = repo.put(patient(family="Okonkwo-Renamed"))
        assert second.changed
        assert not second.created
        assert second.stored.version_id == 2
        hist = repo.history("Patient", "p1")
        assert [h.version_id for h in hist] == [2, 1]
        assert hist[1].content["name"][0]["family"] == "Okonkwo-Testperson"  # type: ignore[index]
        assert repo.vread("Patient", "p1", 1).content["name"][0]["family"] == (  # type: ignore[index]
            "Okonkwo-Testperson"
        )
        assert repo.read("Patient", "p1").last_updated.isoformat() == "2026-11-23T10:05:00+00:00"

    def test_source_record_gets_stable_id_and_meta_source(self, repo: ResourceRepository) -> None:
        src = SourceRef("asc", "person", "ASC000123")
        first = repo.put(patient(rid=None), source=src)
        expected = stable_id("asc", "person", "ASC000123")
        assert first.stored.id == expected
        assert first.stored.content["meta"]["source"] == "urn:carebridge:source:asc"  # type: ignore[index]
        # Re-ingesting the same record updates the same resource, never a duplicate.
        second = repo.put(patient(rid=None, given="Ada"), source=src)
        assert second.stored.id == expected
        assert second.stored.version_id == 2
        assert repo.count("Patient") == 1

    def test_write_without_source_keeps_the_known_origin(self, repo: ResourceRepository) -> None:
        src = SourceRef("asc", "person", "ASC000124")
        first = repo.put(patient(rid=None), source=src).stored
        edited = dict(first.content or {}, gender="male")
        second = repo.put(edited).stored
        assert second.version_id == 2
        assert second.source == src
        assert repo.read("Patient", first.id).source == src

    def test_source_id_and_given_id_must_agree(self, repo: ResourceRepository) -> None:
        with pytest.raises(ValidationError, match="derived from its source"):
            repo.put(patient(rid="other"), source=SourceRef("asc", "person", "X1"))

    def test_missing_id_without_source_is_rejected(self, repo: ResourceRepository) -> None:
        with pytest.raises(ValidationError) as err:
            repo.put(patient(rid=None))
        assert err.value.field == "id"

    def test_invalid_fhir_names_the_element_path_and_stores_nothing(
        self, repo: ResourceRepository, session: Session
    ) -> None:
        bad = patient(birthDate="07/03/1941")
        with pytest.raises(FhirValidationError) as err:
            repo.put(bad)
        assert err.value.field == "Patient.birthDate"
        bad2 = patient()
        bad2["name"][0]["surname"] = "x"
        with pytest.raises(FhirValidationError) as err2:
            repo.put(bad2)
        assert err2.value.field == "Patient.name[0].surname"
        assert session.scalar(select(ResourceCurrent.id)) is None
        assert session.scalar(select(ResourceHistory.id)) is None

    def test_unknown_resource_type_is_rejected(self, repo: ResourceRepository) -> None:
        with pytest.raises(UnknownResourceTypeError):
            repo.put({"resourceType": "Spaceship", "id": "x"})
        with pytest.raises(UnknownResourceTypeError):
            repo.read("Spaceship", "x")

    def test_security_labels_are_recorded(self, repo: ResourceRepository) -> None:
        cond: dict[str, Any] = {
            "resourceType": "Condition",
            "id": "c1",
            "meta": {
                "security": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"},
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "ETH"},
                ]
            },
            "subject": {"reference": "Patient/p1"},
            "code": {"text": "synthetic"},
        }
        stored = repo.put(cond).stored
        assert stored.security_labels == ("ETH", "PSY")


class TestSourceVersion:
    def test_older_source_version_never_overwrites_newer(self, repo: ResourceRepository) -> None:
        src = SourceRef("chs", "patient", "CHS0000001")
        repo.put(
            patient(rid=None, given="Newer"), source=src, source_version="2026-10-02T09:00:00Z"
        )
        late = repo.put(
            patient(rid=None, given="Older"), source=src, source_version="2026-10-01T09:00:00Z"
        )
        assert late.stale
        assert not late.changed
        current = repo.read("Patient", src.resource_id())
        assert current.version_id == 1
        assert current.content["name"][0]["given"] == ["Newer"]  # type: ignore[index]

    def test_newer_or_unversioned_writes_apply(self, repo: ResourceRepository) -> None:
        src = SourceRef("chs", "patient", "CHS0000002")
        repo.put(patient(rid=None, given="A"), source=src, source_version="2026-10-01T09:00:00Z")
        newer = repo.put(
            patient(rid=None, given="B"), source=src, source_version="2026-10-01T09:00:01Z"
        )
        assert newer.changed
        assert not newer.stale
        # A write without a source version (e.g. a manual correction) still applies and
        # keeps the known source version for later comparisons.
        manual = repo.put(patient(rid=None, given="C"), source=src)
        assert manual.changed
        older = repo.put(
            patient(rid=None, given="D"), source=src, source_version="2026-10-01T09:00:00Z"
        )
        assert older.stale


class TestIfMatch:
    def test_matching_version_updates(self, repo: ResourceRepository) -> None:
        repo.put(patient())
        assert repo.put(patient(given="B"), if_match=1).stored.version_id == 2

    def test_stale_version_conflicts_and_changes_nothing(self, repo: ResourceRepository) -> None:
        repo.put(patient())
        repo.put(patient(given="B"))
        with pytest.raises(VersionConflictError) as err:
            repo.put(patient(given="C"), if_match=1)
        assert err.value.status == 412
        assert repo.read("Patient", "p1").content["name"][0]["given"] == ["B"]  # type: ignore[index]

    def test_if_match_on_missing_resource_conflicts(self, repo: ResourceRepository) -> None:
        with pytest.raises(VersionConflictError):
            repo.put(patient(), if_match=1)


class TestDelete:
    def test_delete_is_logical_read_is_gone_history_stays(self, repo: ResourceRepository) -> None:
        repo.put(patient())
        assert repo.delete("Patient", "p1") == 2
        with pytest.raises(GoneError):
            repo.read("Patient", "p1")
        with pytest.raises(GoneError):
            repo.vread("Patient", "p1", 2)
        hist = repo.history("Patient", "p1")
        assert [(h.version_id, h.deleted) for h in hist] == [(2, True), (1, False)]
        assert repo.vread("Patient", "p1", 1).content is not None
        assert repo.find_by_identifier(NHS_NUMBER_SYSTEM, NHS_NUMBERS[0]) == []

    def test_delete_twice_is_idempotent(self, repo: ResourceRepository) -> None:
        repo.put(patient())
        repo.delete("Patient", "p1")
        assert repo.delete("Patient", "p1") == 2

    def test_put_after_delete_recreates_as_new_version(self, repo: ResourceRepository) -> None:
        repo.put(patient())
        repo.delete("Patient", "p1")
        again = repo.put(patient())
        assert again.created
        assert again.stored.version_id == 3
        assert repo.read("Patient", "p1").version_id == 3

    def test_missing_resource(self, repo: ResourceRepository) -> None:
        with pytest.raises(NotFoundError):
            repo.read("Patient", "nope")
        with pytest.raises(NotFoundError):
            repo.delete("Patient", "nope")
        with pytest.raises(NotFoundError):
            repo.history("Patient", "nope")


class TestBlindIndex:
    def test_find_by_nhs_number(self, repo: ResourceRepository) -> None:
        repo.put(patient(rid="a", nhs_number=NHS_NUMBERS[0]))
        repo.put(patient(rid="b", nhs_number=NHS_NUMBERS[1]))
        found = repo.find_by_identifier(NHS_NUMBER_SYSTEM, NHS_NUMBERS[1])
        assert [f.id for f in found] == ["b"]
        assert repo.find_by_identifier(NHS_NUMBER_SYSTEM, NHS_NUMBERS[2]) == []

    def test_index_follows_identifier_changes(self, repo: ResourceRepository) -> None:
        repo.put(patient(rid="a", nhs_number=NHS_NUMBERS[0]))
        repo.put(patient(rid="a", nhs_number=NHS_NUMBERS[3]))
        assert repo.find_by_identifier(NHS_NUMBER_SYSTEM, NHS_NUMBERS[0]) == []
        assert [f.id for f in repo.find_by_identifier(NHS_NUMBER_SYSTEM, NHS_NUMBERS[3])] == ["a"]


class TestConcurrentWriters:
    WRITERS = 20

    def test_twenty_writers_on_one_version_exactly_one_wins(
        self, db: Engine, crypto: StoreCrypto, clock: FixedClock
    ) -> None:
        factory = make_session_factory(db)
        with factory() as s, s.begin():
            ResourceRepository(s, crypto=crypto, clock=clock).put(patient())

        barrier = threading.Barrier(self.WRITERS)
        outcomes: list[str] = []
        lock = threading.Lock()

        def writer(n: int) -> None:
            barrier.wait()
            try:
                with factory() as s, s.begin():
                    repo = ResourceRepository(s, crypto=crypto, clock=clock)
                    repo.put(patient(given=f"Writer{n}"), if_match=1)
                result = "ok"
            except VersionConflictError:
                result = "conflict"
            except Exception as exc:  # a crash here is a test failure, reported below
                result = f"error: {exc!r}"
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(self.WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(outcomes) == ["conflict"] * (self.WRITERS - 1) + ["ok"], outcomes
        with factory() as s:
            repo = ResourceRepository(s, crypto=crypto, clock=clock)
            assert [h.version_id for h in repo.history("Patient", "p1")] == [2, 1]


class TestFindByPatient:
    def test_subject_and_patient_references_are_searchable(self, repo: ResourceRepository) -> None:
        repo.put(patient(rid="p1"))
        cond = {
            "resourceType": "Condition",
            "id": "c1",
            "code": {"text": "synthetic"},
            "subject": {"reference": "Patient/p1"},
        }
        other = {**cond, "id": "c2", "subject": {"reference": "Patient/p2"}}
        repo.put(cond)
        repo.put(other)
        assert [r.id for r in repo.find_by_patient("Condition", "p1")] == ["c1"]
        assert [r.id for r in repo.find_by_patient("Condition", "p2")] == ["c2"]
        assert repo.find_by_patient("Encounter", "p1") == []
        # Re-pointing the subject moves it in the index.
        repo.put({**cond, "subject": {"reference": "Patient/p2"}})
        assert sorted(r.id for r in repo.find_by_patient("Condition", "p2")) == ["c1", "c2"]
        assert repo.find_by_patient("Condition", "p1") == []
