"""Pure consent policy engine: request + consents + resource -> decision with reasons."""

from consent.engine import ConsentEngine, Evaluation, decide, require
from consent.errors import ConsentDenied, ConsentError, ConsentParseError, PolicyError
from consent.model import (
    AccessRequest,
    BreakGlass,
    BreakGlassGrant,
    Candidate,
    Decision,
    Effect,
    Label,
    Period,
    PersonContext,
    Reason,
    Relationship,
    RelationshipKind,
)
from consent.policy import DEFAULT_PRESET, PRESETS, Policy, load_policy
from consent.reasons import ReasonCode
from consent.record import ConsentRecord, UnreadableConsent, read_consents

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "AccessRequest",
    "BreakGlass",
    "BreakGlassGrant",
    "Candidate",
    "ConsentDenied",
    "ConsentEngine",
    "ConsentError",
    "ConsentParseError",
    "ConsentRecord",
    "Decision",
    "Effect",
    "Evaluation",
    "Label",
    "Period",
    "PersonContext",
    "Policy",
    "PolicyError",
    "Reason",
    "ReasonCode",
    "Relationship",
    "RelationshipKind",
    "UnreadableConsent",
    "decide",
    "load_policy",
    "read_consents",
    "require",
]
