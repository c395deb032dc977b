"""Repository for versioned FHIR resources.

FHIR versioning semantics: every change makes a new ``versionId`` and a history row; an
identical re-put makes none; delete is logical (read answers Gone, history stays); writes
may name the version they expect (``if_match``) and fail with a conflict when it is stale.
Concurrency is optimistic: the update is conditional on the version read, so of many
writers racing on one version exactly one wins, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Insert, Row, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bridge.core.clock import Clock, fhir_instant
from bridge.core.errors import (
    GoneError,
    InvalidIdentifierError,
    NotFoundError,
    ValidationError,
    VersionConflictError,
)
from bridge.core.ids import is_fhir_id, stable_id
from bridge.fhir.validate import model_class, to_json_dict, validate
from bridge.store.crypto import StoreCrypto
from bridge.store.models import IdentifierIndex, ResourceCurrent, ResourceHistory
from bridge.store.search_tokens import patient_search_tokens

SOURCE_URI_PREFIX = "urn:carebridge:source:"

# The statements every put runs, built once (SQLAlchemy caches their compiled form) and on
# the tables rather than the ORM classes, which skips the ORM's DML and loading layers:
# ingest runs them for every resource of every message.
_CURRENT = ResourceCurrent.__table__
_SELECT_CURRENT = select(_CURRENT).where(
    _CURRENT.c.resource_type == bindparam("b_type"), _CURRENT.c.id == bindparam("b_id")
)
_UPDATE_CURRENT = update(_CURRENT).where(
    _CURRENT.c.resource_type == bindparam("b_type"),
    _CURRENT.c.id == bindparam("b_id"),
    _CURRENT.c.version_id == bindparam("b_expected"),
)
_INSERT_HISTORY = insert(ResourceHistory.__table__)
_SET_PERSON = (
    update(_CURRENT)
    .where(_CURRENT.c.resource_type == bindparam("b_type"), _CURRENT.c.id == bindparam("b_id"))
    .values(person_id=bindparam("b_person"))
)
_INDEX = IdentifierIndex.__table__
_DELETE_INDEX = delete(_INDEX).where(
    _INDEX.c.resource_type == bindparam("b_type"), _INDEX.c.resource_id == bindparam("b_id")
)
_INSERT_INDEX = insert(_INDEX)


def _insert_current(dialect: str) -> Insert:
    """Return an INSERT of a new resource that does nothing if another writer made it."""
    ins = postgresql.insert(_CURRENT) if dialect == "postgresql" else sqlite.insert(_CURRENT)
    # An INSERT's rowcount is only kept when asked for (0 here means the conflict).
    return ins.on_conflict_do_nothing(index_elements=["resource_type", "id"]).execution_options(
        preserve_rowcount=True
    )


_INSERT_CURRENT = {d: _insert_current(d) for d in ("postgresql", "sqlite")}
# Identifier lookups in two steps, each an index lookup whatever the planner believes:
# the token's (type, id) pairs, then those rows by primary key. One join let PostgreSQL,
# with stale statistics (a freshly loaded table), walk every Patient for each lookup.
_FIND_TOKEN = (
    select(_INDEX.c.resource_type, _INDEX.c.resource_id)
    .where(_INDEX.c.token == bindparam("b_token"))
    .order_by(_INDEX.c.resource_type, _INDEX.c.resource_id)
)
_FIND_TOKEN_OF_TYPE = (
    select(_INDEX.c.resource_id)
    .where(_INDEX.c.token == bindparam("b_token"), _INDEX.c.resource_type == bindparam("b_type"))
    .order_by(_INDEX.c.resource_id)
)
_SELECT_LIVE_OF_TYPE = (
    select(_CURRENT)
    .where(
        _CURRENT.c.resource_type == bindparam("b_type"),
        _CURRENT.c.id.in_(bindparam("b_ids", expanding=True)),
        _CURRENT.c.deleted.is_(False),
    )
    .order_by(_CURRENT.c.id)
)


@dataclass(frozen=True)
class SourceRef:
    """Where a resource came from: source system, record kind and the record's own id."""

    system: str
    kind: str
    id: str

    def resource_id(self) -> str:
        """Return the stable resource id for this source record."""
        return stable_id(self.system, self.kind, self.id)


