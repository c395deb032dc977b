"""Link the Patient records of one human into a FHIR Person; review, merge and unmerge.

Called after a Patient is stored (``link_patient``) and after any other resource is stored
(``attach_resource``). Services only flush: the edge (ingest transaction, API request) owns
the commit, so a link is written with the record that caused it or not at all.

Rules, in order: a Patient whose source marks it merged (``active: false`` with a
``replaced-by`` link, as ADT A40 produces) is merged into the surviving Patient's Person; a
check-digit-valid NHS number shared with another Patient links to that Patient's Person;
otherwise demographics are scored against the Patients sharing a blinded blocking key:
auto-link at or above the auto threshold, queue for review between the thresholds, no link
below. A pair a reviewer rejected is never linked automatically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from bridge.audit.service import Actor, AuditLog, AuditRecord
from bridge.core.clock import Clock
from bridge.core.errors import (
    GoneError,
    NotFoundError,
    ValidationError,
    VersionConflictError,
)
from bridge.core.ids import stable_id
from bridge.core.nhs_number import NHS_NUMBER_SYSTEM
from bridge.core.settings import Settings
from bridge.identity import scoring
from bridge.identity.scoring import Demographics, Scored, Thresholds
from bridge.store.crypto import StoreCrypto
from bridge.store.identity import CandidateRow, IdentityRepository, LinkRow
from bridge.store.resources import ResourceRepository, StoredResource

# Who makes links during ingest (audit actor).
SYSTEM_ACTOR = Actor("carebridge:identity", ("sync_service",))
# How many blocked candidates are compared at most (the best-sharing ones first).
MAX_CANDIDATES = 200
# How many pairs one Patient may put in the review queue (the best-scoring ones).
MAX_QUEUED = 5
# FHIR Person.link.assurance per rule: level3 is "identity verified" in practice (same NHS
# number, a reviewer, the source system's merge); level2 an unverified demographic match.
ASSURANCE = {
    "new": "level3",
    "nhs-number": "level3",
    "reviewer": "level3",
    "merge": "level3",
    "score": "level2",
}
# Elements through which a resource names the Patient it is about, in order of preference.
SUBJECT_ELEMENTS = ("subject", "patient", "beneficiary", "for")

Action = Literal["created", "linked", "moved", "unchanged", "merged", "skipped"]


@dataclass(frozen=True)
class LinkOutcome:
    """What linking one Patient did."""

    patient_id: str
    person_id: str | None
    action: Action
    rule: str | None = None
    score: float | None = None
    queued: tuple[int, ...] = ()
    merge_id: int | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MergeOutcome:
    """What a merge, an unmerge or an accepted match did."""

    merge_id: int
    surviving_person_id: str
    retired_person_id: str
    patients_moved: tuple[str, ...]


@dataclass(frozen=True)
class DecisionOutcome:
    """What a reviewer's decision did."""

    candidate: CandidateRow
    person_id: str | None
    merge_id: int | None


def thresholds_from_settings(settings: Settings) -> Thresholds:
    """Return the configured auto-link and review thresholds."""
    return Thresholds(auto=settings.match_auto_threshold, review=settings.match_review_threshold)


def person_id_for(patient_id: str) -> str:
    """Return the id of the Person first made for a Patient (stable across re-ingests)."""
    return stable_id("carebridge", "person", patient_id)


