"""Objection: the person's latest applicable decision refuses or excludes the record."""

from __future__ import annotations

from consent.context import ConsentOutcome, RequestContext, ResourceContext
from consent.model import Effect
from consent.policies.base import ABSTAIN, BaseVoter, Stage, Vote
from consent.reasons import ReasonCode, by, day, reason, resource_words


class ObjectionVoter(BaseVoter):
    """Deny a shared record that the latest applicable consent denies, under every preset.

    A deny provision with no record conditions is a refusal (``consent-refused``); one
    limited to some records (by type, label, holder or instance) is an exclusion
    (``excluded-by-consent``).
    """

    rule = "objection"
    stages = frozenset({Stage.RESOURCE})

    def vote(self, req: RequestContext, res: ResourceContext) -> Vote:
        """Deny when the deciding consent provision is a deny."""
        outcome = res.outcome
        if outcome is None or outcome.permit:
            return ABSTAIN
        node = outcome.node
        key = (
            self.rule,
            id(node),
            res.source.name,
            res.candidate.resource_type,
            res.categories & node.path_categories,
        )
        vote = req.cache.get(key)
        if vote is None:
            vote = req.cache[key] = self._deny(res, outcome)
        return vote  # type: ignore[return-value]

    def _deny(self, res: ResourceContext, outcome: ConsentOutcome) -> Vote:
        record, node = outcome.record, outcome.node
        assert record.recorded is not None  # only dated consents are in force
        when = day(record.recorded, self.policy.time_zone)
        if node.partial:
            named = res.categories & node.path_categories
            what = (
                self.policy.categories_text(named)
                if named
                else resource_words(res.candidate.resource_type)
            )
            why = reason(
                ReasonCode.EXCLUDED_BY_CONSENT,
                f"Withheld: {what} records are excluded by the person's consent "
                f"(recorded {when}{by(record.recorded_by)}).",
            )
        else:
            why = reason(
                ReasonCode.CONSENT_REFUSED,
                f"Withheld: the person's decision recorded {when}{by(record.recorded_by)} "
                f"does not allow sharing {res.source.text} records with {self.policy.audience}.",
            )
        return Vote(Effect.DENY, (why,), consent=record.reference, provision=node.provision.path)