@dataclass(frozen=True)
class StoredResource:
    """One version of a resource as stored (``content`` is None for a deletion)."""

    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    source: SourceRef | None
    person_id: str | None
    security_labels: tuple[str, ...]
    content: dict[str, Any] | None


@dataclass(frozen=True)
class PutResult:
    """Outcome of a put: the stored version and whether it made a new one."""

    stored: StoredResource
    changed: bool
    created: bool
    # True when the write was older (by source version) than what is stored: not applied.
    stale: bool = False
    # The version this write replaced (None when there was none or nothing changed).
    previous: StoredResource | None = None


def _aad(resource_type: str, rid: str, version: int) -> str:
    return f"{resource_type}/{rid}/{version}"


def canonical_content(resource: dict[str, Any]) -> bytes:
    """Serialise a resource without its version metadata, keys sorted (for change detection)."""
    body = dict(resource)
    meta = dict(body.get("meta") or {})
    meta.pop("versionId", None)
    meta.pop("lastUpdated", None)
    if meta:
        body["meta"] = meta
    else:
        body.pop("meta", None)
    body.pop("id", None)
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def security_labels_of(resource: dict[str, Any]) -> tuple[str, ...]:
    """Return the sorted, de-duplicated ``meta.security`` codes of a resource."""
    codes = {
        str(c["code"])
        for c in (resource.get("meta") or {}).get("security") or []
        if isinstance(c, dict) and c.get("code")
    }
    return tuple(sorted(codes))


# Elements whose Patient reference says whose record a resource is ("search by patient").
_PATIENT_ELEMENTS = ("patient", "subject", "beneficiary")
# Pseudo-system under which references share the blind index with identifiers.
REFERENCE_SYSTEM = "urn:carebridge:reference"
# Pseudo-system under which the workers and teams involved in a resource are indexed
# (``<system>|<value>`` of the identifier naming them): "whose caseload is this person in".
INVOLVED_SYSTEM = "urn:carebridge:involved"
# Where a resource names who is involved: CareTeam participants (member, onBehalfOf),
# a referral's performer, an episode's care manager and team.
_INVOLVED_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "CareTeam": (("participant", "member"), ("participant", "onBehalfOf")),
    "ServiceRequest": (("performer",),),
    "EpisodeOfCare": (("careManager",), ("team",)),
}


