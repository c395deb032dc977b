"""Break-glass: time-limited emergency access with a written reason, always reviewed by IG."""

from __future__ import annotations

from consent.context import RequestContext, ResourceContext
from consent.model import Effect
from consent.policies.base import ABSTAIN, BaseVoter, Stage, Vote
from consent.reasons import ReasonCode, moment, reason


class BreakGlassVoter(BaseVoter):
    """Deny an invalid break-glass request; let a valid one stand in for relationship and consent.

    Valid means: the user holds a role the policy allows to break glass, the written
    reason is long enough, and the request time is within the time limit from when the
    emergency access began. A valid break-glass permits shared records that nothing else
    permits; it never overrides a deny (an objection, a never-shared or excluded category).
    """

    rule = "break-glass"
    stages = frozenset({Stage.SCREEN, Stage.RESOURCE})

    def screen(self, req: RequestContext) -> Vote:
        """Deny for each problem with the break-glass request; permit a valid one."""
        bg = req.break_glass
        if bg is None:
            return ABSTAIN
        tz = self.policy.time_zone
        if bg.valid:
            return Vote(
                Effect.PERMIT,
                (
                    reason(
                        ReasonCode.BREAK_GLASS,
                        "Shown under emergency (break-glass) access until "
                        f"{moment(bg.expires, tz)}; IG will review this access.",
                    ),
                ),
            )
        texts = {
            ReasonCode.BREAK_GLASS_ROLE: "Withheld: your role does not allow emergency "
            "(break-glass) access.",
            ReasonCode.BREAK_GLASS_REASON: "Withheld: emergency (break-glass) access needs a "
            f"written reason of at least {self.policy.break_glass.min_reason_length} characters.",
            ReasonCode.BREAK_GLASS_EXPIRED: "Withheld: your emergency (break-glass) access is "
            f"not in effect (it runs from {moment(bg.started, tz)} to {moment(bg.expires, tz)}); "
            "ask for it again if you still need it.",
        }
        return Vote(Effect.DENY, tuple(reason(code, texts[code]) for code in bg.problems))

    def vote(self, req: RequestContext, res: ResourceContext) -> Vote:
        """Permit a shared record under valid break-glass (other voters may still deny)."""
        if not (req.break_glass_valid and res.source.consent_required):
            return ABSTAIN
        assert req.break_glass is not None  # narrowed by break_glass_valid
        return Vote(
            Effect.PERMIT,
            (
                reason(
                    ReasonCode.BREAK_GLASS,
                    f"Shown under emergency (break-glass) access until "
                    f"{moment(req.break_glass.expires, self.policy.time_zone)}: no recorded "
                    "consent covers this, and IG will review the access.",
                ),
            ),
        )
