"""Restricted demographics: a person's address and contact details withheld from every view."""

from __future__ import annotations

from consent.context import RequestContext, ResourceContext
from consent.model import Reason
from consent.policy import Policy
from consent.reasons import ReasonCode, reason


class RestrictedDemographicsRedactor:
    """Strip address and contact elements when the person's demographics are restricted."""

    rule = "restricted-demographics"

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.note = reason(
            ReasonCode.RESTRICTED_DEMOGRAPHICS,
            "Address and contact details are withheld: this person's address is restricted.",
        )

    def redact(
        self, req: RequestContext, res: ResourceContext
    ) -> tuple[tuple[str, ...], Reason | None]:
        """Return the elements to strip from this resource, and the note."""
        if not req.person.restricted_demographics:
            return (), None
        paths = self.policy.redactions.get(res.candidate.resource_type, ())
        return (paths, self.note) if paths else ((), None)
