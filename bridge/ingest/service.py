"""Apply source records: record the raw input, map it, store the resources, or dead-letter.

One record is all-or-nothing: it runs in a savepoint inside the caller's transaction, so a
record that fails to map or validate leaves no half-written resources, and its raw input
lands in the dead-letter store with the reason in the same transaction. The caller (CLI
command, MLLP connection, sync job) owns the transaction and decides how many records to
commit together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from adapters.base import AdapterError, SourceRecord
from bridge.audit.service import AuditLog, audit_log_from_settings
from bridge.core.clock import Clock
from bridge.core.errors import BridgeError, ValidationError, VersionConflictError
from bridge.core.settings import Settings
from bridge.identity import service as identity_service
from bridge.identity.scoring import Thresholds
from bridge.mapping import Mappings
from bridge.store.crypto import StoreCrypto
from bridge.store.inbound import DeadLetterRepository, InboundRepository
from bridge.store.resources import PutResult, ResourceRepository, SourceRef, StoredResource

Status = Literal["applied", "unchanged", "stale", "duplicate", "dead_lettered"]
# How often a record whose resource another writer changed under it is tried again (each
# try waits for that writer on PostgreSQL; SQLite writers never overlap) before it is
# dead-lettered like any failure.
CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one record."""

    status: Status
    resources: tuple[str, ...] = ()
    error_code: str | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    dead_letter_id: int | None = None
    inbound_id: int | None = None


@dataclass
class IngestSummary:
    """Counts over many records, with dead letters grouped by reason."""

    counts: Counter[str] = field(default_factory=Counter)
    resources: Counter[str] = field(default_factory=Counter)
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    warnings: int = 0

    def add(self, outcome: IngestOutcome) -> None:
        """Count one outcome."""
        self.counts[outcome.status] += 1
        self.warnings += len(outcome.warnings)
        if outcome.status == "applied":
            for ref in outcome.resources:
                self.resources[ref.split("/")[0]] += 1
        if outcome.status == "dead_lettered":
            self.dead_letter_reasons[f"{outcome.error_code} {outcome.error}"] += 1

    @property
    def total(self) -> int:
        """Return how many records were seen."""
        return sum(self.counts.values())

    def as_text(self) -> str:
        """Render the summary for people."""
        parts = [
            f"{self.total} records: {self.counts['applied']} applied,"
            f" {self.counts['unchanged']} unchanged, {self.counts['duplicate']} duplicates,"
            f" {self.counts['stale']} older than stored, {self.counts['dead_lettered']}"
            " dead-lettered"
        ]
        if self.resources:
            parts.append(
                "resources written: "
                + ", ".join(f"{t} {n}" for t, n in sorted(self.resources.items()))
            )
        if self.warnings:
            parts.append(f"{self.warnings} mapping warnings (e.g. unmapped codes kept as text)")
        if self.dead_letter_reasons:
            parts.append("dead letters by reason:")
            parts += [f"  {n:>6}  {r}" for r, n in self.dead_letter_reasons.most_common(20)]
        return "\n".join(parts)


# Source systems in this partnership stamp local times without an offset (HL7 TS does).
SOURCE_ZONE = ZoneInfo("Europe/London")


def utc_version(version: str | None) -> str | None:
    """Normalise a source version timestamp to a sortable UTC instant (None if not a time).

    A time without an offset is Europe/London local time, as HL7 v2 senders mean it.
    """
    if not version:
        return None
    try:
        t = datetime.fromisoformat(version)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=SOURCE_ZONE)
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_dedupe_key(record: SourceRecord) -> str:
    """Return the key that makes re-delivery of the same record a duplicate.

    HL7 messages are the same message when sending application, facility and control id
    (MSH-3, MSH-4, MSH-10) agree; extract rows when kind, id and version agree.
    """
    meta = record.meta
    if meta.get("control_id"):
        return f"{meta.get('sending_application', '')}|{meta.get('sending_facility', '')}|" + (
            f"{meta['control_id']}"
        )
    return f"{record.kind}:{record.id}:{record.version or ''}"


@dataclass(frozen=True)
class Linking:
    """What linking on ingest needs: the audit log (links are audited) and thresholds."""

    audit: AuditLog
    thresholds: Thresholds


AfterApply = Callable[[Session, list[StoredResource]], int]


