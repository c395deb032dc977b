"""Compare two Patients' demographics field by field, with an explanation for each field.

A Fellegi-Sunter style sum of weights: each field's agreement level adds a weight (positive
when agreement is much likelier for the same human than for two different people, negative
for disagreement), and the total is compared with the configured thresholds. Every weight
comes with words a reviewer can check against the two records. Pure: no I/O, no clock.

Blocking keys (which records are worth comparing) are derived here in clear and hashed
with the index key by the service before they reach the database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import jellyfish

from bridge.core import nhs_number
from bridge.identity.nicknames import are_nicknames

# -- weights (log-likelihood style; see docs/identity.md for why each is what it is) ----
W_NHS_SAME = 20.0
W_NHS_DIFFERENT = -20.0
W_FAMILY = {"exact": 6.0, "part": 5.0, "typo": 4.5, "sounds-alike": 2.0, "different": -5.0}
W_GIVEN = {
    "exact": 5.0,
    "preferred": 4.5,
    "nickname": 4.0,
    "typo": 3.0,
    "prefix": 2.5,
    "sounds-alike": 2.0,
    "different": -5.0,
}
W_SWAPPED_NAMES = 8.0  # given and family names recorded the wrong way round
W_MIDDLE = {"same": 1.0, "different": -1.5}
W_BIRTH = {"exact": 7.0, "day-month-swapped": 5.0, "one-part-differs": 1.5, "different": -7.0}
W_SEX = {"same": 0.5, "different": -3.0}
W_POSTCODE = {"exact": 4.0, "sector": 1.5, "district": 0.5, "different": -1.0}

Decision = Literal["nhs-number", "auto", "review", "none"]

_NON_LETTERS = re.compile(r"[^a-z ]+")
_SPACES = re.compile(r"\s+")
_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")


def normalise_name(value: str) -> str:
    """Lower-case, strip accents and punctuation; hyphens and spaces become one space."""
    text = unicodedata.normalize("NFKD", value)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("-", " ").replace("'", "").replace("\u2019", "")
    return _SPACES.sub(" ", _NON_LETTERS.sub(" ", text)).strip()


def normalise_postcode(value: str) -> str | None:
    """Return a UK postcode upper-cased without spaces, or None if it is not one."""
    text = re.sub(r"\s+", "", value).upper()
    return text if _POSTCODE.match(text) else None


@dataclass(frozen=True)
class Demographics:
    """The matching fields of one Patient, normalised (held in memory only, never stored)."""

    nhs_number: str | None = None
    families: tuple[str, ...] = ()
    # The first given name of each official (or unspecified-use) name.
    firsts: tuple[str, ...] = ()
    # Given names the person is known by: usual/nickname names' given names.
    preferred: tuple[str, ...] = ()
    middles: tuple[str, ...] = ()
    birth_date: date | None = None
    sex: str | None = None
    postcode: str | None = None

    @property
    def has_names(self) -> bool:
        """Say whether there is a family and a given name to compare."""
        return bool(self.families and (self.firsts or self.preferred))


def _parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def demographics(patient: Mapping[str, Any]) -> Demographics:
    """Extract the matching fields from a FHIR Patient."""
    nhs = None
    for ident in patient.get("identifier") or []:
        if (
            isinstance(ident, dict)
            and ident.get("system") == nhs_number.NHS_NUMBER_SYSTEM
            and isinstance(ident.get("value"), str)
            and nhs_number.is_valid(ident["value"])
        ):
            nhs = nhs_number.normalise(ident["value"])
            break
    families: list[str] = []
    firsts: list[str] = []
    preferred: list[str] = []
    middles: list[str] = []
    for name in patient.get("name") or []:
        if not isinstance(name, dict) or name.get("use") in ("old", "anonymous", "maiden"):
            continue
        family = normalise_name(str(name.get("family") or ""))
        if family and family not in families:
            families.append(family)
        given = [normalise_name(str(g)) for g in name.get("given") or [] if g]
        given = [g for g in given if g]
        if not given:
            continue
        if name.get("use") in ("usual", "nickname"):
            preferred += [g for g in given[:1] if g not in preferred]
        else:
            # "Mary Ann" as one given name: its first word is the first name.
            first, *rest = given[0].split(" ")
            if first not in firsts:
                firsts.append(first)
            for extra in [*rest, *given[1:]]:
                middles += [w for w in extra.split(" ") if w and w not in middles]
    gender = patient.get("gender")
    address = next(
        (
            a
            for a in patient.get("address") or []
            if isinstance(a, dict) and a.get("postalCode") and a.get("use") != "old"
        ),
        None,
    )
    return Demographics(
        nhs_number=nhs,
        families=tuple(families),
        firsts=tuple(firsts),
        preferred=tuple(preferred),
        middles=tuple(middles),
        birth_date=_parse_date(patient.get("birthDate")),
        sex=gender if gender in ("male", "female") else None,
        postcode=normalise_postcode(str(address["postalCode"])) if address else None,
    )


# -- blocking ---------------------------------------------------------------------------
def _phonetic(word: str) -> str:
    return jellyfish.metaphone(word) or word


def blocking_values(d: Demographics) -> set[tuple[str, str]]:
    """Return (kind, value) pairs: two records sharing one are worth comparing.

    Chosen so that the known ways two copies differ still share a key: the date of birth
    ignores day/month order; a family-name sound plus birth year survives a changed date;
    a postcode plus family-name sound survives a changed date of birth.
    """
    out: set[tuple[str, str]] = set()
    if d.birth_date is not None:
        b = d.birth_date
        low, high = sorted((b.month, b.day))
        out.add(("dob", f"{b.year:04d}-{low:02d}-{high:02d}"))
    sounds = {_phonetic(part) for fam in d.families for part in [fam, *fam.split(" ")] if part}
    for sound in sounds:
        if d.birth_date is not None:
            out.add(("family-year", f"{sound}|{d.birth_date.year:04d}"))
        if d.postcode:
            out.add(("postcode-family", f"{d.postcode}|{sound}"))
    return out


# -- comparison -------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldEvidence:
    """How one field compared: level, weight and the reason in words."""

    field: str
    agreement: str
    weight: float
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        """Return the evidence as plain data (no demographic values in it)."""
        return {
            "field": self.field,
            "agreement": self.agreement,
            "weight": self.weight,
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class MatchScore:
    """The comparison of two Patients: total score and per-field evidence."""

    score: float
    fields: tuple[FieldEvidence, ...]
    nhs_number_match: bool = False
    nhs_number_conflict: bool = False

    def evidence(self) -> list[dict[str, Any]]:
        """Return the per-field evidence as plain data."""
        return [f.to_dict() for f in self.fields]

    def summary(self) -> str:
        """Say in one line what the score was made of."""
        parts = [
            f"{f.field.replace('_', ' ')} {f.agreement} ({f.weight:+.1f})" for f in self.fields
        ]
        return f"score {self.score:.1f} = " + ", ".join(parts)


@dataclass(frozen=True)
class Thresholds:
    """Auto-link at or above ``auto``; review at or above ``review``; below, no link."""

    auto: float = 14.0
    review: float = 8.0

    def __post_init__(self) -> None:
        if self.review > self.auto:
            raise ValueError("the review threshold must not be above the auto-link threshold")

    def decide(self, match: MatchScore) -> Decision:
        """Return what to do with a scored pair."""
        if match.nhs_number_match:
            return "nhs-number"
        if match.nhs_number_conflict:
            return "none"
        if match.score >= self.auto:
            return "auto"
        if match.score >= self.review:
            return "review"
        return "none"


def _edit_one(a: str, b: str) -> bool:
    """Say whether two words of four letters or more differ by one letter or transposition."""
    return min(len(a), len(b)) >= 4 and jellyfish.damerau_levenshtein_distance(a, b) == 1


def _sounds_alike(a: str, b: str) -> bool:
    return (
        min(len(a), len(b)) >= 3
        and _phonetic(a) == _phonetic(b)
        and jellyfish.jaro_winkler_similarity(a, b) >= 0.85
    )


def _family_level(a: str, b: str) -> str:
    if a == b or a.replace(" ", "") == b.replace(" ", ""):
        return "exact"
    pa, pb = a.split(" "), b.split(" ")
    if (len(pa) > 1 or len(pb) > 1) and (set(pa) <= set(pb) or set(pb) <= set(pa)):
        return "part"
    if _edit_one(a, b) or any(_edit_one(x, y) for x in pa for y in pb if len(pa) + len(pb) > 2):
        return "typo"
    if _sounds_alike(a, b):
        return "sounds-alike"
    return "different"


_FAMILY_WORDS = {
    "exact": "family names are the same",
    "part": "one family name is part of the other (double-barrelled name recorded in part)",
    "typo": "family names differ by one letter (a transposition, a missing or an extra letter)",
    "sounds-alike": "family names are spelt differently but sound alike",
    "different": "family names are different",
}


def _best(levels: Iterable[str], order: Mapping[str, float]) -> str:
    return max(levels, key=lambda level: order[level], default="different")


def _compare_family(a: Demographics, b: Demographics) -> FieldEvidence:
    level = _best((_family_level(x, y) for x in a.families for y in b.families), W_FAMILY)
    return FieldEvidence("family_name", level, W_FAMILY[level], _FAMILY_WORDS[level])


def _given_level(x: str, y: str) -> str:
    if x == y:
        return "exact"
    if are_nicknames(x, y):
        return "nickname"
    if _edit_one(x, y):
        return "typo"
    short, long_ = sorted((x, y), key=len)
    if len(short) >= 3 and long_.startswith(short):
        return "prefix"
    if _sounds_alike(x, y):
        return "sounds-alike"
    return "different"


_GIVEN_WORDS = {
    "exact": "first given names are the same",
    "preferred": "a given name matches the name the person prefers in the other record",
    "nickname": "given names are a formal name and its known short form (a nickname)",
    "typo": "given names differ by one letter (a transposition, a missing or an extra letter)",
    "prefix": "one given name is the start of the other (shortened)",
    "sounds-alike": "given names are spelt differently but sound alike",
    "different": "given names are different",
}


def _compare_given(a: Demographics, b: Demographics) -> FieldEvidence:
    levels: list[str] = []
    for x in a.firsts:
        for y in b.firsts:
            levels.append(_given_level(x, y))
    # A preferred name matching the other side's name (first or preferred) is almost as
    # good as the first names agreeing: systems disagree about which one is "the" name.
    for xs, ys in ((a.preferred, b.firsts + b.preferred), (b.preferred, a.firsts)):
        for x in xs:
            for y in ys:
                level = _given_level(x, y)
                levels.append("preferred" if level == "exact" else level)
    level = _best(levels, W_GIVEN)
    return FieldEvidence("given_name", level, W_GIVEN[level], _GIVEN_WORDS[level])


def _names_swapped(a: Demographics, b: Demographics) -> bool:
    def close(x: str, y: str) -> bool:
        return x == y or _edit_one(x, y)

    return any(
        close(fa, gb) and close(ga, fb)
        for fa in a.families
        for fb in b.families
        for ga in a.firsts
        for gb in b.firsts
    )


def _compare_middle(a: Demographics, b: Demographics) -> FieldEvidence | None:
    if not (a.middles and b.middles):
        return None
    if set(a.middles) & set(b.middles) or any(
        x[0] == y[0] and (len(x) == 1 or len(y) == 1) for x in a.middles for y in b.middles
    ):
        return FieldEvidence(
            "middle_name", "same", W_MIDDLE["same"], "a middle name (or its initial) is the same"
        )
    return FieldEvidence(
        "middle_name", "different", W_MIDDLE["different"], "middle names are different"
    )


def _compare_birth(x: date, y: date) -> FieldEvidence:
    if x == y:
        level, words = "exact", "dates of birth are the same"
    elif x.year == y.year and x.day == y.month and x.month == y.day:
        level = "day-month-swapped"
        words = "dates of birth are the same with day and month swapped (a common entry error)"
    elif sum((x.year != y.year, x.month != y.month, x.day != y.day)) == 1:
        level = "one-part-differs"
        words = "dates of birth agree in two of day, month and year (possible typing error)"
    else:
        level, words = "different", "dates of birth are different"
    return FieldEvidence("birth_date", level, W_BIRTH[level], words)


def _compare_postcode(x: str, y: str) -> FieldEvidence:
    mx, my = _POSTCODE.match(x), _POSTCODE.match(y)
    # Both were normalised on the way in, so both match.
    assert mx is not None
    assert my is not None
    if x == y:
        level, words = "exact", "postcodes are the same"
    elif mx.group(1) == my.group(1) and mx.group(2)[0] == my.group(2)[0]:
        level, words = "sector", "postcodes are different but in the same sector (nearby)"
    elif mx.group(1) == my.group(1):
        level, words = "district", "postcodes are different but in the same district"
    else:
        level = "different"
        words = "postcodes are different (the person may have moved; weighs little)"
    return FieldEvidence("postcode", level, W_POSTCODE[level], words)


def _missing(field: str, what: str) -> FieldEvidence:
    return FieldEvidence(field, "not-compared", 0.0, f"{what} is missing on one side: not scored")


def compare(a: Demographics, b: Demographics) -> MatchScore:
    """Score two Patients' demographics; every field says why it weighs what it does."""
    fields: list[FieldEvidence] = []
    nhs_same = nhs_conflict = False
    if a.nhs_number and b.nhs_number:
        if a.nhs_number == b.nhs_number:
            nhs_same = True
            fields.append(
                FieldEvidence(
                    "nhs_number", "same", W_NHS_SAME, "NHS numbers are the same (check digit valid)"
                )
            )
        else:
            nhs_conflict = True
            fields.append(
                FieldEvidence(
                    "nhs_number",
                    "different",
                    W_NHS_DIFFERENT,
                    "NHS numbers are different and both pass the check digit: different people",
                )
            )
    else:
        fields.append(_missing("nhs_number", "a valid NHS number"))

    if a.has_names and b.has_names:
        family = _compare_family(a, b)
        given = _compare_given(a, b)
        if family.agreement == "different" and given.agreement == "different":
            if _names_swapped(a, b):
                family = FieldEvidence(
                    "family_name",
                    "swapped-with-given",
                    W_SWAPPED_NAMES / 2,
                    "the family name of each record is the given name of the other"
                    " (names recorded the wrong way round)",
                )
                given = FieldEvidence(
                    "given_name",
                    "swapped-with-family",
                    W_SWAPPED_NAMES / 2,
                    "the given name of each record is the family name of the other",
                )
        fields += [family, given]
        middle = _compare_middle(a, b)
        if middle is not None:
            fields.append(middle)
    else:
        fields.append(_missing("name", "a family or given name"))

    if a.birth_date and b.birth_date:
        fields.append(_compare_birth(a.birth_date, b.birth_date))
    else:
        fields.append(_missing("birth_date", "the date of birth"))

    if a.sex and b.sex:
        same = a.sex == b.sex
        fields.append(
            FieldEvidence(
                "sex",
                "same" if same else "different",
                W_SEX["same" if same else "different"],
                "recorded sex is the same" if same else "recorded sex is different",
            )
        )
    else:
        fields.append(_missing("sex", "a recorded sex of male or female"))

    if a.postcode and b.postcode:
        fields.append(_compare_postcode(a.postcode, b.postcode))
    else:
        fields.append(_missing("postcode", "a postcode"))

    score = round(sum(f.weight for f in fields if f.field != "nhs_number"), 2)
    return MatchScore(score, tuple(fields), nhs_same, nhs_conflict)