class _Linker:
    """The repositories and context one call works with."""

    def __init__(
        self,
        session: Session,
        *,
        crypto: StoreCrypto,
        clock: Clock,
        audit: AuditLog | None,
        actor: Actor,
        request_id: str | None = None,
        client_address: str | None = None,
    ) -> None:
        self.session = session
        self.request_id = request_id
        self.client_address = client_address
        self.crypto = crypto
        self.clock = clock
        self.audit = audit
        self.actor = actor
        self.resources = ResourceRepository(session, crypto=crypto, clock=clock)
        self.ids = IdentityRepository(session, crypto=crypto)

    # -- helpers ------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def record(
        self, action: str, person_id: str | None, detail: dict[str, Any], outcome: str = "success"
    ) -> None:
        if self.audit is None:
            return
        self.audit.record(
            self.session,
            AuditRecord(
                actor=self.actor,
                action=action,
                outcome=outcome,
                person_id=person_id,
                request_id=self.request_id,
                client_address=self.client_address,
                detail=detail,
            ),
        )

    def read_patient(self, patient_id: str) -> StoredResource | None:
        try:
            return self.resources.read("Patient", patient_id)
        except (NotFoundError, GoneError):
            return None

    def match_keys(self, d: Demographics) -> set[str]:
        return {
            self.crypto.hasher.mac(b"identity-match-key", kind.encode(), value.encode())
            for kind, value in scoring.blocking_values(d)
        }

    def sync_person(
        self,
        person_id: str,
        *,
        replaced_by: str | None = None,
        links: Sequence[LinkRow] | None = None,
    ) -> None:
        """Write the Person resource from its current links (a new version if it changed).

        ``links`` are the Person's current links when the caller knows them already.
        """
        if links is None:
            links = self.ids.links_of_person(person_id)
        person: dict[str, Any] = {"resourceType": "Person", "id": person_id}
        if links:
            person["active"] = True
            person["link"] = [
                {
                    "target": {"reference": f"Patient/{link.patient_id}"},
                    "assurance": ASSURANCE[link.rule],
                }
                for link in links
            ]
        else:
            # A Person merged away: inactive, pointing at the one that replaced it.
            person["active"] = False
            if replaced_by:
                person["link"] = [
                    {"target": {"reference": f"Person/{replaced_by}"}, "assurance": "level3"}
                ]
        # Valid R4B by construction (validating it returns this very dict): not re-checked.
        self.resources.put(person, validated=True)

    def add_link(
        self,
        patient_id: str,
        person_id: str,
        *,
        rule: str,
        score: float | None,
        evidence: dict[str, Any],
        merge_id: int | None = None,
    ) -> int:
        return self.ids.add_link(
            patient_id=patient_id,
            person_id=person_id,
            rule=rule,
            score=score,
            evidence=evidence,
            at=self.now(),
            by=self.actor.user,
            merge_id=merge_id,
        )

    def ensure_linked(self, patient_id: str) -> LinkRow:
        """Return the Patient's link, giving it a Person of its own if it has none."""
        link = self.ids.active_link(patient_id)
        return link if link is not None else self.new_person(patient_id)

    def new_person(self, patient_id: str, *, first_link: bool = False) -> LinkRow:
        """Link a Patient that has no active link to a Person of its own; return the link.

        ``first_link=True`` says the Patient was never linked, so its Person (whose id
        only it gives) has no other links.
        """
        person_id = person_id_for(patient_id)
        at, evidence = self.now(), _new_evidence()
        link_id = self.ids.add_link(
            patient_id=patient_id,
            person_id=person_id,
            rule="new",
            score=None,
            evidence=evidence,
            at=at,
            by=self.actor.user,
        )
        # The row just written, as reading it back would return it.
        link = LinkRow(
            id=link_id,
            patient_id=patient_id,
            person_id=person_id,
            rule="new",
            score=None,
            evidence=evidence,
            created_at=at,
            created_by=self.actor.user,
            ended_at=None,
            ended_reason=None,
            merge_id=None,
        )
        self.sync_person(person_id, links=[link] if first_link else None)
        self.ids.point_at_person([patient_id], person_id)
        return link

    def resolve_pairs_within(self, person_id: str) -> None:
        """Close open review pairs whose two Patients are now in the same Person."""
        members = {link.patient_id for link in self.ids.links_of_person(person_id)}
        for patient_id in sorted(members):
            for cand in self.ids.open_candidates_of(patient_id):
                if cand.patient_a in members and cand.patient_b in members:
                    self.ids.set_candidate_status(cand.id, "resolved", at=self.now())

    # -- merging two Persons ------------------------------------------------------------
    def merge_persons(
        self,
        *,
        surviving_patient: str,
        retired_patient: str,
        rule: str,
        score: float | None,
        evidence: dict[str, Any],
        reason: str,
    ) -> MergeOutcome:
        """Move every link of the retired Patient's Person into the surviving one's."""
        surviving = self.ensure_linked(surviving_patient)
        retired = self.ensure_linked(retired_patient)
        sp, rp = surviving.person_id, retired.person_id
        merge_id = self.ids.add_merge(
            surviving_patient_id=surviving_patient,
            retired_patient_id=retired_patient,
            surviving_person_id=sp,
            retired_person_id=rp,
            reason=reason,
            actor=self.actor.user,
            at=self.now(),
        )
        # Within one Person only the retired Patient's own link is re-made (its history
        # then says it was merged); across two Persons every link of the retired one moves.
        moving = [retired] if sp == rp else self.ids.links_of_person(rp)
        versions = {pid: self.resources.read("Person", pid).version_id for pid in sorted({sp, rp})}
        ended: list[int] = []
        made: list[int] = []
        for link in moving:
            self.ids.end_link(link.id, at=self.now(), reason="merged")
            ended.append(link.id)
            made.append(
                self.add_link(
                    link.patient_id,
                    sp,
                    rule=rule,
                    score=score,
                    evidence={
                        **evidence,
                        "merge_id": merge_id,
                        "previously": {"rule": link.rule, "score": link.score},
                    },
                    merge_id=merge_id,
                )
            )
        self.ids.set_merge_changes(
            merge_id, {"ended_links": ended, "made_links": made, "person_versions": versions}
        )
        if sp != rp:
            self.sync_person(rp, replaced_by=sp)
        self.sync_person(sp)
        moved = tuple(link.patient_id for link in moving)
        self.ids.point_at_person(moved, sp)
        self.resolve_pairs_within(sp)
        return MergeOutcome(merge_id, sp, rp, moved)