class Ingestor:
    """Applies records with the loaded mapping specs (build once, use per transaction).

    With ``linking`` (every product edge passes it), each stored Patient is linked to a
    Person and every other resource is attached to its Patient's Person, inside the
    record's savepoint; without it (unit tests of the pipeline) nothing is linked.
    """

    def __init__(
        self,
        *,
        mappings: Mappings,
        crypto: StoreCrypto,
        clock: Clock,
        linking: Linking | None = None,
    ) -> None:
        self.mappings = mappings
        self.crypto = crypto
        self.clock = clock
        self.linking = linking
        # Called with the resources a record changed, in the record's savepoint, after
        # linking: the edges set it to queue alerts (bridge.sync.outbox), which then
        # commit with the change that triggered them, or not at all.
        self.after_apply: AfterApply | None = None

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> Ingestor:
        """Build the ingestor every edge uses: configured mappings, keys, audit, thresholds."""
        return cls(
            mappings=Mappings.load(settings.mappings_dir),
            crypto=StoreCrypto.from_settings(settings),
            clock=clock,
            linking=Linking(
                audit=audit_log_from_settings(settings, clock),
                thresholds=identity_service.thresholds_from_settings(settings),
            ),
        )

    def apply(
        self,
        session: Session,
        record: SourceRecord,
        *,
        channel: str,
        dedupe_key: str | None = None,
    ) -> IngestOutcome:
        """Apply one record in the caller's transaction (a savepoint isolates its writes)."""
        inbound = InboundRepository(session, crypto=self.crypto, clock=self.clock)
        received = inbound.record(
            source_system=record.system,
            channel=channel,
            dedupe_key=dedupe_key or default_dedupe_key(record),
            raw=record.raw or b"",
        )
        if received.duplicate:
            return IngestOutcome("duplicate", inbound_id=received.id)
        error: BridgeError | None = None
        for _attempt in range(1 + CONFLICT_RETRIES):
            try:
                with session.begin_nested():
                    outcome = self._map_and_store(session, record)
                    inbound.mark(received.id, "applied")
            except VersionConflictError as exc:
                # Another writer (another MLLP connection carrying the same patient) changed
                # a resource under us: contention, not a bad record. Try again in a fresh
                # savepoint, whose statements see what that writer committed.
                error = exc
                continue
            except BridgeError as exc:
                error = exc
                break
            return replace(outcome, inbound_id=received.id)
        assert error is not None
        inbound.mark(received.id, "failed")
        dl = self._dead_letter(
            session, record.system, channel, record.kind, record.raw, error, record.origin
        )
        return IngestOutcome(
            "dead_lettered",
            error_code=error.code,
            error=_reason(error),
            dead_letter_id=dl,
            inbound_id=received.id,
        )

    def reject(
        self,
        session: Session,
        error: AdapterError,
        *,
        system: str,
        channel: str,
        kind: str | None = None,
    ) -> IngestOutcome:
        """Dead-letter input an adapter could not parse (kept whole, with the reason)."""
        exc = ValidationError(error.reason, field=error.field)
        dl = self._dead_letter(session, system, channel, kind, error.raw, exc, error.origin)
        return IngestOutcome(
            "dead_lettered", error_code=exc.code, error=_reason(exc), dead_letter_id=dl
        )

    def _map_and_store(self, session: Session, record: SourceRecord) -> IngestOutcome:
        result = self.mappings.map(record, now=self.clock.now())
        repo = ResourceRepository(session, crypto=self.crypto, clock=self.clock)
        version = utc_version(record.version)
        refs: list[str] = []
        changed_refs: list[tuple[str, str]] = []
        changed = stale = 0
        for mapped in result.resources:
            # The engine validated every resource it made with the R4B models.
            put = repo.put(
                mapped.resource,
                source=SourceRef(*mapped.key),
                source_version=version,
                validated=True,
            )
            if put.changed and self.linking is not None:
                self._link(session, put)
            refs.append(f"{put.stored.resource_type}/{put.stored.id}")
            if put.changed:
                changed_refs.append((put.stored.resource_type, put.stored.id))
            changed += put.changed
            stale += put.stale
        status: Status = "applied" if changed else ("stale" if stale else "unchanged")
        if self.after_apply is not None and changed_refs:
            # Read back: linking may have pointed them at a Person since the put.
            self.after_apply(session, [repo.read(t, i) for t, i in changed_refs])
        return IngestOutcome(status, tuple(refs), warnings=tuple(str(w) for w in result.warnings))

    def _link(self, session: Session, put: PutResult) -> None:
        assert self.linking is not None
        if put.stored.resource_type == "Patient":
            identity_service.link_patient(
                session,
                patient=put.stored,
                crypto=self.crypto,
                clock=self.clock,
                audit=self.linking.audit,
                thresholds=self.linking.thresholds,
                previous=put.previous,
                created=put.previous is None,
            )
        else:
            identity_service.attach_resource(
                session,
                resource=put.stored,
                crypto=self.crypto,
                clock=self.clock,
                new=put.previous is None,
            )

    def _dead_letter(
        self,
        session: Session,
        system: str,
        channel: str,
        kind: str | None,
        raw: bytes,
        exc: BridgeError,
        origin: str = "",
    ) -> int:
        return DeadLetterRepository(session, crypto=self.crypto, clock=self.clock).add(
            source_system=system,
            channel=channel,
            source_kind=kind,
            raw=raw or b"",
            error=exc,
            origin=origin or None,
        )


def _reason(exc: BridgeError) -> str:
    return f"{exc.field}: {exc.detail}" if exc.field and exc.field not in exc.detail else exc.detail


def ingest_stream(
    factory: sessionmaker[Session],
    items: Iterable[SourceRecord | AdapterError],
    *,
    ingestor: Ingestor,
    system: str,
    channel: str,
    batch_size: int = 200,
    on_item: Callable[[IngestOutcome], None] | None = None,
) -> IngestSummary:
    """Apply a stream of records, committing every ``batch_size`` (bounded memory).

    Safe to kill at any point: a batch commits whole or not at all, and running again
    treats what did commit as duplicates (the inbound store remembers every record).
    """
    summary = IngestSummary()
    pending = 0
    session = factory()
    try:
        session.begin()
        for item in items:
            if isinstance(item, AdapterError):
                outcome = ingestor.reject(session, item, system=system, channel=channel)
            else:
                outcome = ingestor.apply(session, item, channel=channel)
            summary.add(outcome)
            if on_item is not None:
                on_item(outcome)
            pending += 1
            if pending >= batch_size:
                session.commit()
                session.begin()
                pending = 0
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    return summary
