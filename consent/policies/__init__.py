"""Policy rules as plugins: one voter per file, registered here in the order they report.

Order matters only for what the social worker reads: every DENY's reasons are shown in
this order, and the first PERMIT decides which basis is named. DENY always wins.
"""

from __future__ import annotations

from consent.policies.base import ABSTAIN, BaseVoter, Redactor, Stage, Vote, Voter
from consent.policies.break_glass import BreakGlassVoter
from consent.policies.break_glass_scope import BreakGlassScopeVoter
from consent.policies.explicit_consent import ExplicitConsentVoter
from consent.policies.implied_direct_care import ImpliedDirectCareVoter
from consent.policies.never_shared import NeverSharedVoter
from consent.policies.objection import ObjectionVoter
from consent.policies.own_records import OwnRecordsVoter
from consent.policies.purpose import PurposeVoter
from consent.policies.relationship import RelationshipVoter
from consent.policies.restricted_categories import RestrictedCategoriesVoter
from consent.policies.restricted_demographics import RestrictedDemographicsRedactor
from consent.policies.role import RoleVoter
from consent.policies.unreadable_consent import UnreadableConsentVoter

# Screen stage: role, purpose, relationship, break-glass. Resource stage: the denies first
# (never-shared … restricted-categories), then the bases, most specific first (consent,
# implied direct care, own records, break-glass as the last resort).
VOTERS: tuple[type[BaseVoter], ...] = (
    RoleVoter,
    PurposeVoter,
    RelationshipVoter,
    NeverSharedVoter,
    BreakGlassScopeVoter,
    UnreadableConsentVoter,
    ObjectionVoter,
    RestrictedCategoriesVoter,
    ExplicitConsentVoter,
    ImpliedDirectCareVoter,
    OwnRecordsVoter,
    BreakGlassVoter,
)

REDACTORS = (RestrictedDemographicsRedactor,)

__all__ = [
    "ABSTAIN",
    "REDACTORS",
    "VOTERS",
    "BaseVoter",
    "Redactor",
    "Stage",
    "Vote",
    "Voter",
]
