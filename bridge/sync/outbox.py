"""Alerts to the other system: rules write outbox rows with the change; the worker delivers.

``enqueue_alerts`` runs in the caller's transaction, right after resources are stored:
each rule that matches a stored resource makes one alert per receiving team (the teams
social care has allocated to the person, or whose episode is open), keyed so that the same
trigger seen again makes no second alert. What an alert carries passes the access gate
for the receiving team (purpose direct care), so it is consent-checked, redacted and
audited like any disclosure; when the gate withholds the record, the alert says only that
there is new information and where to look.

Delivery (``Deliverer``) is at least once, in order per person (a person's later alert
waits while an earlier one is retried), with exponential backoff and jitter: an HTTP
webhook (the alert document or a FHIR Communication, ``Idempotency-Key`` header, and an
HMAC-SHA-256 signature of the body) and/or a JSON-lines file drop.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random as random_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from bridge.access import AccessConfig, AccessGate
from bridge.access.relationships import relationships_of
from bridge.audit.service import Actor, AuditRecord, audit_log_from_settings
from bridge.auth.principal import Principal
from bridge.auth.roles import Role
from bridge.core.clock import Clock
from bridge.core.errors import ConfigurationError
from bridge.core.settings import Settings
from bridge.ingest.service import Ingestor
from bridge.store.crypto import StoreCrypto
from bridge.store.resources import ResourceRepository, StoredResource
from bridge.store.sync import OutboxItem, OutboxRepository
from consent import ConsentEngine, RelationshipKind, load_policy

INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC"})
PLANNED_END = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedEndDate"
SIGNATURE_HEADER = "X-Carebridge-Signature"
ALERT_ACTOR = Actor(user="carebridge-alerts", roles=("sync_service",))
# Relationships that make a team the receiver of an alert about the person.
RECEIVING = frozenset({RelationshipKind.ALLOCATED_TEAM, RelationshipKind.OPEN_EPISODE})


@dataclass(frozen=True)
class AlertRule:
    """When a stored resource makes an alert, what it is called, and what it says."""

    name: str
    resource_type: str
    # Return the trigger's distinguishing value (part of the idempotency key), or None.
    trigger: Callable[[StoredResource], str | None]
    summary: str


def _encounter_class(content: dict[str, Any]) -> str | None:
    cls = content.get("class")
    return cls.get("code") if isinstance(cls, dict) else None


def _planned_end(content: dict[str, Any]) -> str | None:
    for ext in content.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == PLANNED_END:
            value = ext.get("valueDateTime")
            return str(value) if value else None
    return None


def _admitted(stored: StoredResource) -> str | None:
    c = stored.content or {}
    inpatient = _encounter_class(c) in INPATIENT_CLASSES
    return "admitted" if inpatient and c.get("status") == "in-progress" else None


def _expected_discharge(stored: StoredResource) -> str | None:
    c = stored.content or {}
    if c.get("status") != "in-progress":
        return None
    return _planned_end(c)


def _discharged(stored: StoredResource) -> str | None:
    c = stored.content or {}
    inpatient = _encounter_class(c) in INPATIENT_CLASSES
    return "discharged" if inpatient and c.get("status") == "finished" else None


def _community_referral(stored: StoredResource) -> str | None:
    c = stored.content or {}
    from_health = stored.source is not None and stored.source.system == "chs"
    return "created" if from_health and c.get("status") in ("active", "draft") else None


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule("inpatient-admitted", "Encounter", _admitted, "Admitted to hospital"),
    AlertRule(
        "expected-discharge", "Encounter", _expected_discharge, "Expected discharge date set"
    ),
    AlertRule("inpatient-discharged", "Encounter", _discharged, "Discharged from hospital"),
    AlertRule(
        "community-referral", "ServiceRequest", _community_referral, "Community health referral"
    ),
)
WITHHELD_SUMMARY = "New information is available for a person your team supports"


@dataclass(frozen=True)
class AlertContext:
    """What rule evaluation needs: the gate, keys, clock, rules and the council's code."""

    gate: AccessGate
    crypto: StoreCrypto
    clock: Clock
    org: str
    rules: Sequence[AlertRule] = DEFAULT_RULES


