"""Break-glass scope: the categories the policy excludes from emergency access stay withheld."""

from __future__ import annotations

from consent.context import RequestContext, ResourceContext
from consent.model import Effect
from consent.policies.base import ABSTAIN, BaseVoter, Stage, Vote
from consent.reasons import ReasonCode, reason


class BreakGlassScopeVoter(BaseVoter):
    """Deny, in a break-glass request, every record in a category break-glass excludes.

    This holds whatever else would permit the record (a consent, a role grant): a
    break-glass access is audited and reviewed as one, so its scope is the same for all.
    Never-shared categories are withheld by their own voter.
    """

    rule = "break-glass-scope"
    stages = frozenset({Stage.RESOURCE})

    def vote(self, req: RequestContext, res: ResourceContext) -> Vote:
        """Deny a record in an excluded category when the request is break-glass."""
        if not req.break_glass_valid:
            return ABSTAIN
        excluded = res.restricted & self.policy.break_glass.excluded_categories
        if not excluded:
            return ABSTAIN
        words = self.policy.categories_text(excluded)
        return Vote(
            Effect.DENY,
            (
                reason(
                    ReasonCode.BREAK_GLASS_EXCLUDED,
                    f"Withheld: {words} records are not available under emergency "
                    "(break-glass) access.",
                ),
            ),
        )
