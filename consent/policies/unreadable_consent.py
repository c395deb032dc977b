"""Unreadable consent: a recorded decision that cannot be read withholds shared records."""

from __future__ import annotations

from consent.context import RequestContext, ResourceContext
from consent.model import Effect
from consent.policies.base import ABSTAIN, BaseVoter, Stage, Vote
from consent.reasons import ReasonCode, reason


class UnreadableConsentVoter(BaseVoter):
    """Deny shared records while any active Consent for the person cannot be interpreted.

    The unreadable Consent might be a refusal; guessing could release what the person
    refused, so the engine fails closed until it is corrected.
    """

    rule = "unreadable-consent"
    stages = frozenset({Stage.RESOURCE})

    def vote(self, req: RequestContext, res: ResourceContext) -> Vote:
        """Deny a shared record when an unreadable Consent exists."""
        if not (req.unreadable and res.source.consent_required):
            return ABSTAIN
        return Vote(
            Effect.DENY,
            (
                reason(
                    ReasonCode.UNREADABLE_CONSENT,
                    "Withheld: a consent decision recorded for this person could not be read, "
                    f"so {res.source.text} records are not shared until it is corrected.",
                ),
            ),
            consent=req.unreadable[0].reference,
        )