def _new_evidence() -> dict[str, Any]:
    return {
        "decision": "new",
        "summary": "a Person of its own: no other record matched on NHS number or scored"
        " at or above the auto-link threshold",
    }


def _replaced_by(linker: _Linker, patient_id: str, content: Mapping[str, Any]) -> str | None:
    """Return the surviving Patient a merged-away Patient points at (A40), if any."""
    if content.get("active") is not False:
        return None
    for link in content.get("link") or []:
        if not isinstance(link, dict) or link.get("type") != "replaced-by":
            continue
        other = link.get("other") or {}
        ref = other.get("reference")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            target = ref.split("/", 1)[1]
            return target if target != patient_id and linker.read_patient(target) else None
        ident = other.get("identifier") or {}
        if ident.get("system") and ident.get("value"):
            for found in linker.resources.find_by_identifier(
                str(ident["system"]), str(ident["value"]), resource_type="Patient"
            ):
                if found.id != patient_id:
                    return found.id
    return None


def link_patient(
    session: Session,
    *,
    patient: StoredResource,
    crypto: StoreCrypto,
    clock: Clock,
    audit: AuditLog | None,
    thresholds: Thresholds,
    actor: Actor = SYSTEM_ACTOR,
    previous: StoredResource | None = None,
    created: bool = False,
) -> LinkOutcome:
    """Link a just-stored Patient to the Person of the same human (or a new Person).

    ``previous`` is the version the store replaced (``PutResult.previous``): when what
    matching reads (identifiers, names, birth date, sex, postcode, active, links) is the
    same in both and the Patient is linked, its link stands and nothing is written (an
    update of a telephone number does not re-run matching; the Patients stored since were
    compared with this one when they were linked themselves).

    ``created=True`` says the Patient was only just created (``PutResult.previous`` is None
    after a change): never linked, it has no link, match keys or Person to look up.
    """
    if patient.resource_type != "Patient":
        raise ValueError(f"link_patient needs a Patient, not a {patient.resource_type}")
    if patient.deleted or patient.content is None:
        return LinkOutcome(patient.id, patient.person_id, "skipped")
    pid = patient.id
    if (
        previous is not None
        and previous.content is not None
        and not previous.deleted
        # A merged-away record is linked again: its surviving record may have come since.
        and patient.content.get("active") is not False
        and _match_view(previous.content) == _match_view(patient.content)
    ):
        current = IdentityRepository(session, crypto=crypto).active_link(pid)
        if current is not None:
            return LinkOutcome(pid, current.person_id, "unchanged", current.rule, current.score)
    linker = _Linker(session, crypto=crypto, clock=clock, audit=audit, actor=actor)
    mine = scoring.demographics(patient.content)
    keys = linker.match_keys(mine)
    linker.ids.set_match_keys(pid, keys, new=created)

    surviving = _replaced_by(linker, pid, patient.content)
    if surviving is not None and not linker.ids.merge_ids(
        retired_patient_id=pid, surviving_patient_id=surviving
    ):
        done = linker.merge_persons(
            surviving_patient=surviving,
            retired_patient=pid,
            rule="merge",
            score=None,
            evidence={
                "decision": "merge",
                "summary": "merged by the source system: this record is replaced by another",
            },
            reason="source replaced-by (ADT A40)",
        )
        linker.record(
            "identity.merge",
            done.surviving_person_id,
            _merge_detail(done, surviving, pid, "source replaced-by (ADT A40)"),
        )
        return LinkOutcome(pid, done.surviving_person_id, "merged", "merge", merge_id=done.merge_id)

    current = None if created else linker.ids.active_link(pid)
    current_members = (
        {link.patient_id for link in linker.ids.links_of_person(current.person_id)}
        if current
        else {pid}
    )
    scored = _candidates(linker, pid, mine, keys, exclude=current_members)
    best_nhs = next((s for s in scored if s.match.nhs_number_match), None)
    autos = [s for s in scored if thresholds.decide(s.match) == "auto"]
    reviews = [s for s in scored if thresholds.decide(s.match) == "review"]
    target: Scored | None = None
    rule = "score"
    if best_nhs is not None:
        target, rule = best_nhs, "nhs-number"
    elif len({s.person_id for s in autos}) == 1:
        target = autos[0]
    elif autos:
        # Two different Persons both look like this record: a human decides.
        reviews = autos + reviews

    if target is not None and current is not None and len(current_members) > 1:
        # Already linked with other records: never move a group on its own; ask a reviewer.
        reviews = [target, *reviews]
        target = None

    queued: list[int] = []
    outcome: LinkOutcome
    if target is not None:
        assert target.person_id is not None
        decision: scoring.Decision = "nhs-number" if rule == "nhs-number" else "auto"
        evidence = scoring.explain(target.match, decision, thresholds)
        evidence["matched"] = f"Patient/{target.patient_id}"
        if current is not None:
            linker.ids.end_link(current.id, at=linker.now(), reason="relinked")
        link_id = linker.add_link(
            pid, target.person_id, rule=rule, score=target.match.score, evidence=evidence
        )
        if current is not None:
            linker.sync_person(current.person_id, replaced_by=target.person_id)
        linker.sync_person(target.person_id)
        linker.ids.point_at_person([pid], target.person_id)
        linker.resolve_pairs_within(target.person_id)
        action: Action = "moved" if current is not None else "linked"
        outcome = LinkOutcome(
            pid, target.person_id, action, rule, target.match.score, evidence=evidence
        )
        linker.record(
            "identity.link",
            target.person_id,
            {
                "patient": f"Patient/{pid}",
                "matched": f"Patient/{target.patient_id}",
                "rule": rule,
                "score": target.match.score,
                "link_id": link_id,
                "previous_person": f"Person/{current.person_id}" if current else None,
            },
        )
    elif current is None:
        link = linker.new_person(pid, first_link=created)
        outcome = LinkOutcome(pid, link.person_id, "created", "new", evidence=link.evidence)
        linker.record(
            "identity.link",
            link.person_id,
            {"patient": f"Patient/{pid}", "rule": "new", "link_id": link.id},
        )
    else:
        outcome = LinkOutcome(pid, current.person_id, "unchanged", current.rule, current.score)

    person_now = outcome.person_id
    members = (
        {link.patient_id for link in linker.ids.links_of_person(person_now)}
        if person_now and reviews
        else set()
    )
    asked: set[str | None] = set()
    for cand in reviews:
        if len(queued) >= MAX_QUEUED:
            break
        # One question per other Person: its best-scoring record stands for it.
        if cand.patient_id in members or cand.person_id in asked:
            continue
        asked.add(cand.person_id)
        evidence = scoring.explain(cand.match, "review", thresholds)
        evidence["matched"] = f"Patient/{cand.patient_id}"
        cid, new = linker.ids.upsert_open(
            pid, cand.patient_id, score=cand.match.score, evidence=evidence, at=linker.now()
        )
        if new:
            queued.append(cid)
    if queued:
        linker.record(
            "identity.link",
            person_now,
            {"patient": f"Patient/{pid}", "queued_for_review": queued},
            outcome="partial",
        )
    return LinkOutcome(
        outcome.patient_id,
        outcome.person_id,
        outcome.action,
        outcome.rule,
        outcome.score,
        tuple(queued),
        evidence=outcome.evidence,
    )


