"""The consent engine: staged, pure decisions from voters (STYLE rule 8).

Stages: *screen* (before fetch: may this user see anything of this person?), *resource*
(per candidate: may it be released?), *redact* (which elements of a released resource to
strip). ``decide`` returns decisions; ``require`` raises ``ConsentDenied``.

Typical use by the access gate::

    engine = ConsentEngine(load_policy(settings.consent_policy))   # once, at start
    access = engine.evaluate(request, person)                      # once per request
    access.require()                                               # before fetching
    decisions = access.decide_all(candidates)                      # per resource
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from consent.context import RequestContext, ResourceContext
from consent.errors import ConsentDenied
from consent.model import (
    AccessRequest,
    BreakGlassGrant,
    Candidate,
    Decision,
    Effect,
    PersonContext,
    Reason,
)
from consent.policies import REDACTORS, VOTERS, BaseVoter, Redactor, Stage, Voter
from consent.policy import Policy
from consent.reasons import ReasonCode, reason

# Enum member lookups go through a descriptor; the per-resource loop uses plain names.
PERMIT, DENY, ABSTAIN = Effect.PERMIT, Effect.DENY, Effect.ABSTAIN


class ConsentEngine:
    """Decisions under one policy; build once, then ``evaluate`` each request."""

    def __init__(
        self,
        policy: Policy,
        *,
        voters: Sequence[type[BaseVoter]] = VOTERS,
        redactors: Sequence[Callable[[Policy], Redactor]] = REDACTORS,
    ) -> None:
        self.policy = policy
        active: list[Voter] = [cls(policy) for cls in voters if cls.enabled(policy)]
        self.screen_voters = tuple(v for v in active if Stage.SCREEN in v.stages)
        self.resource_voters = tuple(v for v in active if Stage.RESOURCE in v.stages)
        self.redactors = tuple(make(policy) for make in redactors)
        self.default_permit = reason(
            ReasonCode.POLICY_DEFAULT,
            "Shown: the sharing policy shows records that no other rule decides.",
        )
        self.default_deny = reason(
            ReasonCode.POLICY_DEFAULT,
            "Withheld: no rule of the sharing policy allows this to be shown.",
        )
        self.unknown_source = reason(
            ReasonCode.UNKNOWN_SOURCE,
            "Withheld: the record comes from a system the sharing policy does not list, so "
            "it is not shared.",
        )

    def evaluate(self, request: AccessRequest, person: PersonContext) -> Evaluation:
        """Return the evaluation of one request about one person (screen done)."""
        return Evaluation(self, RequestContext(self.policy, request, person))


class Evaluation:
    """One request about one person: the screen decision, then per-resource decisions.

    ``screen`` is the before-fetch decision; ``break_glass`` the emergency access in
    effect (for the audit and the IG review queue), or ``None``.
    """

    def __init__(self, engine: ConsentEngine, req: RequestContext) -> None:
        self.engine = engine
        self.context = req
        policy = engine.policy
        bg = req.break_glass
        self._memo: dict[tuple[object, ...], Decision] = {}
        self._break_glass = bg is not None
        self._expires = bg.expires if bg is not None and bg.valid else None
        self.break_glass: BreakGlassGrant | None = None
        if bg is not None and bg.valid and req.request.break_glass is not None:
            never = frozenset(n for n, c in policy.categories.items() if not c.restricted)
            self.break_glass = BreakGlassGrant(
                reason=req.request.break_glass.reason,
                started_at=bg.started,
                expires_at=bg.expires,
                withheld_categories=policy.break_glass.excluded_categories | never,
            )
        # The screen shows every problem: each is one the user can act on (ask to be
        # allocated, give a longer break-glass reason), and none reveals any record.
        denies: list[Reason] = []
        deny_rules: list[str] = []
        permit: Decision | None = None
        for voter in engine.screen_voters:
            vote = voter.screen(req)
            if vote.effect is Effect.DENY:
                deny_rules.append(voter.rule)
                denies.extend(vote.reasons)
            elif vote.effect is Effect.PERMIT and permit is None:
                permit = self._decision(Effect.PERMIT, vote.reasons, voter.rule)
        if deny_rules:
            self.screen = self._decision(
                Effect.DENY, tuple(denies), deny_rules[0], deny_rules=tuple(deny_rules)
            )
        elif permit is not None:
            self.screen = permit
        elif policy.default_permit:
            self.screen = self._decision(Effect.PERMIT, (engine.default_permit,), "default")
        else:
            self.screen = self._decision(
                Effect.DENY, (engine.default_deny,), "default", deny_rules=("default",)
            )

    def _decision(
        self,
        effect: Effect,
        reasons: tuple[Reason, ...],
        rule: str,
        *,
        consent: str | None = None,
        provision: str | None = None,
        alert_ig: bool = False,
        redactions: tuple[str, ...] = (),
        categories: frozenset[str] = frozenset(),
        deny_rules: tuple[str, ...] = (),
    ) -> Decision:
        return Decision(
            effect=effect,
            reasons=reasons,
            rule=rule,
            policy=self.engine.policy.name,
            consent=consent,
            provision=provision,
            break_glass=self._break_glass,
            expires_at=self._expires,
            alert_ig=alert_ig,
            redactions=redactions,
            categories=categories,
            deny_rules=deny_rules,
        )

    def decide(self, candidate: Candidate) -> Decision:
        """Return the decision for one candidate resource."""
        if self.screen.effect is DENY:
            # Nothing about the person is fetched, so nothing more specific is said.
            return self.screen
        # Decisions carry no resource id, and resources with the same type, source, labels
        # and category get the same decision (voters may not look at the id; consent
        # provisions naming instances are the exception, handled by keying on the id).
        key = (
            candidate.resource_type,
            candidate.source_system,
            candidate.security_labels,
            candidate.category,
            candidate.resource_id if self.context.by_instance else None,
        )
        decision = self._memo.get(key)
        if decision is None:
            decision = self._memo[key] = self._decide(candidate)
        return decision

    def _decide(self, candidate: Candidate) -> Decision:
        req = self.context
        source = req.policy.sources.get(candidate.source_system)
        if source is None:
            return self._decision(
                Effect.DENY, (self.engine.unknown_source,), "source", deny_rules=("source",)
            )
        res = req.resource(candidate, source)
        deny_vote = None
        deny_rules: list[str] = []
        permit_vote = None
        permit_rule = ""
        abstained: tuple[Reason, ...] = ()
        for voter in self.engine.resource_voters:
            vote = voter.vote(req, res)
            effect = vote.effect
            if effect is ABSTAIN:
                if vote.reasons and not abstained:
                    abstained = vote.reasons
            elif effect is DENY:
                if deny_vote is None:
                    deny_vote = vote
                deny_rules.append(voter.rule)
            elif permit_vote is None:
                permit_vote, permit_rule = vote, voter.rule
        if deny_vote is not None:
            # One clear reason (the deciding rule's); every denying rule goes to the audit.
            return self._decision(
                Effect.DENY,
                deny_vote.reasons,
                deny_rules[0],
                consent=deny_vote.consent,
                provision=deny_vote.provision,
                categories=res.categories,
                deny_rules=tuple(deny_rules),
            )
        if permit_vote is None:
            if req.policy.default_permit:
                return self._released((self.engine.default_permit,), "default", None, None, res)
            return self._decision(
                Effect.DENY,
                abstained or (self.engine.default_deny,),
                "default",
                categories=res.categories,
                deny_rules=("default",),
            )
        return self._released(
            permit_vote.reasons, permit_rule, permit_vote.consent, permit_vote.provision, res
        )

    def _released(
        self,
        reasons: tuple[Reason, ...],
        rule: str,
        consent: str | None,
        provision: str | None,
        res: ResourceContext,
    ) -> Decision:
        notes = list(reasons)
        alert = bool(res.restricted)
        if alert:
            words = self.context.policy.categories_text(res.restricted)
            notes.append(
                reason(
                    ReasonCode.IG_ALERT,
                    f"{words[:1].upper()}{words[1:]} records are restricted: IG are told of "
                    "every access.",
                )
            )
        redactions: list[str] = []
        for redactor in self.engine.redactors:
            paths, note = redactor.redact(self.context, res)
            redactions.extend(paths)
            if note is not None:
                notes.append(note)
        return self._decision(
            Effect.PERMIT,
            tuple(notes),
            rule,
            consent=consent,
            provision=provision,
            alert_ig=alert,
            redactions=tuple(redactions),
            categories=res.categories,
        )

    def decide_all(self, candidates: Iterable[Candidate]) -> list[Decision]:
        """Return the decisions for candidate resources, in the same order."""
        return [self.decide(c) for c in candidates]

    def require(self, candidate: Candidate | None = None) -> Decision:
        """Return the permit for a resource (or, with none, the screen); raise ``ConsentDenied``."""
        decision = self.screen if candidate is None else self.decide(candidate)
        if not decision.permitted:
            raise ConsentDenied(decision)
        return decision


def decide(
    policy: Policy,
    request: AccessRequest,
    person: PersonContext,
    candidates: Iterable[Candidate],
) -> list[Decision]:
    """Return one decision per candidate (aligned), under ``policy``."""
    return ConsentEngine(policy).evaluate(request, person).decide_all(candidates)


def require(
    policy: Policy,
    request: AccessRequest,
    person: PersonContext,
    candidate: Candidate | None = None,
) -> Decision:
    """Return the permit for a candidate (or the person); raise ``ConsentDenied`` otherwise."""
    return ConsentEngine(policy).evaluate(request, person).require(candidate)
