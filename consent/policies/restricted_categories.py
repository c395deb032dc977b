"""Restricted categories: mental health, substance misuse, domestic abuse, safeguarding."""

from __future__ import annotations

from consent.context import RequestContext, ResourceContext
from consent.model import Effect
from consent.policies.base import ABSTAIN, BaseVoter, Stage, Vote
from consent.reasons import ReasonCode, reason


class RestrictedCategoriesVoter(BaseVoter):
    """Deny a restricted-category record unless each of its categories is covered.

    A category is covered when the policy grants it to one of the user's roles, or when
    the consent that permits the record names it (a security label of that category on
    the deciding provision or one of its ancestors). Implied sharing and break-glass
    never cover a restricted category on their own.
    """

    rule = "restricted-categories"
    stages = frozenset({Stage.RESOURCE})

    def vote(self, req: RequestContext, res: ResourceContext) -> Vote:
        """Deny when a restricted category of the record is not covered."""
        if not res.restricted:
            return ABSTAIN
        uncovered = res.restricted - req.grants
        outcome = res.outcome
        if outcome is not None and outcome.permit:
            uncovered -= outcome.node.path_categories
        if not uncovered:
            return ABSTAIN
        words = self.policy.categories_text(uncovered)
        return Vote(
            Effect.DENY,
            (
                reason(
                    ReasonCode.RESTRICTED_CATEGORY,
                    f"Withheld: {words} records are shared only when the person's consent "
                    "explicitly includes them or your role allows them.",
                ),
            ),
        )
