"""Key rotation: re-encrypt stored values under the active key, in small batches.

Each batch is its own short transaction and each row is updated only if it still holds the
value that was read (same key id and, for resources, the same version), so rotation runs
beside a live service without blocking or overwriting its writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from bridge.store.crypto import StoreCrypto
from bridge.store.models import (
    BreakGlassRecord,
    DeadLetter,
    InboundMessage,
    MatchCandidate,
    OutboxMessage,
    ResourceCurrent,
    ResourceHistory,
)


@dataclass(frozen=True)
class EncryptedTable:
    """A table with an encrypted ``payload`` column and how its rows' AAD is made."""

    name: str
    table: Table
    aad: Callable[[Any], str]


ENCRYPTED_TABLES: tuple[EncryptedTable, ...] = (
    EncryptedTable(
        "resource",
        ResourceCurrent.__table__,  # type: ignore[arg-type]
        lambda r: f"{r.resource_type}/{r.id}/{r.version_id}",
    ),
    EncryptedTable(
        "resource_history",
        ResourceHistory.__table__,  # type: ignore[arg-type]
        lambda r: f"{r.resource_type}/{r.id}/{r.version_id}",
    ),
    EncryptedTable(
        "inbound_message",
        InboundMessage.__table__,  # type: ignore[arg-type]
        lambda r: f"inbound/{r.source_system}/{r.dedupe_key}",
    ),
    EncryptedTable(
        "dead_letter",
        DeadLetter.__table__,  # type: ignore[arg-type]
        lambda r: f"dead-letter/{r.source_system}/{r.raw_hash}",
    ),
    EncryptedTable(
        "identity_match",
        MatchCandidate.__table__,  # type: ignore[arg-type]
        lambda r: f"identity-match/{r.id}",
    ),
    EncryptedTable(
        "break_glass",
        BreakGlassRecord.__table__,  # type: ignore[arg-type]
        lambda r: f"break-glass/{r.id}",
    ),
    EncryptedTable(
        "outbox",
        OutboxMessage.__table__,  # type: ignore[arg-type]
        lambda r: f"outbox/{r.idempotency_key}",
    ),
)


def key_usage(session: Session) -> dict[str, dict[str, int]]:
    """Count encrypted rows per table and key id."""
    usage: dict[str, dict[str, int]] = {}
    for spec in ENCRYPTED_TABLES:
        t = spec.table
        rows = session.execute(
            select(t.c.key_id, func.count())
            .where(t.c.key_id.is_not(None))
            .group_by(t.c.key_id)
            .order_by(t.c.key_id)
        ).all()
        usage[spec.name] = {str(kid): int(n) for kid, n in rows}
    return usage


def reencrypt_batch(session: Session, crypto: StoreCrypto, spec: EncryptedTable, limit: int) -> int:
    """Re-encrypt up to ``limit`` rows of one table not under the active key; return how many."""
    t = spec.table
    active = crypto.keyring.active
    pk = list(t.primary_key.columns)
    stmt = select(t).where(t.c.key_id.is_not(None), t.c.key_id != active).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # Several rotators (or a rotator and a writer) never wait on each other's rows.
        stmt = stmt.with_for_update(skip_locked=True)
    done = 0
    for row in session.execute(stmt).all():
        aad = spec.aad(row)
        plain = crypto.open(row.payload, aad)
        payload, key_id = crypto.seal(plain, aad)
        cond = [c == getattr(row, c.name) for c in pk]
        cond.append(t.c.key_id == row.key_id)
        if "version_id" in t.c:
            cond.append(t.c.version_id == row.version_id)
        result = session.execute(update(t).where(*cond).values(payload=payload, key_id=key_id))
        done += result.rowcount  # type: ignore[attr-defined]
    return done
