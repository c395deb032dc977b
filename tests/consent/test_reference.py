"""The engine agrees with the independent reference model on 10,000 generated worlds."""

from __future__ import annotations

import time

from consent import ConsentEngine, Decision
from tests.consent.reference_model import Expected, expected_decisions
from tests.consent.worlds import RandomChooser, World, gen_world, to_engine

WORLDS = 10_000
SEED = 20260601


def observed(d: Decision) -> Expected:
    """Return an engine decision in the reference model's shape."""
    return Expected(
        effect=d.effect.value,
        rule=d.rule,
        codes=d.codes,
        deny_rules=d.deny_rules,
        consent=d.consent,
        provision=d.provision,
        break_glass=d.break_glass,
        expires_at=d.expires_at,
        alert_ig=d.alert_ig,
        redactions=d.redactions,
        categories=d.categories,
    )


def engine_decisions(world: World) -> list[Expected]:
    """Return the engine's decisions for every candidate in the world."""
    policy, request, person, candidates = to_engine(world)
    access = ConsentEngine(policy).evaluate(request, person)
    return [observed(d) for d in access.decide_all(candidates)]


class TestReferenceModel:
    def test_engine_agrees_with_reference_model_on_generated_worlds(self) -> None:
        started = time.perf_counter()
        disagreements: list[str] = []
        decisions = 0
        effects: dict[str, int] = {}
        rules: set[str] = set()
        for n in range(WORLDS):
            world = gen_world(RandomChooser(SEED + n))
            want = expected_decisions(world)
            got = engine_decisions(world)
            decisions += len(want)
            for i, (w, g) in enumerate(zip(want, got, strict=True)):
                effects[g.effect] = effects.get(g.effect, 0) + 1
                rules.add(g.rule)
                if w != g and len(disagreements) < 5:
                    disagreements.append(
                        f"world seed {SEED + n}, candidate {i}:\n  want {w}\n  got  {g}"
                    )
                elif w != g:
                    disagreements.append("…")
        elapsed = time.perf_counter() - started
        assert disagreements == [], (
            "\n".join(disagreements[:5]) + f"\n({len(disagreements)} in all)"
        )
        # The worlds must exercise the table, not just deny everything at the screen.
        assert effects["permit"] > decisions // 10, effects
        assert effects["deny"] > decisions // 10, effects
        every_rule = {
            "role",
            "purpose",
            "relationship",
            "break-glass",
            "source",
            "never-shared",
            "break-glass-scope",
            "unreadable-consent",
            "objection",
            "restricted-categories",
            "consent",
            "implied-direct-care",
            "own-records",
            "default",
        }
        assert every_rule - rules == set(), "rules never decided in the generated worlds"
        print(f"{WORLDS} worlds, {decisions} decisions, {elapsed:.1f}s")  # noqa: T201
