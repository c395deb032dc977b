"""The operator view of scheduled sync: jobs (lease, schedule, failing), runs, the outbox.

Integration engineers and administrators (permission ``sync.read``) watch the jobs the
worker runs and the alerts it delivers. The outbox is listed without its payloads: an
alert may carry health data meant for one team only, so this view shows what was sent to
whom and how delivery went, never the content.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from bridge.api.deps import DbSession, require
from bridge.auth.principal import Principal
from bridge.core.clock import Clock
from bridge.store.crypto import StoreCrypto
from bridge.store.sync import OutboxRepository, SyncRepository

router = APIRouter(prefix="/admin", tags=["sync"])
MAX_PAGE = 500
_ERRORS_DOC: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token"},
    403: {"description": "The caller's roles lack the permission"},
}


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@router.get("/sync/jobs", summary="Sync jobs: lease, next due time, failing state")
def list_jobs(
    request: Request,
    _principal: Annotated[Principal, Depends(require("sync.read"))],
    session: DbSession,
) -> JSONResponse:
    """Return every job the workers know, by name."""
    clock: Clock = request.app.state.clock
    jobs = SyncRepository(session, clock=clock).jobs()
    return JSONResponse(
        {
            "jobs": [
                {
                    "name": j.name,
                    "definitionHash": j.definition_hash,
                    "leaseOwner": j.lease_owner,
                    "leaseExpiresAt": _time(j.lease_expires_at),
                    "nextDueAt": _time(j.next_due_at),
                    "failing": j.failing,
                    "consecutiveFailures": j.consecutive_failures,
                    "lastError": j.last_error,
                }
                for j in jobs
            ]
        }
    )


@router.get("/sync/runs", summary="The latest sync runs, newest first", responses=_ERRORS_DOC)
def list_runs(
    request: Request,
    _principal: Annotated[Principal, Depends(require("sync.read"))],
    session: DbSession,
    job: Annotated[str | None, Query(max_length=100, description="only this job")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> JSONResponse:
    """Return runs with their counts, watermark and error."""
    clock: Clock = request.app.state.clock
    runs = SyncRepository(session, clock=clock).runs(job=job, limit=limit)
    return JSONResponse(
        {
            "runs": [
                {
                    "id": r.id,
                    "job": r.job,
                    "worker": r.worker,
                    "status": r.status,
                    "startedAt": _time(r.started_at),
                    "finishedAt": _time(r.finished_at),
                    "read": r.records_read,
                    "applied": r.applied,
                    "duplicate": r.duplicate,
                    "deadLettered": r.dead_lettered,
                    "watermark": r.watermark,
                    "error": r.error,
                }
                for r in runs
            ]
        }
    )


@router.get(
    "/outbox", summary="Alerts to the other system and their delivery", responses=_ERRORS_DOC
)
def list_outbox(
    request: Request,
    _principal: Annotated[Principal, Depends(require("sync.read"))],
    session: DbSession,
    status: Annotated[
        str | None, Query(pattern="^(pending|delivered)$", description="pending or delivered")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> JSONResponse:
    """Return alerts newest first, without their content, and the delivery lag."""
    clock: Clock = request.app.state.clock
    crypto: StoreCrypto = request.app.state.crypto
    repo = OutboxRepository(session, crypto=crypto, clock=clock)
    rows = repo.rows(status=status, limit=limit)
    return JSONResponse(
        {
            "lagSeconds": repo.lag_seconds(),
            "alerts": [
                {
                    "id": r.id,
                    "idempotencyKey": r.idempotency_key,
                    "person": r.person_id,
                    "rule": r.rule,
                    "team": r.team,
                    "detailed": r.detailed,
                    "status": r.status,
                    "attempts": r.attempts,
                    "createdAt": _time(r.created_at),
                    "nextAttemptAt": _time(r.next_attempt_at),
                    "deliveredAt": _time(r.delivered_at),
                    "lastError": r.last_error,
                }
                for r in rows
            ],
        }
    )
