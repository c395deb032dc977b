"""Audit changes to the mapping specs and concept maps (``mapping.change``).

Specs are files an integration engineer edits and deploys; the bridge cannot see who
changed them, but it can see *that* they changed: each process that maps records (the
API, the MLLP listener, `ingest`, the sync worker, the demo) compares a digest of every
spec, concept map and the config with the last one recorded, and appends a
``mapping.change`` entry naming what was added, changed or removed, with each file's
version and digest, before it maps anything.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy.orm import Session

from bridge.audit.service import Actor, AuditLog, AuditRecord
from bridge.mapping import Mappings
from bridge.store.audit import AuditFilter, AuditRepository

SYSTEM_ACTOR = Actor("carebridge", ("system",))


def digests(mappings: Mappings) -> dict[str, str]:
    """Return ``{file: sha256}`` of every spec, concept map and the config of a directory."""
    root = mappings.directory
    files = sorted(p for p in root.rglob("*.yaml") if "cases" not in p.relative_to(root).parts)
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    }


def last_recorded(session: Session) -> dict[str, str] | None:
    """Return the digests of the last ``mapping.change`` entry, or None if there is none."""
    rows = AuditRepository(session).search(AuditFilter(action="mapping.change"), limit=1)
    if not rows:
        return None
    detail = json.loads(rows[0].detail) if isinstance(rows[0].detail, str) else rows[0].detail
    found = detail.get("digests")
    return dict(found) if isinstance(found, dict) else None


def audit_mapping_changes(
    session: Session, mappings: Mappings, audit: AuditLog, *, process: str
) -> int | None:
    """Append a ``mapping.change`` entry if the mappings differ from the last recorded;
    return its sequence number (None when nothing changed)."""
    now = digests(mappings)
    before = last_recorded(session)
    if before == now:
        return None
    before = before or {}
    versions = {Path(s.file).as_posix(): s.version for s in mappings.spec_files}
    detail = {
        "process": process,
        "directory": str(mappings.directory),
        "added": sorted(set(now) - set(before)),
        "removed": sorted(set(before) - set(now)),
        "changed": sorted(f for f in set(now) & set(before) if now[f] != before[f]),
        "versions": {f: v for f, v in sorted(versions.items()) if v},
        "valid": mappings.valid,
        "digests": now,
    }
    return audit.record(
        session,
        AuditRecord(actor=SYSTEM_ACTOR, action="mapping.change", outcome="success", detail=detail),
    )
