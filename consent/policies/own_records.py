"""Own records: records from a source that needs no consent (the user's own service's)."""

from __future__ import annotations

from consent.context import RequestContext, ResourceContext
from consent.model import Effect
from consent.policies.base import ABSTAIN, BaseVoter, Stage, Vote
from consent.policy import Policy
from consent.reasons import ReasonCode, reason


class OwnRecordsVoter(BaseVoter):
    """Permit records from a source the policy marks ``consent_required: false``.

    Other voters still apply: the care relationship, the role's sources, restricted
    (role grant only) and never-shared categories.
    """

    rule = "own-records"
    stages = frozenset({Stage.RESOURCE})

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        # The vote depends only on the source, so it is made once per source.
        self.votes = {
            name: Vote(
                Effect.PERMIT,
                (
                    reason(
                        ReasonCode.OWN_RECORD,
                        f"Shown: this {source.text} record is available to your role for "
                        "this person's care.",
                    ),
                ),
            )
            for name, source in policy.sources.items()
            if not source.consent_required
        }

    def vote(self, req: RequestContext, res: ResourceContext) -> Vote:
        """Permit a record whose source needs no consent."""
        return self.votes.get(res.source.name, ABSTAIN)