def enqueue_alerts(
    session: Session,
    stored_resources: Sequence[StoredResource],
    *,
    context: AlertContext,
) -> int:
    """Write an outbox alert for each rule a stored resource matches; return how many.

    Runs in the caller's transaction (the alert commits with its trigger). Resources not
    linked to a person, and persons with no receiving team, make no alert.
    """
    outbox = OutboxRepository(session, crypto=context.crypto, clock=context.clock)
    repo = ResourceRepository(session, crypto=context.crypto, clock=context.clock)
    added = 0
    for stored in stored_resources:
        matches = [
            (rule, value)
            for rule in context.rules
            if rule.resource_type == stored.resource_type
            and stored.content is not None
            and stored.person_id is not None
            and (value := rule.trigger(stored)) is not None
        ]
        if not matches:
            continue
        assert stored.person_id is not None
        records = repo.find_by_person(stored.person_id)
        teams = _receiving_teams(records, context)
        for rule, value in matches:
            for team in teams:
                key = f"{rule.name}:{stored.resource_type}/{stored.id}:{value}:{team}"
                key = hashlib.sha256(key.encode()).hexdigest()
                if outbox.exists(key):
                    continue
                payload, detailed = _payload(
                    session, context, rule, stored, records, team=team, key=key
                )
                outbox.add(
                    idempotency_key=key,
                    person_id=stored.person_id,
                    rule=rule.name,
                    team=team,
                    org=context.org,
                    detailed=detailed,
                    payload=payload,
                )
                added += 1
    return added


def _receiving_teams(records: Sequence[StoredResource], context: AlertContext) -> list[str]:
    """Return the social care teams involved with the person now (allocation, open episode)."""
    social_care = [
        r.content
        for r in records
        if r.content is not None and r.source is not None and r.source.system == "asc"
    ]
    now = context.clock.now()
    found = relationships_of(social_care, context.gate.config, context.gate.policy_tz)
    teams = {r.team for r in found if r.kind in RECEIVING and r.team and r.period.contains(now)}
    return sorted(teams)


def _payload(
    session: Session,
    context: AlertContext,
    rule: AlertRule,
    stored: StoredResource,
    records: Sequence[StoredResource],
    *,
    team: str,
    key: str,
) -> tuple[dict[str, Any], bool]:
    """Return the alert document for a team and whether it carries the record's content."""
    assert stored.person_id is not None
    principal = Principal(
        user=f"team:{team}",
        roles=frozenset({Role.SOCIAL_WORKER}),
        team=team,
        org=context.org,
    )
    access = context.gate.open(
        session,
        principal,
        stored.person_id,
        audit=AuditRecord(
            actor=ALERT_ACTOR,
            action="person.read",
            outcome="permit",
            detail={"via": "alert", "rule": rule.name, "team": team, "alert": key},
        ),
        types=(stored.resource_type,),
        records=records,
    )
    released = next(
        (r for r in access.released if r.stored.id == stored.id),
        None,
    )
    document: dict[str, Any] = {
        "alertId": key,
        "type": "carebridge.alert",
        "rule": rule.name,
        "person": stored.person_id,
        "team": team,
        "organisation": context.org,
        "created": context.clock.now().isoformat(),
        "see": f"/persons/{stored.person_id}",
    }
    if released is None:
        document["summary"] = WITHHELD_SUMMARY
        return document, False
    document["summary"] = rule.summary
    document["resource"] = released.content
    document["reasons"] = [r.text for r in released.decision.reasons]
    return document, True


def communication(item: OutboxItem) -> dict[str, Any]:
    """Return an alert as a FHIR R4 Communication (to the team, about the person)."""
    doc = item.payload
    return {
        "resourceType": "Communication",
        "id": item.idempotency_key[:64],
        "identifier": [{"system": "urn:carebridge:alert", "value": item.idempotency_key}],
        "status": "completed",
        "category": [{"text": item.rule}],
        "subject": {"reference": f"Person/{item.person_id}"},
        "recipient": [{"identifier": {"system": "urn:carebridge:team", "value": item.team}}],
        "sent": doc.get("created"),
        "payload": [{"contentString": doc.get("summary", WITHHELD_SUMMARY)}]
        + ([{"contentString": json.dumps(doc["resource"])}] if "resource" in doc else []),
        "note": [{"text": f"See {doc.get('see')}"}],
    }


