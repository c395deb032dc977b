"""Helpers the benchmarks share: peak memory and a scratch database."""

from __future__ import annotations

import resource
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bridge.store.db import make_engine


def peak_mb() -> float:
    """Return this process's peak resident memory so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scratch_database(url: str | None, tmp: Path) -> tuple[str, object]:
    """Return a fresh database URL (a PostgreSQL scratch database, or a SQLite file)."""
    if not url:
        return f"sqlite:///{tmp / 'bench.db'}", None
    name = f"carebridge_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(url).set(database=name).render_as_string(hide_password=False), (admin, name)
