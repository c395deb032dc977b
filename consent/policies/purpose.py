"""Purpose: the bridge shares only for the purposes the policy lists (direct care)."""

from __future__ import annotations

from consent.context import RequestContext
from consent.model import Effect
from consent.policies.base import ABSTAIN, BaseVoter, Stage, Vote
from consent.reasons import ReasonCode, reason


class PurposeVoter(BaseVoter):
    """Deny a request made for a purpose the policy does not share for."""

    rule = "purpose"
    stages = frozenset({Stage.SCREEN})

    def screen(self, req: RequestContext) -> Vote:
        """Deny unless the request's purpose of use is one the policy lists."""
        if req.request.purpose in self.policy.purposes:
            return ABSTAIN
        allowed = " or ".join(self.policy.purposes.values())
        return Vote(
            Effect.DENY,
            (
                reason(
                    ReasonCode.PURPOSE_NOT_PERMITTED,
                    f"Withheld: records are shared only for {allowed}, and this request was "
                    "made for another purpose.",
                ),
            ),
        )