def explain(match: MatchScore, decision: Decision, thresholds: Thresholds) -> dict[str, Any]:
    """Return the evidence kept with a link or a queued pair (no demographic values)."""
    if decision == "nhs-number":
        verdict = "linked on NHS number: both records carry the same check-digit-valid number"
    elif decision == "auto":
        verdict = (
            f"linked automatically: demographic score {match.score:.1f} is at or above the"
            f" auto-link threshold {thresholds.auto:.1f}"
        )
    elif decision == "review":
        verdict = (
            f"needs review: score {match.score:.1f} is between the review threshold"
            f" {thresholds.review:.1f} and the auto-link threshold {thresholds.auto:.1f}"
        )
    elif match.nhs_number_conflict:
        verdict = "not linked: the two records carry different valid NHS numbers"
    else:
        verdict = (
            f"not linked: score {match.score:.1f} is below the review threshold"
            f" {thresholds.review:.1f}"
        )
    return {
        "decision": decision,
        "score": match.score,
        "thresholds": {"auto": thresholds.auto, "review": thresholds.review},
        "fields": match.evidence(),
        "summary": verdict + "; " + match.summary(),
    }


@dataclass
class Scored:
    """A candidate Patient with its comparison (for ranking)."""

    patient_id: str
    match: MatchScore
    person_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def ranked(items: Iterable[Scored]) -> Iterator[Scored]:
    """Yield candidates best first: NHS number matches, then by score, then by id."""
    yield from sorted(
        items, key=lambda s: (not s.match.nhs_number_match, -s.match.score, s.patient_id)
    )