def involved_identifiers(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield (system, value) of the identifiers naming the workers and teams involved."""
    for path in _INVOLVED_PATHS.get(str(resource.get("resourceType")), ()):
        nodes: list[Any] = [resource]
        for step in path:
            nxt: list[Any] = []
            for node in nodes:
                value = node.get(step) if isinstance(node, dict) else None
                nxt.extend(value if isinstance(value, list) else [value])
            nodes = nxt
        for ref in nodes:
            ident = ref.get("identifier") if isinstance(ref, dict) else None
            if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
                yield str(ident["system"]), str(ident["value"])


def involved_token_value(system: str, value: str) -> str:
    """Return the value indexed under ``INVOLVED_SYSTEM`` for a worker or team identifier."""
    return f"{system}|{value}"


def _identifier_pairs(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    # Patient names and birth dates, normalised (bridge.store.search_tokens): searchable
    # through the same keyed index although the resource itself is encrypted.
    yield from patient_search_tokens(resource)
    for ident in resource.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
            yield str(ident["system"]), str(ident["value"])
    for system, value in involved_identifiers(resource):
        yield INVOLVED_SYSTEM, involved_token_value(system, value)
    for element in _PATIENT_ELEMENTS:
        ref = resource.get(element)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            if ref["reference"].startswith("Patient/"):
                yield REFERENCE_SYSTEM, ref["reference"]


class ResourceRepository:
    """Versioned, encrypted storage of FHIR resources (built per session)."""

    def __init__(self, session: Session, *, crypto: StoreCrypto, clock: Clock) -> None:
        self.session = session
        self.crypto = crypto
        self.clock = clock

    # -- reads --------------------------------------------------------------------------
    def read(self, resource_type: str, rid: str) -> StoredResource:
        """Return the current version; NotFound if absent, Gone if deleted."""
        row = self._current(resource_type, rid)
        if row is None:
            raise NotFoundError(f"{resource_type}/{rid} does not exist", field="id")
        if row.deleted:
            raise GoneError(
                f"{resource_type}/{rid} was deleted (version {row.version_id})",
                extra={"versionId": str(row.version_id)},
            )
        return self._to_stored(row)

    def vread(self, resource_type: str, rid: str, version_id: int) -> StoredResource:
        """Return one version from history; Gone if that version is a deletion."""
        model_class(resource_type)
        row = self.session.scalars(
            select(ResourceHistory).where(
                ResourceHistory.resource_type == resource_type,
                ResourceHistory.id == rid,
                ResourceHistory.version_id == version_id,
            )
        ).one_or_none()
        if row is None:
            raise NotFoundError(
                f"{resource_type}/{rid} has no version {version_id}", field="versionId"
            )
        if row.deleted:
            raise GoneError(f"{resource_type}/{rid} version {version_id} is a deletion")
        return self._to_stored(row)

    def history(self, resource_type: str, rid: str) -> list[StoredResource]:
        """Return every version, newest first (deletions included, content None)."""
        model_class(resource_type)
        rows = self.session.scalars(
            select(ResourceHistory)
            .where(ResourceHistory.resource_type == resource_type, ResourceHistory.id == rid)
            .order_by(ResourceHistory.version_id.desc())
        ).all()
        if not rows:
            raise NotFoundError(f"{resource_type}/{rid} does not exist", field="id")
        return [self._to_stored(r) for r in rows]

    def find_by_identifier(
        self, system: str, value: str, *, resource_type: str | None = None
    ) -> list[StoredResource]:
        """Return current, non-deleted resources carrying the identifier (via the blind index)."""
        token = self.crypto.hasher.index_token(system, value)
        by_type: dict[str, list[str]] = {}
        if resource_type is not None:
            found = self.session.scalars(
                _FIND_TOKEN_OF_TYPE, {"b_token": token, "b_type": resource_type}
            ).all()
            if found:
                by_type[resource_type] = list(found)
        else:
            for rtype, rid in self.session.execute(_FIND_TOKEN, {"b_token": token}):
                by_type.setdefault(rtype, []).append(rid)
        # Plain rows (never stale identity-map objects), in (type, id) order.
        return [
            self._to_stored(row)
            for rtype in sorted(by_type)
            for row in self.session.execute(
                _SELECT_LIVE_OF_TYPE, {"b_type": rtype, "b_ids": by_type[rtype]}
            )
        ]

    def ids_by_identifier(self, system: str, value: str, *, resource_type: str) -> list[str]:
        """Return the ids of current resources of a type carrying the identifier, in order.

        One index lookup, no decryption: for callers that filter ids before reading.
        """
        token = self.crypto.hasher.index_token(system, value)
        return list(
            self.session.scalars(_FIND_TOKEN_OF_TYPE, {"b_token": token, "b_type": resource_type})
        )

    def read_many(self, resource_type: str, ids: Iterable[str]) -> dict[str, StoredResource]:
        """Return the current, non-deleted resources of a type among ``ids``, by id."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        model_class(resource_type)
        rows = self.session.execute(
            _SELECT_LIVE_OF_TYPE, {"b_type": resource_type, "b_ids": wanted}
        )
        return {row.id: self._to_stored(row) for row in rows}

    def find_by_patient(self, resource_type: str, patient_id: str) -> list[StoredResource]:
        """Return current resources of a type whose patient/subject is ``Patient/<id>``."""
        return self.find_by_identifier(
            REFERENCE_SYSTEM, f"Patient/{patient_id}", resource_type=resource_type
        )

    def find_by_person(self, person_id: str) -> list[StoredResource]:
        """Return the current, non-deleted resources linked to a Person (any type)."""
        rows = self.session.scalars(
            select(ResourceCurrent)
            .where(ResourceCurrent.person_id == person_id, ResourceCurrent.deleted.is_(False))
            .order_by(ResourceCurrent.resource_type, ResourceCurrent.id)
        )
        return [self._to_stored(r) for r in rows]

    def persons_involving(self, system: str, value: str) -> set[str]:
        """Return the Persons of resources naming this worker or team as involved."""
        token = self.crypto.hasher.index_token(INVOLVED_SYSTEM, involved_token_value(system, value))
        rows = self.session.scalars(
            select(ResourceCurrent.person_id)
            .join(
                IdentifierIndex,
                (IdentifierIndex.resource_type == ResourceCurrent.resource_type)
                & (IdentifierIndex.resource_id == ResourceCurrent.id),
            )
            .where(
                IdentifierIndex.token == token,
                ResourceCurrent.deleted.is_(False),
                ResourceCurrent.person_id.is_not(None),
            )
            .distinct()
        )
        return {str(r) for r in rows}

    def count(self, resource_type: str | None = None) -> int:
        """Count current, non-deleted resources (of one type, or all)."""
        from sqlalchemy import func

        stmt = (
            select(func.count())
            .select_from(ResourceCurrent)
            .where(ResourceCurrent.deleted.is_(False))
        )
        if resource_type:
            stmt = stmt.where(ResourceCurrent.resource_type == resource_type)
        return int(self.session.scalar(stmt) or 0)

    def list_ids(self, resource_type: str, *, limit: int = 100) -> list[str]:
        """Return ids of current, non-deleted resources of a type (oldest change first)."""
        return list(
            self.session.scalars(
                select(ResourceCurrent.id)
                .where(
                    ResourceCurrent.resource_type == resource_type,
                    ResourceCurrent.deleted.is_(False),
                )
                .order_by(ResourceCurrent.last_updated, ResourceCurrent.id)
                .limit(limit)
            )
        )

    # -- writes -------------------------------------------------------------------------
    def put(
        self,
        resource: dict[str, Any],
        *,
        source: SourceRef | None = None,
        if_match: int | None = None,
        person_id: str | None = None,
        source_version: str | None = None,
        validated: bool = False,
    ) -> PutResult:
        """Validate and store a resource; a new version only when its content changed.

        The id is the resource's own or, for source records, derived from ``source``;
        the two must agree when both are given. ``source_version`` (a UTC ISO 8601 instant
        from the source) makes a write older than the stored one a no-op marked ``stale``.
        ``validated=True`` is for callers that have just validated the resource with the
        same R4B models (the mapping engine does, for every resource it makes): validating
        again would only double the cost.
        """
        if validated:
            model_class(str(resource.get("resourceType")))  # still only known types
            # A deep copy through JSON, several times cheaper than copy.deepcopy; the
            # content is JSON (the engine's output), and stored as this very JSON anyway.
            content = orjson.loads(orjson.dumps(resource))
        else:
            content = to_json_dict(validate(resource))
        rtype = content["resourceType"]
        rid = self._resolve_id(content, source)
        content["id"] = rid
        if source is not None:
            meta = dict(content.get("meta") or {})
            meta["source"] = SOURCE_URI_PREFIX + source.system
            content["meta"] = meta
        canonical = canonical_content(content)
        digest = self.crypto.hasher.content_hash(canonical)

        current = self._current(rtype, rid)
        if if_match is not None:
            if current is None:
                raise VersionConflictError(
                    f"{rtype}/{rid} does not exist, so version {if_match} cannot match",
                    field="If-Match",
                )
            if current.version_id != if_match:
                raise VersionConflictError(
                    f"{rtype}/{rid} is at version {current.version_id}, not {if_match}",
                    field="If-Match",
                    extra={"currentVersionId": str(current.version_id)},
                )
        if (
            current is not None
            and source_version is not None
            and current.source_version is not None
            and source_version < current.source_version
        ):
            return PutResult(self._to_stored(current), changed=False, created=False, stale=True)
        if (
            current is not None
            and not current.deleted
            and current.content_hash == digest
            and (person_id is None or person_id == current.person_id)
        ):
            return PutResult(self._to_stored(current), changed=False, created=False)

        now = self.clock.now()
        version = 1 if current is None else current.version_id + 1
        meta = dict(content.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = fhir_instant(now)
        content = {"resourceType": rtype, "id": rid, "meta": meta} | {
            k: v for k, v in content.items() if k not in ("resourceType", "id", "meta")
        }
        payload, key_id = self.crypto.seal(orjson.dumps(content), _aad(rtype, rid, version))
        values: dict[str, Any] = {
            "resource_type": rtype,
            "id": rid,
            "version_id": version,
            "last_updated": now,
            "deleted": False,
            # A write without a source (e.g. the API) keeps the record's known origin.
            "source_system": source.system if source else (current and current.source_system),
            "source_kind": source.kind if source else (current and current.source_kind),
            "source_id": source.id if source else (current and current.source_id),
            "source_version": source_version or (current and current.source_version),
            "person_id": person_id
            if person_id is not None
            else (current.person_id if current else None),
            "security_labels": " ".join(security_labels_of(content)),
            "content_hash": digest,
            "key_id": key_id,
            "payload": payload,
        }
        if current is None:
            self._insert_new(values)
        else:
            self._update_conditional(values, expected=current.version_id)
        self.session.execute(_INSERT_HISTORY, values)
        self._reindex(rtype, rid, content, new=current is None)
        self.session.flush()
        stored = self._values_to_stored(values, content)
        return PutResult(
            stored,
            changed=True,
            created=current is None or current.deleted,
            previous=None if current is None else self._to_stored(current),
        )

    def delete(self, resource_type: str, rid: str, *, if_match: int | None = None) -> int:
        """Delete logically: a new version marked deleted; return that version id."""
        current = self._current(resource_type, rid)
        if current is None:
            raise NotFoundError(f"{resource_type}/{rid} does not exist", field="id")
        if if_match is not None and current.version_id != if_match:
            raise VersionConflictError(
                f"{resource_type}/{rid} is at version {current.version_id}, not {if_match}",
                field="If-Match",
            )
        if current.deleted:
            return current.version_id
        version = current.version_id + 1
        values: dict[str, Any] = {
            "resource_type": resource_type,
            "id": rid,
            "version_id": version,
            "last_updated": self.clock.now(),
            "deleted": True,
            "source_system": current.source_system,
            "source_kind": current.source_kind,
            "source_id": current.source_id,
            "source_version": current.source_version,
            "person_id": current.person_id,
            "security_labels": current.security_labels,
            "content_hash": None,
            "key_id": None,
            "payload": None,
        }
        self._update_conditional(values, expected=current.version_id)
        self.session.execute(insert(ResourceHistory).values(**values))
        self.session.execute(
            delete(IdentifierIndex).where(
                IdentifierIndex.resource_type == resource_type,
                IdentifierIndex.resource_id == rid,
            )
        )
        self.session.flush()
        return version

    def set_person(self, resource_type: str, rid: str, person_id: str | None) -> None:
        """Point a resource at a linked Person without making a new FHIR version."""
        self.session.execute(
            _SET_PERSON, {"b_type": resource_type, "b_id": rid, "b_person": person_id}
        )

    # -- internals ----------------------------------------------------------------------
    def _current(self, resource_type: str, rid: str) -> Row[Any] | None:
        """Return the current row (a plain row: always read afresh, never a cached object)."""
        model_class(resource_type)
        return self.session.execute(
            _SELECT_CURRENT, {"b_type": resource_type, "b_id": rid}
        ).one_or_none()

    @staticmethod
    def _resolve_id(content: dict[str, Any], source: SourceRef | None) -> str:
        given = content.get("id")
        if source is not None:
            derived = source.resource_id()
            if given and given != derived:
                raise ValidationError(
                    f"id {given!r} does not match the id derived from its source record",
                    field=f"{content['resourceType']}.id",
                )
            return derived
        if not given:
            raise ValidationError("a resource without a source record needs an id", field="id")
        if not is_fhir_id(given):
            raise InvalidIdentifierError(
                "ids are 1-64 characters of A-Z, a-z, 0-9, '-' and '.'", field="id"
            )
        return str(given)

    def _insert_new(self, values: dict[str, Any]) -> None:
        # ON CONFLICT DO NOTHING rather than a savepoint round the INSERT: one statement,
        # and the transaction stays usable on PostgreSQL when another writer won.
        dialect = self.session.get_bind().dialect.name
        result = self.session.execute(_INSERT_CURRENT[dialect], values)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise VersionConflictError(
                f"{values['resource_type']}/{values['id']} was created by another writer",
                field="id",
            )

    def _update_conditional(self, values: dict[str, Any], *, expected: int) -> None:
        params = {k: v for k, v in values.items() if k not in ("resource_type", "id")}
        result = self.session.execute(
            _UPDATE_CURRENT,
            params
            | {"b_type": values["resource_type"], "b_id": values["id"], "b_expected": expected},
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise VersionConflictError(
                f"{values['resource_type']}/{values['id']} changed since version {expected}",
                field="If-Match",
            )

    def _reindex(self, rtype: str, rid: str, content: dict[str, Any], *, new: bool) -> None:
        # Index rows only exist for stored resources (never removed physically): a new one
        # has none to delete, which saves a statement for most ingested resources.
        if not new:
            self.session.execute(_DELETE_INDEX, {"b_type": rtype, "b_id": rid})
        tokens = {self.crypto.hasher.index_token(s, v) for s, v in _identifier_pairs(content)}
        if tokens:
            self.session.execute(
                _INSERT_INDEX,
                [{"resource_type": rtype, "resource_id": rid, "token": t} for t in sorted(tokens)],
            )

    def _decrypt(self, row: ResourceCurrent | ResourceHistory | Row[Any]) -> dict[str, Any] | None:
        if row.payload is None:
            return None
        plain = self.crypto.open(row.payload, _aad(row.resource_type, row.id, row.version_id))
        data: dict[str, Any] = orjson.loads(plain)
        return data

    def _to_stored(self, row: ResourceCurrent | ResourceHistory | Row[Any]) -> StoredResource:
        return StoredResource(
            resource_type=row.resource_type,
            id=row.id,
            version_id=row.version_id,
            last_updated=row.last_updated,
            deleted=row.deleted,
            source=(
                SourceRef(row.source_system, row.source_kind or "", row.source_id or "")
                if row.source_system
                else None
            ),
            person_id=row.person_id,
            security_labels=tuple(row.security_labels.split()) if row.security_labels else (),
            content=self._decrypt(row),
        )

    @staticmethod
    def _values_to_stored(values: dict[str, Any], content: dict[str, Any]) -> StoredResource:
        return StoredResource(
            resource_type=values["resource_type"],
            id=values["id"],
            version_id=values["version_id"],
            last_updated=values["last_updated"],
            deleted=False,
            source=(
                SourceRef(values["source_system"], values["source_kind"], values["source_id"])
                if values["source_system"]
                else None
            ),
            person_id=values["person_id"],
            security_labels=tuple(values["security_labels"].split()),
            content=content,
        )


__all__: Sequence[str] = [
    "PutResult",
    "ResourceRepository",
    "SourceRef",
    "StoredResource",
    "canonical_content",
    "security_labels_of",
]
