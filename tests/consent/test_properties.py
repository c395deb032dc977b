"""Properties of the consent engine that hold in every world (hypothesis)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent import ConsentEngine, Decision
from tests.consent.worlds import DrawChooser, World, gen_provision, gen_world, to_engine

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GRANTED_BY_POLICY = {"own-records", "implied-direct-care", "break-glass", "default"}


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """A generated world, drawn so that failures shrink."""
    return gen_world(DrawChooser(draw))


def decisions(world: World) -> list[Decision]:
    """Return the engine's decisions for the world's candidates."""
    policy, request, person, candidates = to_engine(world)
    return ConsentEngine(policy).evaluate(request, person).decide_all(candidates)


def nodes(prov: dict[str, Any], path: str = "provision") -> list[tuple[str, dict[str, Any]]]:
    """Return every provision in a tree with its path."""
    out = [(path, prov)]
    for i, child in enumerate(prov["children"]):
        out += nodes(child, f"{path}.provision[{i}]")
    return out


def in_force(world: World, ref: str) -> bool:
    """Return whether the consent a decision names is active, readable and recorded by then."""
    for c in world.consents:
        names = {f"Consent/{c['id']}", f"Consent/{c['id']}/_history/{c['version']}"}
        if ref in names:
            return (
                c["status"] == "active"
                and c["scope"] == "patient-privacy"
                and not c["unreadable"]
                and c["recorded"] <= world.request["at"]
            )
    return False


def break_glass_valid(world: World) -> bool:
    """Return whether the world's break-glass request is in effect (from the policy's rules)."""
    policy, request, person, _ = to_engine(world)
    return ConsentEngine(policy).evaluate(request, person).context.break_glass_valid


class TestNoPermitWithoutBasis:
    @SETTINGS
    @given(worlds())
    def test_every_permit_rests_on_an_active_consent_or_an_explicit_grant(
        self, world: World
    ) -> None:
        policy = world.policy
        for cand, d in zip(world.candidates, decisions(world), strict=True):
            if not d.permitted:
                continue
            shared = policy["sources"][cand["source"]]["consent_required"]
            if d.rule == "consent":
                assert d.consent is not None
                assert in_force(world, d.consent)
                continue
            assert d.rule in GRANTED_BY_POLICY, d
            if d.rule == "own-records":
                assert not shared
            elif d.rule == "implied-direct-care":
                assert policy["basis"] == "direct-care-implied"
                assert shared
            elif d.rule == "break-glass":
                assert break_glass_valid(world)
                assert shared
            else:
                assert policy["default"] == "permit"

    @SETTINGS
    @given(worlds())
    def test_explicit_consent_shares_health_records_only_on_a_consent(self, world: World) -> None:
        world.policy["basis"] = "explicit-consent"
        world.policy["default"] = "deny"
        world.request["break_glass"] = None
        for cand, d in zip(world.candidates, decisions(world), strict=True):
            if d.permitted and world.policy["sources"][cand["source"]]["consent_required"]:
                assert d.rule == "consent"
                assert d.consent is not None
                assert in_force(world, d.consent)


class TestDenyBeatsPermit:
    @SETTINGS
    @given(worlds(), st.data())
    def test_a_deny_beats_an_identical_permit_at_the_same_level(
        self, world: World, data: st.DataObject
    ) -> None:
        if not world.consents:
            return
        ch = DrawChooser(data.draw)
        consent = world.consents[ch.integer(0, len(world.consents) - 1)]
        tree = nodes(consent["root"])
        path, node = tree[ch.integer(0, len(tree) - 1)]
        twin = gen_provision(ch, 0, world.request["at"])
        permit = dict(twin, type="permit", children=[])
        deny = dict(twin, type="deny", children=[])
        first, second = (permit, deny) if ch.chance(50) else (deny, permit)
        node["children"] += [first, second]
        permit_index = len(node["children"]) - (2 if first is permit else 1)
        permit_path = f"{path}.provision[{permit_index}]"
        for d in decisions(world):
            # The permit applies exactly when its twin deny does, so it can never decide.
            assert not (d.consent is not None and d.provision == permit_path and d.permitted), d


class TestAddingADeny:
    @SETTINGS
    @given(worlds(), st.data())
    def test_adding_a_deny_never_turns_a_deny_into_a_permit(
        self, world: World, data: st.DataObject
    ) -> None:
        before = decisions(world)
        ch = DrawChooser(data.draw)
        changed = copy.deepcopy(world)
        deny = gen_provision(ch, 0, world.request["at"])
        deny["type"] = "deny"
        if changed.consents and ch.chance(60):
            consent = changed.consents[ch.integer(0, len(changed.consents) - 1)]
            tree = nodes(consent["root"])
            tree[ch.integer(0, len(tree) - 1)][1]["children"].append(deny)
        else:
            recorded = ch.choice([c["recorded"] for c in changed.consents] + [world.request["at"]])
            changed.consents.append(
                {
                    "id": "zz-objection",
                    "version": None,
                    "status": "active",
                    "scope": "patient-privacy",
                    "recorded": recorded,
                    "recorded_by": None,
                    "unreadable": False,
                    "root": deny,
                }
            )
            changed.encodings.append({"root_type_by_policy_rule": False, "defect": ""})
        after = decisions(changed)
        for b, a in zip(before, after, strict=True):
            if not b.permitted:
                assert not a.permitted, (b, a)


class TestBreakGlassScope:
    @SETTINGS
    @given(worlds(), st.sampled_from(["", "Unconscious at home, need medicines list now"]))
    def test_break_glass_never_exposes_an_excluded_category(
        self, world: World, reason: str
    ) -> None:
        world.request["break_glass"] = {"reason": reason, "started_at": None}
        excluded = set(world.policy["break_glass"]["excluded_categories"]) | {
            name
            for name, cat in world.policy["categories"].items()
            if cat["tier"] == "never-shared"
        }
        for d in decisions(world):
            assert d.break_glass
            if d.permitted:
                assert not d.categories & excluded, d


class TestAlwaysWithheld:
    @SETTINGS
    @given(worlds())
    def test_never_shared_categories_are_never_released(self, world: World) -> None:
        never = {
            name
            for name, cat in world.policy["categories"].items()
            if cat["tier"] == "never-shared"
        }
        for d in decisions(world):
            assert not (d.permitted and d.categories & never), d

    @SETTINGS
    @given(worlds())
    def test_an_unreadable_consent_never_lets_shared_records_through(self, world: World) -> None:
        if not any(
            c["unreadable"] and c["status"] == "active" and c["scope"] == "patient-privacy"
            for c in world.consents
        ):
            return
        for cand, d in zip(world.candidates, decisions(world), strict=True):
            source = world.policy["sources"].get(cand["source"])
            if source is not None and source["consent_required"]:
                assert not d.permitted, d


class TestDecisionsAreStable:
    @SETTINGS
    @given(worlds())
    def test_reused_decisions_equal_fresh_ones(self, world: World) -> None:
        policy, request, person, candidates = to_engine(world)
        engine = ConsentEngine(policy)
        together = engine.evaluate(request, person).decide_all(candidates)
        alone = [engine.evaluate(request, person).decide(c) for c in candidates]
        assert together == alone

    @SETTINGS
    @given(worlds())
    def test_reasons_never_carry_resource_ids(self, world: World) -> None:
        ids = {c["id"] for c in world.candidates}
        for d in decisions(world):
            assert d.reasons
            for r in d.reasons:
                assert r.text.strip()
                assert r.text[0].isupper()
                words = set(r.text.replace(".", " ").replace(",", " ").split())
                assert not words & ids, r
