"""Roles and the one table that says which role may do what."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A role a bearer token can grant (the ``roles`` claim)."""

    SOCIAL_WORKER = "social_worker"
    HEALTH_PROFESSIONAL = "health_professional"
    INTEGRATION_ENGINEER = "integration_engineer"
    IG_OFFICER = "ig_officer"
    SYNC_SERVICE = "sync_service"
    ADMIN = "admin"


ALL_ROLES: frozenset[Role] = frozenset(Role)

PERMISSIONS: dict[str, frozenset[Role]] = {
    # The CapabilityStatement says what the server can do, not what it holds.
    "fhir.metadata": ALL_ROLES,
    # Raw FHIR read, vread and history. Social workers are deliberately absent: they see
    # health data only through the consent gate (bridge.access, /persons), which
    # checks the relationship, the recorded consent and the data's sensitivity first.
    # Granting them raw /fhir reads would bypass all of that.
    "fhir.read": frozenset({Role.HEALTH_PROFESSIONAL, Role.IG_OFFICER, Role.ADMIN}),
    # FHIR search, $everything and single reads. Holders of fhir.read get them raw (and
    # audited); social workers only through the consent gate: withheld items are dropped
    # and summarised, and what they may not see reads as not found.
    "fhir.search": frozenset(
        {Role.SOCIAL_WORKER, Role.HEALTH_PROFESSIONAL, Role.IG_OFFICER, Role.ADMIN}
    ),
    # PUT and DELETE write straight into the store; only administrators and the sync job.
    "fhir.write": frozenset({Role.ADMIN, Role.SYNC_SERVICE}),
    # Recording a person's consent decision is part of the job of those who ask for it;
    # reading the records back (e.g. for a review or a subject access request) is IG's.
    "consent.write": frozenset({Role.SOCIAL_WORKER, Role.HEALTH_PROFESSIONAL, Role.IG_OFFICER}),
    "consent.read": frozenset({Role.IG_OFFICER}),
    # The audit log says who saw whose data: information governance only.
    "audit.read": frozenset({Role.IG_OFFICER}),
    # Mapping specs and previews: integration engineers configure the mappings.
    "mappings.read": frozenset({Role.INTEGRATION_ENGINEER, Role.ADMIN}),
    "mappings.preview": frozenset({Role.INTEGRATION_ENGINEER, Role.ADMIN}),
    # The unified person view, person search and emergency access: social care users, for
    # whom the sharing policy decides record by record (bridge.access). Health
    # professionals read their own organisation's records through /fhir instead.
    "person.view": frozenset({Role.SOCIAL_WORKER}),
    "person.break_glass": frozenset({Role.SOCIAL_WORKER}),
    # The identity review queue: integration engineers and IG decide whether two records
    # are one human (accepting links them, so their data is shown together).
    "identity.review": frozenset({Role.INTEGRATION_ENGINEER, Role.IG_OFFICER, Role.ADMIN}),
    # Sync jobs, runs and the alert outbox (never alert content): integration engineers
    # watch the sync; administrators too.
    "sync.read": frozenset({Role.INTEGRATION_ENGINEER, Role.ADMIN}),
}


def roles_allowed(permission: str) -> frozenset[Role]:
    """Return the roles granted a permission; raise ``ValueError`` for an unknown one."""
    try:
        return PERMISSIONS[permission]
    except KeyError:
        raise ValueError(f"unknown permission {permission!r}") from None


def parse_role(value: str) -> Role:
    """Return the role named ``value``; raise ``ValueError`` naming the known roles."""
    try:
        return Role(value)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {value!r} (known roles: {known})") from None
