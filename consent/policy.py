"""The sharing policy: a YAML file validated at start, compiled into lookup tables.

Two presets ship in ``consent/policies/presets/`` (``explicit-consent``, the default, and
``direct-care-implied``); a deployment may point at its own file instead. Every problem
is reported with the file, the key path and a hint; ``docs/consent.md`` describes the
format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from consent.errors import PolicyError, PolicyProblem
from consent.model import Label

PRESETS = ("explicit-consent", "direct-care-implied")
DEFAULT_PRESET = "explicit-consent"

Basis = Literal["explicit-consent", "direct-care-implied"]
Tier = Literal["restricted", "never-shared"]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CategoryConfig(_Strict):
    """A sensitive category: its tier, words for reasons, and what marks a resource as it."""

    tier: Tier
    text: NonEmpty
    labels: list[NonEmpty] = Field(default_factory=list)
    resource_categories: list[NonEmpty] = Field(default_factory=list)


class SourceConfig(_Strict):
    """A source system: words for reasons, whether its data needs consent, its organisation."""

    text: NonEmpty
    consent_required: bool
    organisation: NonEmpty | None = None


class RoleConfig(_Strict):
    """A role: which sources' records it may see, which restricted categories it is granted."""

    text: NonEmpty
    sources: list[NonEmpty] = Field(min_length=1)
    restricted_categories: list[NonEmpty] = Field(default_factory=list)


class BreakGlassConfig(_Strict):
    """Emergency access: who may use it, for how long, how much reason, what it never shows."""

    roles: list[NonEmpty] = Field(default_factory=list)
    duration_minutes: int = Field(ge=1, le=24 * 60)
    min_reason_length: int = Field(ge=1, le=1000)
    excluded_categories: list[NonEmpty] = Field(default_factory=list)


class RestrictedDemographicsConfig(_Strict):
    """Elements withheld, per resource type, when a person's demographics are restricted."""

    redact: dict[NonEmpty, list[NonEmpty]]


class PolicyFile(_Strict):
    """The policy file's shape (``docs/consent.md``, "Policy file")."""

    name: NonEmpty
    title: NonEmpty
    description: NonEmpty
    legal_basis: NonEmpty
    basis: Basis
    default: Literal["deny", "permit"] = "deny"
    time_zone: NonEmpty = "Europe/London"
    audience: NonEmpty
    purposes: dict[NonEmpty, NonEmpty] = Field(min_length=1)
    sources: dict[NonEmpty, SourceConfig] = Field(min_length=1)
    roles: dict[NonEmpty, RoleConfig] = Field(min_length=1)
    categories: dict[NonEmpty, CategoryConfig]
    break_glass: BreakGlassConfig
    restricted_demographics: RestrictedDemographicsConfig


@dataclass(frozen=True, slots=True)
class Category:
    """A compiled sensitive category."""

    name: str
    tier: Tier
    text: str

    @property
    def restricted(self) -> bool:
        """Return whether the category is in the restricted tier."""
        return self.tier == "restricted"


@dataclass(frozen=True, slots=True)
class Source:
    """A compiled source system."""

    name: str
    text: str
    consent_required: bool
    organisation: str | None


@dataclass(frozen=True, slots=True)
class Role:
    """A compiled role."""

    name: str
    text: str
    sources: frozenset[str]
    restricted_categories: frozenset[str]


@dataclass(frozen=True, slots=True)
class BreakGlassRules:
    """Compiled break-glass limits."""

    roles: frozenset[str]
    duration: timedelta
    min_reason_length: int
    excluded_categories: frozenset[str]


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated policy, with the lookup tables the engine needs per resource."""

    name: str
    title: str
    basis: Basis
    default_permit: bool
    time_zone: ZoneInfo
    audience: str
    purposes: Mapping[str, str]
    sources: Mapping[str, Source]
    roles: Mapping[str, Role]
    categories: Mapping[str, Category]
    label_categories: Mapping[Label, str]
    resource_category_categories: Mapping[str, str]
    break_glass: BreakGlassRules
    redactions: Mapping[str, tuple[str, ...]]
    file: str
    spec: PolicyFile

    @classmethod
    def from_mapping(cls, data: Any, *, file: str = "<policy>") -> Policy:
        """Return the policy validated from parsed YAML; raise ``PolicyError`` listing problems."""
        try:
            spec = PolicyFile.model_validate(data)
        except ValidationError as exc:
            raise PolicyError([_problem(file, err) for err in exc.errors()]) from None
        return _compile(spec, file)

    def categories_text(self, names: frozenset[str] | set[str]) -> str:
        """Return the categories' words in policy order, joined for a sentence."""
        words = [c.text for n, c in self.categories.items() if n in names]
        if len(words) <= 1:
            return "".join(words)
        return ", ".join(words[:-1]) + " and " + words[-1]


def load_policy(name_or_path: str | Path = DEFAULT_PRESET) -> Policy:
    """Return a shipped preset by name, or the policy file at a path; raise ``PolicyError``."""
    text_name = str(name_or_path)
    if (
        isinstance(name_or_path, str)
        and "/" not in text_name
        and not text_name.endswith((".yaml", ".yml"))
    ):
        if text_name not in PRESETS:
            raise PolicyError(
                [
                    PolicyProblem(
                        text_name,
                        "",
                        "no such preset",
                        f"use one of {', '.join(PRESETS)}, or a path to a .yaml file",
                    )
                ]
            )
        ref = resources.files("consent.policies") / "presets" / f"{text_name}.yaml"
        return _load_text(ref.read_text(encoding="utf-8"), f"{text_name}.yaml")
    path = Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(
            [
                PolicyProblem(
                    str(path), "", f"cannot read the file ({exc.strerror})", "check the path"
                )
            ]
        ) from None
    return _load_text(text, str(path))


