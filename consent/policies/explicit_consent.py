"""Explicit consent: a recorded consent that permits the record is a basis to share it."""

from __future__ import annotations

from consent.context import ConsentOutcome, RequestContext, ResourceContext
from consent.model import Effect
from consent.policies.base import ABSTAIN, BaseVoter, Stage, Vote
from consent.reasons import ReasonCode, by, day, last_day, reason


class ExplicitConsentVoter(BaseVoter):
    """Permit a shared record the latest applicable consent permits (under every preset).

    With no applicable consent it abstains with a ``no-consent`` reason, which is what the
    social worker reads when the policy default (deny) decides.
    """

    rule = "consent"
    stages = frozenset({Stage.RESOURCE})

    def vote(self, req: RequestContext, res: ResourceContext) -> Vote:
        """Permit when the deciding consent provision permits."""
        if not res.source.consent_required:
            return ABSTAIN
        outcome = res.outcome
        policy = self.policy
        if outcome is None:
            return Vote(
                Effect.ABSTAIN,
                (
                    reason(
                        ReasonCode.NO_CONSENT,
                        f"Withheld: no recorded consent allows sharing {res.source.text} "
                        f"records with {policy.audience}.",
                    ),
                ),
            )
        if not outcome.permit:
            return ABSTAIN
        named = res.restricted & outcome.node.path_categories
        key = (self.rule, id(outcome.node), res.source.name, named)
        vote = req.cache.get(key)
        if vote is None:
            vote = req.cache[key] = self._permit(req, res, outcome, named)
        return vote  # type: ignore[return-value]

    def _permit(
        self,
        req: RequestContext,
        res: ResourceContext,
        outcome: ConsentOutcome,
        named: frozenset[str],
    ) -> Vote:
        policy = self.policy
        record, node = outcome.record, outcome.node
        tz = policy.time_zone
        assert record.recorded is not None  # only dated consents are in force
        until = f" until {last_day(node.end, tz)}" if node.end is not None else ""
        including = (
            f", explicitly including {policy.categories_text(named)} records" if named else ""
        )
        purpose = policy.purposes[req.request.purpose]
        return Vote(
            Effect.PERMIT,
            (
                reason(
                    ReasonCode.CONSENT_PERMITS,
                    f"Shown: the consent recorded {day(record.recorded, tz)}"
                    f"{by(record.recorded_by)} allows sharing {res.source.text} records"
                    f"{including} with {policy.audience} for {purpose}{until}.",
                ),
            ),
            consent=record.reference,
            provision=node.provision.path,
        )