def _match_view(content: Mapping[str, Any]) -> tuple[Any, ...]:
    """Return what linking reads from a Patient (equal views link the same way)."""
    return (scoring.demographics(content), content.get("active"), content.get("link"))


def _candidates(
    linker: _Linker, pid: str, mine: Demographics, keys: set[str], *, exclude: set[str]
) -> list[Scored]:
    """Score the Patients worth comparing with this one, best first, with their Persons."""
    found: list[str] = []
    if mine.nhs_number:
        found += linker.resources.ids_by_identifier(
            NHS_NUMBER_SYSTEM, mine.nhs_number, resource_type="Patient"
        )
    # The keys just stored for this Patient (set_match_keys), not read back.
    found += linker.ids.patients_sharing_keys(keys, exclude=pid, limit=MAX_CANDIDATES)
    # Ids first, content last: only the linked candidates are read (and decrypted), at once.
    wanted = [i for i in dict.fromkeys(found) if i not in exclude and i != pid]
    if not wanted:
        return []
    rejected = linker.ids.rejected_partners(pid)
    links = linker.ids.active_links(i for i in wanted if i not in rejected)
    # One not linked yet is compared with this one when it is linked itself.
    patients = linker.resources.read_many("Patient", links)
    scored: list[Scored] = []
    for other_id, other in patients.items():
        if other.content is None:
            continue
        match = scoring.compare(mine, scoring.demographics(other.content))
        scored.append(Scored(other_id, match, links[other_id].person_id))
    return list(scoring.ranked(scored))


