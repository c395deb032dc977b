"""Administration for integration engineers: the mapping specs and a preview of what they make.

The specs are loaded once per app (``app.state.mappings``, see ``create_app``); a preview
maps one record in memory and stores nothing. Record content is never logged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
import pydantic
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from bridge.api.deps import require
from bridge.api.routers.fhir import read_body
from bridge.auth.principal import Principal
from bridge.core.clock import Clock
from bridge.core.errors import MalformedBodyError, NotFoundError, ValidationError
from bridge.mapping import Mappings
from bridge.mapping.cases import RecordFormatError, record_from_json

router = APIRouter(prefix="/admin", tags=["admin"])


class PreviewRequest(pydantic.BaseModel):
    """What to preview: a spec and one source record."""

    model_config = pydantic.ConfigDict(extra="forbid")

    spec: str = pydantic.Field(description="the spec as system/kind", examples=["asc/person"])
    record: dict[str, Any] = pydantic.Field(
        description="a source record {system, kind, id, version, fields}, or just its fields"
    )
    now: datetime | None = pydantic.Field(
        None, description="the time mapping runs at (ISO 8601 with offset); default: now"
    )


_PREVIEW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PreviewRequest.model_json_schema()}},
    }
}
_ERRORS_DOC: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token"},
    403: {"description": "The caller's roles lack the permission"},
}


def _mappings(request: Request) -> Mappings:
    mappings: Mappings = request.app.state.mappings
    return mappings


@router.get(
    "/mappings",
    summary="Mapping specs, concept maps, versions and validity",
    responses=_ERRORS_DOC,
)
def list_mappings(
    request: Request,
    _principal: Annotated[Principal, Depends(require("mappings.read"))],
) -> JSONResponse:
    """List every spec and concept map the bridge loaded, with any problems (file:line)."""
    return JSONResponse(_mappings(request).summary())


def _parse(body: bytes) -> PreviewRequest:
    if not body.strip():
        raise MalformedBodyError(
            'The request body is empty; send {"spec": "system/kind", "record": {...}}.'
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBodyError(f"The request body is not valid JSON: {exc}.") from None
    try:
        return PreviewRequest.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValidationError(
            f"{field}: {first['msg']}",
            field=field,
            extra={
                "errors": [
                    {"path": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"]}
                    for e in errors[:20]
                ]
            },
        ) from None


@router.post(
    "/mappings/preview",
    summary="Map one record with a spec (nothing is stored)",
    openapi_extra=_PREVIEW_BODY,
    responses={
        200: {"description": "The resources, their source keys and any warnings"},
        404: {"description": "No spec of that name"},
        422: {"description": "The record cannot be mapped (field names the source field)"},
        **_ERRORS_DOC,
    },
)
def preview(
    request: Request,
    # Authenticate before reading the body (as /fhir does).
    _principal: Annotated[Principal, Depends(require("mappings.preview"))],
    body: Annotated[bytes, Depends(read_body)],
) -> JSONResponse:
    """Return what a record maps to, or the MappingError naming spec, rule and field."""
    wanted = _parse(body)
    mappings = _mappings(request)
    system, _, kind = wanted.spec.partition("/")
    if (system, kind) not in mappings.specs and not any(
        s.name == wanted.spec for s in mappings.spec_files
    ):
        known = ", ".join(sorted(f"{s}/{k}" for s, k in mappings.specs))
        raise NotFoundError(
            f"There is no mapping spec {wanted.spec!r}; specs: {known}.", field="spec"
        )
    compiled = mappings.spec(wanted.spec)  # MappingSpecError (422) when the spec is invalid
    try:
        record = record_from_json(
            wanted.record, system=compiled.system, kind=compiled.kind, default_id="preview"
        )
    except RecordFormatError as exc:
        raise ValidationError(f"record: {exc}", field="record") from None
    clock: Clock = request.app.state.clock
    now = wanted.now or clock.now()
    if now.tzinfo is None:
        raise ValidationError("now needs a UTC offset, e.g. 2026-11-01T09:00:00Z", field="now")
    result = compiled.map(record, now=now)  # MappingError (422) names spec, rule and field
    return JSONResponse(result.to_dict())
