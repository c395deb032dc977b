"""Reason codes (stable, documented in ``docs/consent.md``) and the sentences they carry.

Sentences are for a social worker: plain words, dates as "1 March 2026", and never the
withheld content itself (no record text, no resource ids, no codes).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from functools import lru_cache

from consent.model import Reason


class ReasonCode(StrEnum):
    """Every reason code the engine gives; codes are stable and never reused."""

    # Before fetch: can this user see anything of this person?
    CARE_RELATIONSHIP = "care-relationship"
    NO_CARE_RELATIONSHIP = "no-care-relationship"
    ROLE_NOT_PERMITTED = "role-not-permitted"
    PURPOSE_NOT_PERMITTED = "purpose-not-permitted"
    BREAK_GLASS = "break-glass"
    BREAK_GLASS_ROLE = "break-glass-role"
    BREAK_GLASS_REASON = "break-glass-reason"
    BREAK_GLASS_EXPIRED = "break-glass-expired"
    # Per resource.
    UNKNOWN_SOURCE = "unknown-source"
    NEVER_SHARED = "never-shared"
    ROLE_SOURCE_NOT_PERMITTED = "role-source-not-permitted"
    BREAK_GLASS_EXCLUDED = "break-glass-excluded"
    UNREADABLE_CONSENT = "unreadable-consent"
    CONSENT_REFUSED = "consent-refused"
    EXCLUDED_BY_CONSENT = "excluded-by-consent"
    RESTRICTED_CATEGORY = "restricted-category"
    CONSENT_PERMITS = "consent-permits"
    IMPLIED_DIRECT_CARE = "implied-direct-care"
    OWN_RECORD = "own-record"
    NO_CONSENT = "no-consent"
    POLICY_DEFAULT = "policy-default"
    # Notes added to a permit.
    IG_ALERT = "ig-alert"
    RESTRICTED_DEMOGRAPHICS = "restricted-demographics"


# Plain words for resource types, for reasons that must say which records a rule covered.
RESOURCE_WORDS = {
    "AllergyIntolerance": "allergy",
    "CarePlan": "care plan",
    "CareTeam": "care team",
    "Condition": "health condition",
    "Encounter": "contact and visit",
    "EpisodeOfCare": "episode of care",
    "Flag": "alert",
    "MedicationStatement": "medicine",
    "Observation": "observation and assessment",
    "Patient": "personal details",
    "RelatedPerson": "carer and relative",
    "ServiceRequest": "referral",
}

RELATIONSHIP_WORDS = {
    "allocated_worker": "you are this person's allocated worker",
    "allocated_team": "your team is allocated to this person",
    "open_referral": "your team holds an open referral for this person",
    "open_episode": "your team holds an open episode of care for this person",
}


# Formatting dates is the costliest part of a reason; the same few dates recur constantly.
@lru_cache(maxsize=4096)
def day(at: datetime, tz: tzinfo) -> str:
    """Return the local calendar day of ``at`` as "1 March 2026"."""
    local = at.astimezone(tz)
    return f"{local.day} {local:%B %Y}"


@lru_cache(maxsize=1024)
def last_day(end: datetime, tz: tzinfo) -> str:
    """Return the last day covered by an exclusive end bound, as "1 March 2026"."""
    return day(end - timedelta(microseconds=1), tz)


@lru_cache(maxsize=1024)
def moment(at: datetime, tz: tzinfo) -> str:
    """Return ``at`` as "14:05 on 1 March 2026" in local time."""
    local = at.astimezone(tz)
    return f"{local:%H:%M} on {day(local, tz)}"


def by(recorded_by: str | None) -> str:
    """Return " by NAME" or nothing."""
    return f" by {recorded_by}" if recorded_by else ""


def resource_words(resource_type: str) -> str:
    """Return plain words for a resource type."""
    return RESOURCE_WORDS.get(resource_type, resource_type)


def reason(code: ReasonCode, text: str) -> Reason:
    """Return a reason; the code comes from ``ReasonCode`` so every code is documented."""
    return Reason(code.value, text)
