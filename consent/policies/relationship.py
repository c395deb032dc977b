"""Relationship: a legitimate care relationship with the person (or break-glass instead)."""

from __future__ import annotations

from consent.context import RequestContext
from consent.model import Effect
from consent.policies.base import ABSTAIN, BaseVoter, Stage, Vote
from consent.reasons import RELATIONSHIP_WORDS, ReasonCode, day, reason


class RelationshipVoter(BaseVoter):
    """Permit a user with a care relationship; deny one without, unless glass is broken.

    A relationship is the allocated worker, a member of the allocated team, or a team
    holding an open referral or episode for the person, each in force at the request time.
    """

    rule = "relationship"
    stages = frozenset({Stage.SCREEN})

    def screen(self, req: RequestContext) -> Vote:
        """Vote on the care relationship."""
        rel = req.relationship
        if rel is not None:
            since = rel.period.start
            when = f" (since {day(since, self.policy.time_zone)})" if since is not None else ""
            return Vote(
                Effect.PERMIT,
                (
                    reason(
                        ReasonCode.CARE_RELATIONSHIP,
                        f"Shown: {RELATIONSHIP_WORDS[rel.kind.value]}{when}.",
                    ),
                ),
            )
        if req.break_glass_valid:
            # Break-glass stands in for the relationship; its voter permits and explains.
            return ABSTAIN
        return Vote(
            Effect.DENY,
            (
                reason(
                    ReasonCode.NO_CARE_RELATIONSHIP,
                    "Withheld: you have no care relationship with this person (you are not "
                    "allocated, and your team holds no open referral or episode for them).",
                ),
            ),
        )
