"""Changes to the mapping files are audited (mapping.change) when a process starts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bridge.audit.service import AuditLog
from bridge.core.clock import FixedClock
from bridge.ingest.mapping_audit import audit_mapping_changes
from bridge.mapping import Mappings
from bridge.store.audit import AuditFilter, AuditRepository
from bridge.store.db import make_session_factory
from tests.audit.test_chain import HASHER
from tests.conftest import REPO_ROOT


def _record(db: Engine, directory: Path, log: AuditLog) -> int | None:
    mappings = Mappings.load(directory, strict=False)
    with make_session_factory(db).begin() as s:
        return audit_mapping_changes(s, mappings, log, process="test")


def _entries(db: Engine) -> list[dict[str, object]]:
    with Session(db) as s:
        rows = AuditRepository(s).search(AuditFilter(action="mapping.change"))
        return [json.loads(r.detail) for r in rows]


def test_first_start_records_every_file_then_only_changes(
    db: Engine, tmp_path: Path, clock: FixedClock
) -> None:
    directory = tmp_path / "mappings"
    shutil.copytree(REPO_ROOT / "mappings", directory)
    log = AuditLog(HASHER, clock)
    assert _record(db, directory, log) is not None
    (first,) = _entries(db)
    assert "asc/person.yaml" in first["added"]
    assert "config.yaml" in first["added"]
    assert not any(f.startswith("cases/") for f in first["added"])
    assert first["changed"] == []
    assert first["removed"] == []
    # Starting again with the same files records nothing.
    assert _record(db, directory, log) is None
    # An edited spec and a removed concept map are named.
    spec = directory / "asc" / "person.yaml"
    spec.write_text(spec.read_text().replace('version: "1.0.0"', 'version: "1.0.1"'))
    (directory / "codes" / "asc-gender.yaml").unlink()
    assert _record(db, directory, log) is not None
    latest = _entries(db)[0]  # newest first
    assert latest["changed"] == ["asc/person.yaml"]
    assert latest["removed"] == ["codes/asc-gender.yaml"]
    assert latest["valid"] is False  # the spec uses the removed map
    assert latest["versions"]["asc/person.yaml"] == "1.0.1"