def attach_resource(
    session: Session,
    *,
    resource: StoredResource,
    crypto: StoreCrypto,
    clock: Clock,
    new: bool = False,
) -> str | None:
    """Note which Patient a stored resource is about and point it at that Patient's Person.

    Returns the Person id (None when the resource names no Patient or it is not linked yet;
    linking the Patient later points the resource then). ``new=True`` says the resource
    was only just created (``PutResult.previous`` is None), so it has no subject to replace.
    """
    if resource.resource_type in ("Patient", "Person"):
        return resource.person_id
    ids = IdentityRepository(session, crypto=crypto)
    patient_id = _subject_patient(resource.content) if resource.content else None
    if patient_id is None and new:
        return None
    ids.set_subject(resource.resource_type, resource.id, patient_id, new=new)
    if patient_id is None:
        return None
    link = ids.active_link(patient_id)
    person_id = link.person_id if link else None
    if person_id != resource.person_id:
        ResourceRepository(session, crypto=crypto, clock=clock).set_person(
            resource.resource_type, resource.id, person_id
        )
    return person_id


def _subject_patient(content: Mapping[str, Any]) -> str | None:
    for element in SUBJECT_ELEMENTS:
        ref = content.get(element)
        if isinstance(ref, list):
            ref = ref[0] if ref else None
        if isinstance(ref, dict):
            value = ref.get("reference")
            if isinstance(value, str) and value.startswith("Patient/") and "/" not in value[8:]:
                return value[8:]
    return None


