"""Implied direct care: share for direct care within a care relationship unless objected."""

from __future__ import annotations

from consent.context import RequestContext, ResourceContext
from consent.model import Effect
from consent.policies.base import ABSTAIN, BaseVoter, Stage, Vote
from consent.policy import Policy
from consent.reasons import ReasonCode, reason


class ImpliedDirectCareVoter(BaseVoter):
    """Permit a shared record to a user with a care relationship (``direct-care-implied`` only).

    The legal basis is UK GDPR Art 6(1)(e) and 9(2)(h) with the duty to share for direct
    care (Health and Social Care Act 2012 s251B). A recorded objection still wins (its
    voter denies), and restricted categories still need explicit inclusion or a role grant.
    Break-glass is not a care relationship, so it does not enable this basis.
    """

    rule = "implied-direct-care"
    stages = frozenset({Stage.RESOURCE})

    @classmethod
    def enabled(cls, policy: Policy) -> bool:
        """Take part only under the direct-care-implied basis."""
        return policy.basis == "direct-care-implied"

    def vote(self, req: RequestContext, res: ResourceContext) -> Vote:
        """Permit a shared record when the user has a care relationship."""
        if req.relationship is None or not res.source.consent_required:
            return ABSTAIN
        policy = self.policy
        return Vote(
            Effect.PERMIT,
            (
                reason(
                    ReasonCode.IMPLIED_DIRECT_CARE,
                    f"Shown: {res.source.text} records are shared with {policy.audience} for "
                    f"{policy.purposes[req.request.purpose]} because you have a care "
                    "relationship with this person and they have not recorded an objection.",
                ),
            ),
        )