def _load_text(text: str, file: str) -> Policy:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise PolicyError(
            [PolicyProblem(file, where, "not valid YAML", "check indentation and quoting")]
        ) from None
    return Policy.from_mapping(data, file=file)


_HINTS = {
    "extra_forbidden": "remove it or check its spelling against docs/consent.md",
    "missing": "add it (see docs/consent.md, 'Policy file')",
    "literal_error": "use one of the values listed",
    "string_type": "write it as a string",
    "string_too_short": "it cannot be empty",
    "bool_type": "write true or false",
    "int_type": "write a whole number",
    "list_type": "write a list",
    "dict_type": "write a mapping of key: value",
    "model_type": "write a mapping of key: value",
    "too_short": "give at least one entry",
    "greater_than_equal": "use a larger number",
    "less_than_equal": "use a smaller number",
}


def _problem(file: str, err: Mapping[str, Any]) -> PolicyProblem:
    parts: list[str] = []
    for part in err["loc"]:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f".{part}" if parts else str(part))
    return PolicyProblem(
        file,
        "".join(parts),
        str(err["msg"]),
        _HINTS.get(str(err["type"]), "see docs/consent.md, 'Policy file'"),
    )


def _compile(spec: PolicyFile, file: str) -> Policy:
    problems: list[PolicyProblem] = []

    def bad(key: str, message: str, hint: str) -> None:
        problems.append(PolicyProblem(file, key, message, hint))

    try:
        tz = ZoneInfo(spec.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
        bad(
            "time_zone",
            f"unknown time zone {spec.time_zone!r}",
            "use an IANA name such as Europe/London",
        )

    categories = {n: Category(n, c.tier, c.text) for n, c in spec.categories.items()}
    known_cats = ", ".join(categories) or "(none defined)"
    restricted = {n for n, c in categories.items() if c.restricted}
    label_categories: dict[Label, str] = {}
    resource_category_categories: dict[str, str] = {}
    for name, cat in spec.categories.items():
        for i, token in enumerate(cat.labels):
            key = f"categories.{name}.labels[{i}]"
            try:
                label = Label.parse(token)
            except ValueError:
                bad(key, f"{token!r} is not a label", "write it as 'system|code'")
                continue
            if label in label_categories:
                bad(
                    key,
                    f"label already belongs to {label_categories[label]}",
                    "list each label once",
                )
            label_categories[label] = name
        for i, code in enumerate(cat.resource_categories):
            if code in resource_category_categories:
                bad(
                    f"categories.{name}.resource_categories[{i}]",
                    f"already belongs to {resource_category_categories[code]}",
                    "list each resource category once",
                )
            resource_category_categories[code] = name

    for name, src in spec.sources.items():
        if src.consent_required and src.organisation is None:
            bad(
                f"sources.{name}.organisation",
                "a source whose data needs consent must name its organisation",
                "give its ODS code, so consents naming a custodian can be applied",
            )

    for name, role in spec.roles.items():
        for i, src_name in enumerate(role.sources):
            if src_name not in spec.sources:
                bad(
                    f"roles.{name}.sources[{i}]",
                    f"unknown source {src_name!r}",
                    f"use one of {', '.join(spec.sources)}",
                )
        for i, cat_name in enumerate(role.restricted_categories):
            key = f"roles.{name}.restricted_categories[{i}]"
            if cat_name not in categories:
                bad(key, f"unknown category {cat_name!r}", f"use one of {known_cats}")
            elif cat_name not in restricted:
                bad(
                    key,
                    f"{cat_name!r} is never shared",
                    "never-shared categories cannot be granted",
                )

    bg = spec.break_glass
    for i, role_name in enumerate(bg.roles):
        if role_name not in spec.roles:
            bad(
                f"break_glass.roles[{i}]",
                f"unknown role {role_name!r}",
                f"use one of {', '.join(spec.roles)}",
            )
    for i, cat_name in enumerate(bg.excluded_categories):
        key = f"break_glass.excluded_categories[{i}]"
        if cat_name not in categories:
            bad(key, f"unknown category {cat_name!r}", f"use one of {known_cats}")
        elif cat_name not in restricted:
            bad(key, f"{cat_name!r} is never shared", "never-shared categories are always excluded")

    redactions: dict[str, tuple[str, ...]] = {}
    for rtype, elements in spec.restricted_demographics.redact.items():
        if not rtype[:1].isupper():
            bad(
                f"restricted_demographics.redact.{rtype}",
                "not a FHIR resource type",
                "write the type as FHIR spells it (Patient)",
            )
        redactions[rtype] = tuple(f"{rtype}.{e}" for e in elements)

    if problems:
        raise PolicyError(problems)
    return Policy(
        name=spec.name,
        title=spec.title,
        basis=spec.basis,
        default_permit=spec.default == "permit",
        time_zone=tz,
        audience=spec.audience,
        purposes=dict(spec.purposes),
        sources={
            n: Source(n, s.text, s.consent_required, s.organisation)
            for n, s in spec.sources.items()
        },
        roles={
            n: Role(n, r.text, frozenset(r.sources), frozenset(r.restricted_categories))
            for n, r in spec.roles.items()
        },
        categories=categories,
        label_categories=label_categories,
        resource_category_categories=resource_category_categories,
        break_glass=BreakGlassRules(
            frozenset(bg.roles),
            timedelta(minutes=bg.duration_minutes),
            bg.min_reason_length,
            frozenset(bg.excluded_categories),
        ),
        redactions=redactions,
        file=file,
        spec=spec,
    )
