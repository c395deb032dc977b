"""Liveness and readiness: is the process up and can it reach its database."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bridge.store.db import ping

router = APIRouter(tags=["operations"])
log = logging.getLogger("carebridge.health")

_NO_STORE = {"Cache-Control": "no-store"}


@router.get(
    "/health",
    summary="Health check (no authentication)",
    responses={503: {"description": "The database is unreachable"}},
)
def health(request: Request) -> JSONResponse:
    """Report whether the API and its database are available."""
    engine: Engine = request.app.state.engine
    try:
        ping(engine)
    except SQLAlchemyError as exc:
        # The reason stays in the log; an unauthenticated caller learns only "unavailable".
        log.warning("database ping failed", exc_info=exc)
        return JSONResponse(
            {"status": "unavailable", "database": "unavailable"},
            status_code=503,
            headers=_NO_STORE,
        )
    return JSONResponse({"status": "ok", "database": "ok"}, headers=_NO_STORE)