def _merge_detail(done: MergeOutcome, surviving: str, retired: str, reason: str) -> dict[str, Any]:
    return {
        "merge_id": done.merge_id,
        "surviving_patient": f"Patient/{surviving}",
        "retired_patient": f"Patient/{retired}",
        "retired_person": f"Person/{done.retired_person_id}",
        "patients_moved": [f"Patient/{p}" for p in done.patients_moved],
        "reason": reason,
    }


def merge(
    session: Session,
    *,
    surviving_patient: str,
    retired_patient: str,
    reason: str,
    actor: Actor,
    crypto: StoreCrypto,
    clock: Clock,
    audit: AuditLog | None,
) -> MergeOutcome:
    """Merge the retired Patient's Person into the surviving Patient's (A40 or manual)."""
    if surviving_patient == retired_patient:
        raise ValidationError("a Patient cannot be merged into itself", field="retired_patient")
    linker = _Linker(session, crypto=crypto, clock=clock, audit=audit, actor=actor)
    for name, pid in (
        ("surviving_patient", surviving_patient),
        ("retired_patient", retired_patient),
    ):
        if linker.read_patient(pid) is None:
            raise NotFoundError(f"Patient/{pid} does not exist", field=name)
    done = linker.merge_persons(
        surviving_patient=surviving_patient,
        retired_patient=retired_patient,
        rule="merge",
        score=None,
        evidence={"decision": "merge", "summary": f"merged: {reason}"},
        reason=reason,
    )
    linker.record(
        "identity.merge",
        done.surviving_person_id,
        _merge_detail(done, surviving_patient, retired_patient, reason),
    )
    return done


def unmerge(
    session: Session,
    *,
    merge_id: int,
    actor: Actor,
    crypto: StoreCrypto,
    clock: Clock,
    audit: AuditLog | None,
) -> MergeOutcome:
    """Undo a merge exactly: the links it ended come back, the links it made end."""
    linker = _Linker(session, crypto=crypto, clock=clock, audit=audit, actor=actor)
    done = linker.ids.get_merge(merge_id, for_update=True)
    if done is None:
        raise NotFoundError(f"there is no merge {merge_id}", field="merge_id")
    if done.unmerged_at is not None:
        raise VersionConflictError(
            f"merge {merge_id} was already undone at {done.unmerged_at.isoformat()}",
            field="merge_id",
        )
    made = [linker.ids.get_link(i) for i in done.changes.get("made_links", [])]
    ended = [linker.ids.get_link(i) for i in done.changes.get("ended_links", [])]
    for link in made:
        if link is None or link.ended_at is not None:
            patient = link.patient_id if link else "?"
            raise VersionConflictError(
                f"Patient/{patient} was re-linked after merge {merge_id}; undo that first",
                field="merge_id",
            )
    for link in made:
        assert link is not None
        linker.ids.end_link(link.id, at=linker.now(), reason="unmerged")
    persons: dict[str, list[str]] = {}
    for old in ended:
        assert old is not None
        # A copy of the link as it was: same Person, rule, score and evidence.
        linker.ids.add_link(
            patient_id=old.patient_id,
            person_id=old.person_id,
            rule=old.rule,
            score=old.score,
            evidence=old.evidence,
            at=linker.now(),
            by=actor.user,
            merge_id=old.merge_id,
        )
        persons.setdefault(old.person_id, []).append(old.patient_id)
    for person_id in sorted({done.surviving_person_id, done.retired_person_id}):
        linker.sync_person(person_id)
    for person_id, patients in sorted(persons.items()):
        linker.ids.point_at_person(patients, person_id)
    linker.ids.mark_unmerged(merge_id, at=linker.now(), by=actor.user)
    moved = tuple(p for ps in persons.values() for p in ps)
    linker.record(
        "identity.merge",
        done.surviving_person_id,
        {
            "unmerge_of": merge_id,
            "surviving_person": f"Person/{done.surviving_person_id}",
            "restored_person": f"Person/{done.retired_person_id}",
            "patients_moved": [f"Patient/{p}" for p in moved],
        },
    )
    return MergeOutcome(merge_id, done.surviving_person_id, done.retired_person_id, moved)


