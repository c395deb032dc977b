"""Helpers shared by the sync tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bridge.store.models import ResourceCurrent, ResourceHistory
from bridge.sync.jobs import JobDefinition, parse_jobs
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "examples" / "sample"


def job(text: str, base: Path) -> JobDefinition:
    """Return the only job a job file text defines."""
    (only,) = parse_jobs(text, file="jobs.yaml", base=base)
    return only


def store_state(factory: sessionmaker[Session]) -> dict[str, object]:
    """Return what the store holds: every resource with its version, and history size."""
    with factory() as session:
        current = {
            f"{t}/{i}": v
            for t, i, v in session.execute(
                select(
                    ResourceCurrent.resource_type, ResourceCurrent.id, ResourceCurrent.version_id
                )
            )
        }
        history = session.scalar(select(func.count()).select_from(ResourceHistory))
    return {"current": current, "history": history}
