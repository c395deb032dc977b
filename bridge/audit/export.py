"""Audit entries as FHIR AuditEvent (IHE Basic Audit Log Patterns shape) and as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from bridge.audit.chain import CHAINED_FIELDS
from bridge.core.clock import fhir_instant

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACTOR_SYSTEM = "https://carebridge.example.org/fhir/NamingSystem/user"
ACTION_SYSTEM = "https://carebridge.example.org/fhir/CodeSystem/audit-action"

# action -> (AuditEvent.action code, subtype)
_SHAPE: dict[str, tuple[str, dict[str, str]]] = {
    "person.read": ("R", {"system": RESTFUL, "code": "read"}),
    "fhir.read": ("R", {"system": RESTFUL, "code": "read"}),
    "fhir.write": ("U", {"system": RESTFUL, "code": "update"}),
    "consent.create": ("C", {"system": RESTFUL, "code": "create"}),
    "consent.update": ("U", {"system": RESTFUL, "code": "update"}),
}
# FHIR outcome: 0 success, 4 minor failure (refused), 8 serious failure.
_OUTCOME = {"permit": "0", "success": "0", "partial": "0", "deny": "4", "failure": "8"}
_PURPOSE = {"direct-care": ("TREAT", "treatment"), "break-glass": ("ETREAT", "emergency")}

# Every chained column, then the hash: an exported row can be checked against the chain.
CSV_COLUMNS = (*CHAINED_FIELDS, "hash")


def to_audit_event(row: Any, *, observer: str = "carebridge") -> dict[str, Any]:
    """Render one audit entry as a FHIR R4 AuditEvent (IHE BALP: RESTful interaction)."""
    action_code, subtype = _SHAPE.get(row.action, ("E", None))
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"audit-{row.seq}",
        "type": {"system": DCM, "code": "110110", "display": "Patient Record"}
        if row.person_id
        else {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [
            subtype or {"system": ACTION_SYSTEM, "code": row.action},
        ],
        "action": action_code,
        "recorded": fhir_instant(row.recorded_at),
        "outcome": _OUTCOME.get(row.outcome, "8"),
        "outcomeDesc": row.outcome,
        "agent": [_agent(row)],
        "source": {
            "observer": {"display": observer},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server",
                }
            ],
        },
    }
    if row.purpose in _PURPOSE or row.break_glass:
        code, display = _PURPOSE["break-glass" if row.break_glass else row.purpose]
        event["purposeOfEvent"] = [
            {"coding": [{"system": PURPOSE, "code": code, "display": display}]}
        ]
    entities: list[dict[str, Any]] = []
    if row.person_id:
        entities.append(
            {
                "what": {"reference": f"Person/{row.person_id}"},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    detail = orjson.loads(row.detail or "{}")
    for ref in detail.get("resources", []) if isinstance(detail, dict) else []:
        if isinstance(ref, str) and ref.count("/") >= 1:
            entities.append(
                {
                    "what": {"reference": "/".join(ref.split("/")[:2])},
                    "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                    "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
                }
            )
    if row.request_id:
        entities.append(
            {
                "what": {"identifier": {"value": row.request_id}},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "description": "request id",
            }
        )
    if entities:
        event["entity"] = entities
    return event


def _agent(row: Any) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "who": {"identifier": {"system": ACTOR_SYSTEM, "value": row.actor_user}},
        "requestor": True,
    }
    if row.actor_roles:
        agent["role"] = [{"text": r} for r in row.actor_roles.split()]
    if row.client_address:
        agent["network"] = {"address": row.client_address, "type": "2"}
    if row.actor_org:
        agent["who"]["display"] = f"{row.actor_user} ({row.actor_org})"
    return agent


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    # Spreadsheets run cells starting with = + - @ as formulas; IG officers open these files.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: Iterable[Any]) -> Iterator[str]:
    """Yield CSV text: a header line, then one line per entry (streamable)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buf.getvalue()
    for row in rows:
        buf.seek(0)
        buf.truncate()
        values = []
        for col in CSV_COLUMNS:
            v = getattr(row, col)
            values.append(fhir_instant(v) if col == "recorded_at" else _cell(v))
        writer.writerow(values)
        yield buf.getvalue()
