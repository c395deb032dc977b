"""Never shared: sexual health and gender recognition records are never released."""

from __future__ import annotations

from consent.context import RequestContext, ResourceContext
from consent.model import Effect
from consent.policies.base import ABSTAIN, BaseVoter, Stage, Vote
from consent.reasons import ReasonCode, reason


class NeverSharedVoter(BaseVoter):
    """Deny every record in a never-shared category, whatever consent, role or break-glass."""

    rule = "never-shared"
    stages = frozenset({Stage.RESOURCE})

    def vote(self, req: RequestContext, res: ResourceContext) -> Vote:
        """Deny a record carrying a never-shared category."""
        if not res.never_shared:
            return ABSTAIN
        words = self.policy.categories_text(res.never_shared)
        return Vote(
            Effect.DENY,
            (
                reason(
                    ReasonCode.NEVER_SHARED,
                    f"Withheld: {words} records are never shared with {self.policy.audience}.",
                ),
            ),
        )