def sign(secret: bytes, body: bytes) -> str:
    """Return the signature header value: ``sha256=<hex HMAC-SHA-256 of the body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Say whether a signature header matches the body (for receivers; constant time)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class DeliveryError(Exception):
    """One alert could not be delivered (the receiver is down or refused it)."""


class Deliverer:
    """Deliver due alerts by webhook and/or file drop: at least once, in order per person."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        crypto: StoreCrypto,
        clock: Clock,
        webhook_url: str | None = None,
        secret: bytes | None = None,
        body_format: str = "alert",
        drop_dir: Path | None = None,
        client: httpx.Client | None = None,
        backoff: float = 5.0,
        max_backoff: float = 3600.0,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        if webhook_url and not secret:
            raise ConfigurationError(
                "a webhook needs a signing secret: set CAREBRIDGE_ALERT_WEBHOOK_SECRET_FILE",
                field="alert_webhook_secret_file",
            )
        self.factory = factory
        self.crypto = crypto
        self.clock = clock
        self.webhook_url = webhook_url
        self.secret = secret or b""
        self.body_format = body_format
        self.drop_dir = drop_dir
        self.client = client or httpx.Client(timeout=10.0)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._random = random

    def deliver_due(self) -> tuple[int, int]:
        """Deliver every alert due now; return (delivered, failed attempts)."""
        delivered = failed = 0
        while True:
            with self.factory() as session, session.begin():
                items = OutboxRepository(session, crypto=self.crypto, clock=self.clock).deliverable(
                    limit=100
                )
            if not items:
                return delivered, failed
            progress = False
            for item in items:
                ok = self._deliver_one(item)
                delivered += ok
                failed += not ok
                progress = progress or ok
            if not progress:
                return delivered, failed

    def _deliver_one(self, item: OutboxItem) -> bool:
        try:
            self.send(item)
        except DeliveryError as exc:
            wait = self._random() * min(self.max_backoff, self.backoff * 2.0**item.attempts)
            with self.factory() as session, session.begin():
                OutboxRepository(session, crypto=self.crypto, clock=self.clock).mark_failed(
                    item.id,
                    error=str(exc),
                    retry_at=self.clock.now() + timedelta(seconds=max(wait, 0.001)),
                )
            return False
        with self.factory() as session, session.begin():
            OutboxRepository(session, crypto=self.crypto, clock=self.clock).mark_delivered(item.id)
        return True

    def body(self, item: OutboxItem) -> bytes:
        """Return the bytes sent for an alert (the alert document or a Communication)."""
        doc = communication(item) if self.body_format == "communication" else item.payload
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def send(self, item: OutboxItem) -> None:
        """Send one alert through every configured channel; raise DeliveryError on failure."""
        body = self.body(item)
        if self.drop_dir is not None:
            self._drop(item, body)
        if self.webhook_url:
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": item.idempotency_key,
                SIGNATURE_HEADER: sign(self.secret, body),
            }
            try:
                response = self.client.post(self.webhook_url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise DeliveryError(f"webhook unreachable ({type(exc).__name__})") from exc
            if not 200 <= response.status_code < 300:
                raise DeliveryError(f"webhook answered HTTP {response.status_code}")

    def _drop(self, item: OutboxItem, body: bytes) -> None:
        assert self.drop_dir is not None
        try:
            self.drop_dir.mkdir(parents=True, exist_ok=True)
            path = self.drop_dir / f"alerts-{item.created_at:%Y-%m-%d}.jsonl"
            with path.open("ab") as stream:
                stream.write(body + b"\n")
                stream.flush()
                os.fsync(stream.fileno())
        except OSError as exc:
            raise DeliveryError(f"file drop failed ({exc.strerror})") from exc


def alert_context_from_settings(
    settings: Settings, ingestor: Ingestor, clock: Clock
) -> AlertContext:
    """Build the alert rules' context: the configured consent policy, audit log and keys."""
    config = ingestor.mappings.config
    gate = AccessGate(
        ConsentEngine(load_policy(settings.consent_policy)),
        audit_log_from_settings(settings, clock),
        AccessConfig.from_mapping_config(config),
        crypto=ingestor.crypto,
        clock=clock,
    )
    return AlertContext(
        gate=gate,
        crypto=ingestor.crypto,
        clock=clock,
        org=str(config.get("asc_organisation_code", "")),
    )


def alert_hook_from_settings(
    settings: Settings, ingestor: Ingestor, clock: Clock
) -> Callable[[Session, list[StoredResource]], int]:
    """Return the sync runner's hook that enqueues alerts after each applied record."""
    context = alert_context_from_settings(settings, ingestor, clock)
    return lambda session, stored: enqueue_alerts(session, stored, context=context)


def deliverer_from_settings(
    settings: Settings, factory: sessionmaker[Session], clock: Clock
) -> Deliverer | None:
    """Return the configured deliverer, or None when no channel is configured."""
    if not settings.alert_webhook_url and settings.alert_drop_dir is None:
        return None
    secret = None
    if settings.alert_webhook_secret_file is not None:
        secret = settings.alert_webhook_secret_file.read_bytes().strip()
    return Deliverer(
        factory,
        crypto=StoreCrypto.from_settings(settings),
        clock=clock,
        webhook_url=settings.alert_webhook_url,
        secret=secret,
        body_format=settings.alert_format,
        drop_dir=settings.alert_drop_dir,
    )
