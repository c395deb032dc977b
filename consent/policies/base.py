"""The voter plugin contract and the vote it returns."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Protocol

from consent.context import RequestContext, ResourceContext
from consent.model import Effect, Reason
from consent.policy import Policy


class Stage(StrEnum):
    """When a voter is asked."""

    # Before fetch: may this user see anything of this person? Asked once per request.
    SCREEN = "screen"
    # Per resource: may this resource be released? Asked once per candidate resource.
    RESOURCE = "resource"


@dataclass(frozen=True, slots=True)
class Vote:
    """A voter's answer: permit, deny or abstain, with reasons for the social worker.

    ``consent`` and ``provision`` name the Consent version and provision the vote rests
    on, when it rests on one. An abstaining vote may carry a reason: the engine shows the
    first such reason when every voter abstains and the policy default decides.
    """

    effect: Effect
    reasons: tuple[Reason, ...] = ()
    consent: str | None = None
    provision: str | None = None


ABSTAIN = Vote(Effect.ABSTAIN)


class Voter(Protocol):
    """A policy rule that votes PERMIT, DENY or ABSTAIN (STYLE rule 8).

    When called: the engine builds one instance per policy (``ConsentEngine``), skipping
    voters whose ``enabled(policy)`` is false; it calls ``screen`` once per request for
    voters whose ``stages`` include ``SCREEN``, and ``vote`` once per candidate resource
    for voters whose ``stages`` include ``RESOURCE`` (only after the screen permitted).
    How votes combine: any DENY wins (the screen shows every DENY's reasons, a resource
    the first DENY's, in registry order); otherwise the first PERMIT in registry order
    decides; if all abstain the policy default decides.

    What it must not do: read the clock, the database, files or the network; keep state
    between calls (except votes memoised in ``req.cache``, which lives as long as the
    request, keyed by everything the vote depends on); mutate its arguments; put withheld
    content (record text, resource ids) in a reason. It must be deterministic: the same
    contexts give the same vote. It must not look at ``res.candidate.resource_id``: the
    engine reuses one decision for resources with the same type, source, labels and
    category (consent provisions naming instances are handled in ``RequestContext``).

    Cost: ``vote`` runs for every resource of every request, so it must be a few set or
    dict lookups on the contexts; anything that does not vary per resource belongs in
    ``RequestContext`` (computed once). Reason text may be formatted only on the branch
    that returns a non-abstain vote.
    """

    rule: ClassVar[str]
    stages: ClassVar[frozenset[Stage]]

    @classmethod
    def enabled(cls, policy: Policy) -> bool:
        """Return whether this voter takes part under ``policy``."""
        ...

    def screen(self, req: RequestContext) -> Vote:
        """Vote on the request as a whole (before anything is fetched)."""
        ...

    def vote(self, req: RequestContext, res: ResourceContext) -> Vote:
        """Vote on one resource."""
        ...


class BaseVoter:
    """Defaults for voters: enabled under every policy, abstaining in every stage."""

    rule: ClassVar[str] = ""
    stages: ClassVar[frozenset[Stage]] = frozenset()

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    @classmethod
    def enabled(cls, policy: Policy) -> bool:
        """Return whether this voter takes part under ``policy``."""
        return True

    def screen(self, req: RequestContext) -> Vote:
        """Abstain."""
        return ABSTAIN

    def vote(self, req: RequestContext, res: ResourceContext) -> Vote:
        """Abstain."""
        return ABSTAIN


class Redactor(Protocol):
    """The redact stage: which elements of a released resource to strip.

    When called: once per permitted resource, after voting. It must not read the clock,
    database or network, nor change the decision's effect. Cost: a dict lookup.
    Returns element paths (``Patient.address``) and a note for the social worker, or
    ``((), None)`` when nothing is stripped.
    """

    def redact(
        self, req: RequestContext, res: ResourceContext
    ) -> tuple[tuple[str, ...], Reason | None]:
        """Return the element paths to strip and the note explaining why."""
        ...
