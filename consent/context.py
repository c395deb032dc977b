"""What voters read: the request facts worked out once, and per-resource facts.

``RequestContext.build`` does everything that does not vary per resource: which of the
user's roles the policy knows, the care relationship, the break-glass state, and the
person's consents filtered to those in force for this request and pruned to the
provisions whose request-level conditions (period, actor, purpose, action) hold. What is
left per resource is a few set lookups (type, labels, custodian, instance).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from consent import codes
from consent.model import AccessRequest, Candidate, Effect, Label, PersonContext, Relationship
from consent.model import RelationshipKind as Kind
from consent.policy import Policy, Source
from consent.reasons import ReasonCode
from consent.record import Actor, ActorKind, ConsentRecord, Provision, UnreadableConsent


@dataclass(frozen=True, slots=True)
class BreakGlassState:
    """A break-glass request checked against the policy: valid, or the problems found."""

    problems: tuple[ReasonCode, ...]
    started: datetime
    expires: datetime

    @property
    def valid(self) -> bool:
        """Return whether the emergency access is in effect."""
        return not self.problems


@dataclass(frozen=True, slots=True)
class Node:
    """A provision whose request-level conditions hold; per-resource conditions remain.

    ``None`` for a condition means "any". ``path_categories`` are the sensitive
    categories named by labels on the path from the root to here (what the person
    explicitly addressed); ``end`` the earliest period end on that path.
    """

    permit: bool
    provision: Provision
    classes: frozenset[str] | None
    labels: frozenset[Label] | None
    custodians: frozenset[str] | None
    data: frozenset[str] | None
    children: tuple[Node, ...]
    path_categories: frozenset[str]
    end: datetime | None

    def matches(
        self, resource_type: str, labels: frozenset[Label], org: str | None, ref: str
    ) -> bool:
        """Return whether the per-resource conditions hold for this resource."""
        return (
            (self.classes is None or resource_type in self.classes)
            and (self.labels is None or not self.labels.isdisjoint(labels))
            and (self.custodians is None or org in self.custodians)
            and (self.data is None or ref in self.data)
        )

    @property
    def partial(self) -> bool:
        """Return whether the provision covers only some records (by type, label, holder)."""
        return not (
            self.classes is None
            and self.labels is None
            and self.custodians is None
            and self.data is None
        )


@dataclass(frozen=True, slots=True)
class ConsentOutcome:
    """What the deciding consent says about one resource, and which provision said it."""

    permit: bool
    record: ConsentRecord
    node: Node


class ResourceContext:
    """Per-resource facts, computed once and shared by every voter (read-only).

    A plain slotted class rather than a frozen dataclass: one is built for every resource,
    and frozen dataclasses are several times slower to construct.
    """

    __slots__ = ("candidate", "categories", "never_shared", "outcome", "restricted", "source")

    def __init__(
        self,
        candidate: Candidate,
        source: Source,
        categories: frozenset[str],
        restricted: frozenset[str],
        never_shared: frozenset[str],
        outcome: ConsentOutcome | None,
    ) -> None:
        self.candidate = candidate
        self.source = source
        self.categories = categories
        self.restricted = restricted
        self.never_shared = never_shared
        self.outcome = outcome


class RequestContext:
    """Per-request facts, computed once before any resource is looked at."""

    __slots__ = (
        "break_glass",
        "by_instance",
        "cache",
        "consent_groups",
        "grants",
        "known_roles",
        "person",
        "policy",
        "relationship",
        "request",
        "sources",
        "unreadable",
    )

    def __init__(self, policy: Policy, request: AccessRequest, person: PersonContext) -> None:
        self.policy = policy
        self.request = request
        self.person = person
        at = request.at
        self.known_roles = tuple(sorted(r for r in request.roles if r in policy.roles))
        roles = [policy.roles[r] for r in self.known_roles]
        self.sources = frozenset().union(*(r.sources for r in roles))
        self.grants = frozenset().union(*(r.restricted_categories for r in roles))
        self.relationship = next(
            (rel for rel in person.relationships if _related(rel, request)), None
        )
        self.break_glass = _break_glass(policy, request)
        unreadable: list[UnreadableConsent] = []
        usable: list[tuple[datetime, str, str, ConsentRecord, Node]] = []
        for rec in person.consents:
            if isinstance(rec, UnreadableConsent):
                unreadable.append(rec)
            elif rec.provision is not None and rec.recorded is not None and rec.recorded <= at:
                root = _compile(rec.provision, request, policy, frozenset(), None)
                if root is not None:
                    usable.append((rec.recorded, rec.id, rec.version or "", rec, root))
        self.unreadable = tuple(unreadable)
        # Only a provision naming resource instances makes a decision depend on the id.
        self.by_instance = any(_names_instances(node) for *_, node in usable)
        # Voters may memoise votes here for this request, keyed by what determines them.
        self.cache: dict[tuple[object, ...], object] = {}
        # Latest first; consents recorded at the same moment form one group, in id order,
        # where a deny beats a permit.
        usable.sort(key=lambda item: (item[1], item[2]))
        usable.sort(key=lambda item: item[0], reverse=True)
        self.consent_groups = tuple(
            tuple((item[3], item[4]) for item in group)
            for _, group in groupby(usable, key=lambda item: item[0])
        )

    @property
    def break_glass_valid(self) -> bool:
        """Return whether this request carries break-glass that is in effect."""
        return self.break_glass is not None and self.break_glass.valid

    def consent_outcome(self, candidate: Candidate, source: Source) -> ConsentOutcome | None:
        """Return what the latest applicable consent says about a resource, if any does."""
        rtype = candidate.resource_type
        labels = candidate.security_labels
        org = source.organisation
        ref = candidate.reference
        for group in self.consent_groups:
            first_permit: ConsentOutcome | None = None
            for record, root in group:
                # Node.matches, inlined: this loop runs for every consent of every resource.
                if (
                    (root.classes is None or rtype in root.classes)
                    and (root.labels is None or not root.labels.isdisjoint(labels))
                    and (root.custodians is None or org in root.custodians)
                    and (root.data is None or ref in root.data)
                ):
                    permit, node = (
                        _evaluate(root, rtype, labels, org, ref)
                        if root.children
                        else (root.permit, root)
                    )
                    if not permit:
                        return ConsentOutcome(False, record, node)
                    if first_permit is None:
                        first_permit = ConsentOutcome(True, record, node)
            if first_permit is not None:
                return first_permit
        return None

    def resource(self, candidate: Candidate, source: Source) -> ResourceContext:
        """Return the per-resource facts for a candidate from a known source."""
        policy = self.policy
        by_label = policy.label_categories
        cats = {by_label[label] for label in candidate.security_labels if label in by_label}
        category = candidate.category
        if category is not None and category in policy.resource_category_categories:
            cats.add(policy.resource_category_categories[category])
        categories = frozenset(cats)
        restricted = frozenset(c for c in categories if policy.categories[c].restricted)
        outcome = self.consent_outcome(candidate, source) if source.consent_required else None
        return ResourceContext(
            candidate, source, categories, restricted, categories - restricted, outcome
        )


def _names_instances(node: Node) -> bool:
    return node.data is not None or any(_names_instances(c) for c in node.children)


def _related(rel: Relationship, request: AccessRequest) -> bool:
    if not rel.period.contains(request.at):
        return False
    if rel.kind is Kind.ALLOCATED_WORKER:
        return rel.user == request.user
    return request.team is not None and rel.team == request.team


def _break_glass(policy: Policy, request: AccessRequest) -> BreakGlassState | None:
    bg = request.break_glass
    if bg is None:
        return None
    rules = policy.break_glass
    problems: list[ReasonCode] = []
    if rules.roles.isdisjoint(request.roles):
        problems.append(ReasonCode.BREAK_GLASS_ROLE)
    if len(bg.reason.strip()) < rules.min_reason_length:
        problems.append(ReasonCode.BREAK_GLASS_REASON)
    started = bg.started_at or request.at
    expires = started + rules.duration
    if not started <= request.at < expires:
        problems.append(ReasonCode.BREAK_GLASS_EXPIRED)
    return BreakGlassState(tuple(problems), started, expires)


def _recipient_matches(actor: Actor, request: AccessRequest) -> bool:
    return (
        (actor.organisation is None or actor.organisation == request.org)
        and (actor.team is None or actor.team == request.team)
        and (not actor.roles or not actor.roles.isdisjoint(request.roles))
    )


def _compile(
    p: Provision,
    request: AccessRequest,
    policy: Policy,
    path_categories: frozenset[str],
    end: datetime | None,
) -> Node | None:
    if p.period is not None:
        if not p.period.contains(request.at):
            return None
        if p.period.end is not None and (end is None or p.period.end < end):
            end = p.period.end
    recipients = [a for a in p.actors if a.kind is ActorKind.RECIPIENT]
    if recipients and not any(_recipient_matches(a, request) for a in recipients):
        return None
    if p.purposes and request.purpose not in p.purposes:
        return None
    if p.actions and p.actions.isdisjoint(codes.VIEW_ACTIONS):
        return None
    # The reader guarantees a custodian names an organisation.
    custodians = frozenset(str(a.organisation) for a in p.actors if a.kind is ActorKind.CUSTODIAN)
    named = {policy.label_categories[lb] for lb in p.labels if lb in policy.label_categories}
    path_categories = path_categories | named
    children = tuple(
        node
        for node in (_compile(c, request, policy, path_categories, end) for c in p.provisions)
        if node is not None
    )
    return Node(
        permit=p.type is Effect.PERMIT,
        provision=p,
        classes=p.classes or None,
        labels=p.labels or None,
        custodians=custodians or None,
        data=p.data or None,
        children=children,
        path_categories=path_categories,
        end=end,
    )


def _evaluate(
    node: Node, rtype: str, labels: frozenset[Label], org: str | None, ref: str
) -> tuple[bool, Node]:
    # The node matches. Nested provisions are exceptions to it: among those that match, a
    # deny beats a permit (first in document order); with none matching, the node decides.
    first_permit: tuple[bool, Node] | None = None
    for child in node.children:
        if child.matches(rtype, labels, org, ref):
            result = _evaluate(child, rtype, labels, org, ref)
            if not result[0]:
                return result
            if first_permit is None:
                first_permit = result
    if first_permit is not None:
        return first_permit
    return node.permit, node