def list_matches(
    session: Session,
    *,
    crypto: StoreCrypto,
    status: str = "open",
    after_id: int | None = None,
    limit: int = 50,
) -> tuple[list[CandidateRow], dict[str, str]]:
    """Return a page of queue rows and the current Person of each Patient in them."""
    ids = IdentityRepository(session, crypto=crypto)
    rows = ids.list_candidates(status=status, after_id=after_id, limit=limit)
    patients = {p for r in rows for p in (r.patient_a, r.patient_b)}
    persons = {pid: link.person_id for pid, link in ids.active_links(patients).items()}
    return rows, persons


def count_open(session: Session, *, crypto: StoreCrypto) -> int:
    """Count the pairs awaiting review."""
    return IdentityRepository(session, crypto=crypto).count_candidates("open")


def decide_match(
    session: Session,
    *,
    candidate_id: int,
    accept: bool,
    note: str | None,
    actor: Actor,
    crypto: StoreCrypto,
    clock: Clock,
    audit: AuditLog | None,
    request_id: str | None = None,
    client_address: str | None = None,
) -> DecisionOutcome:
    """Accept (link the two Patients' Persons) or reject a queued pair; audited."""
    linker = _Linker(
        session,
        crypto=crypto,
        clock=clock,
        audit=audit,
        actor=actor,
        request_id=request_id,
        client_address=client_address,
    )
    cand = linker.ids.get_candidate(candidate_id, for_update=True)
    if cand is None:
        raise NotFoundError(f"there is no match candidate {candidate_id}", field="id")
    if cand.status != "open":
        by = f" by {cand.reviewer}" if cand.reviewer else ""
        raise VersionConflictError(
            f"match {candidate_id} is no longer open: it was {cand.status}{by}", field="id"
        )
    merge_id: int | None = None
    person_id: str | None = None
    # Decided first: the merge below closes the open pairs it settles, not this one.
    linker.ids.decide(
        candidate_id,
        status="accepted" if accept else "rejected",
        reviewer=actor.user,
        note=note,
        at=linker.now(),
    )
    if accept:
        a = linker.ensure_linked(cand.patient_a)
        b = linker.ensure_linked(cand.patient_b)
        # The older Person survives, so links made earlier keep their Person id.
        older_a = min(link.id for link in linker.ids.links_of_person(a.person_id))
        older_b = min(link.id for link in linker.ids.links_of_person(b.person_id))
        surviving, retired = (a, b) if older_a <= older_b else (b, a)
        if a.person_id != b.person_id:
            done = linker.merge_persons(
                surviving_patient=surviving.patient_id,
                retired_patient=retired.patient_id,
                rule="reviewer",
                score=cand.score,
                evidence={
                    **cand.evidence,
                    "decision": "reviewer",
                    "reviewer": actor.user,
                    "match_id": candidate_id,
                },
                reason=f"review accepted match {candidate_id}",
            )
            merge_id, person_id = done.merge_id, done.surviving_person_id
        else:
            person_id = a.person_id
    decided = linker.ids.get_candidate(candidate_id)
    assert decided is not None
    linker.record(
        "identity.link",
        person_id,
        {
            "match_id": candidate_id,
            "decision": "accept" if accept else "reject",
            "patients": [f"Patient/{cand.patient_a}", f"Patient/{cand.patient_b}"],
            "score": cand.score,
            "merge_id": merge_id,
        },
    )
    return DecisionOutcome(decided, person_id, merge_id)


def person_of(session: Session, *, patient_id: str, crypto: StoreCrypto) -> str | None:
    """Return the Person a Patient is linked to now."""
    link = IdentityRepository(session, crypto=crypto).active_link(patient_id)
    return link.person_id if link else None


def resources_of_person(
    session: Session, *, person_id: str, crypto: StoreCrypto
) -> list[tuple[str, str]]:
    """Return (type, id) of every current resource of a Person (Patients first)."""
    return IdentityRepository(session, crypto=crypto).resources_of_person(person_id)


def link_history(session: Session, *, patient_id: str, crypto: StoreCrypto) -> Sequence[LinkRow]:
    """Return every link a Patient has had, oldest first (how each was made and ended)."""
    return IdentityRepository(session, crypto=crypto).link_history(patient_id)
