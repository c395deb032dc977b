"""Role: the user must hold a role the policy knows, and one that covers the record's source."""

from __future__ import annotations

from consent.context import RequestContext, ResourceContext
from consent.model import Effect
from consent.policies.base import ABSTAIN, BaseVoter, Stage, Vote
from consent.reasons import ReasonCode, reason


class RoleVoter(BaseVoter):
    """Deny a user with no policy role, and records from sources their roles do not cover."""

    rule = "role"
    stages = frozenset({Stage.SCREEN, Stage.RESOURCE})

    def screen(self, req: RequestContext) -> Vote:
        """Deny when none of the user's roles is in the policy."""
        if req.known_roles:
            return ABSTAIN
        return Vote(
            Effect.DENY,
            (
                reason(
                    ReasonCode.ROLE_NOT_PERMITTED,
                    "Withheld: none of your roles gives access to this person's records "
                    "through the bridge.",
                ),
            ),
        )

    def vote(self, req: RequestContext, res: ResourceContext) -> Vote:
        """Deny a record from a source none of the user's roles covers."""
        if res.source.name in req.sources:
            return ABSTAIN
        return Vote(
            Effect.DENY,
            (
                reason(
                    ReasonCode.ROLE_SOURCE_NOT_PERMITTED,
                    f"Withheld: your role does not give access to {res.source.text} records.",
                ),
            ),
        )
