"""Search tokens for Patient names and birth dates, for the keyed blind index.

Names and birth dates are encrypted at rest, so the database cannot compare them. Instead
each Patient yields normalised tokens under pseudo-systems, which the repository stores
as keyed hashes beside its identifiers (``_identifier_pairs``); a search hashes its own
normalised words the same way. Matching is therefore exact per token: a name search
matches whole name words, case- and accent-insensitively ("baker" finds "Baker",
"jose" finds "José"), never a part of a word (FHIR's default ``name`` search is
starts-with; see docs/api.md). Birth dates are indexed at year, month and day precision,
so an exact ``birthdate`` of any precision is one lookup; ranges need another parameter.

Databases loaded before these tokens existed need their Patients re-indexed (re-put).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

# Pseudo-systems: never real identifier systems, so a token cannot collide with one.
FAMILY_SYSTEM = "urn:carebridge:search:family"
GIVEN_SYSTEM = "urn:carebridge:search:given"
# Any word of a name: family, given or text (not prefixes such as "Mrs", shared by many).
NAME_SYSTEM = "urn:carebridge:search:name"
BIRTHDATE_SYSTEM = "urn:carebridge:search:birthdate"

# Letters that Unicode does not decompose into a base letter and a mark.
_FOLD = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "\u0131": "i"}
)
# Apostrophes join a word ("O'Brien" is "obrien"); anything else that is not a letter or a
# digit separates words ("Smith-Jones" is "smith" and "jones").
_APOSTROPHES = re.compile(r"['\u2019\u2018`\u02bc]")
_SEPARATOR = re.compile(r"[\W_]+")
_BIRTH_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def name_words(text: str) -> list[str]:
    """Return the normalised words of a name: accents removed, case folded, in order."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = bare.casefold().translate(_FOLD)
    joined = _APOSTROPHES.sub("", folded)
    return [w for w in _SEPARATOR.split(joined) if w]


def birth_date_tokens(value: str) -> list[str]:
    """Return the indexed forms of a FHIR date: its year, year-month and full date."""
    m = _BIRTH_DATE.match(value.strip())
    if not m:
        return []
    year, month, day = m.groups()
    out = [year]
    if month:
        out.append(f"{year}-{month}")
        if day:
            out.append(f"{year}-{month}-{day}")
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def patient_search_tokens(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield (pseudo-system, token) for a Patient's names and birth date (nothing otherwise)."""
    if resource.get("resourceType") != "Patient":
        return
    family: set[str] = set()
    given: set[str] = set()
    anyword: set[str] = set()
    for name in resource.get("name") or ():
        if not isinstance(name, dict):
            continue
        for text in _strings(name.get("family")):
            family.update(name_words(text))
        for text in _strings(name.get("given")):
            given.update(name_words(text))
        for text in _strings(name.get("text")):
            anyword.update(name_words(text))
    anyword |= family | given
    for system, words in ((FAMILY_SYSTEM, family), (GIVEN_SYSTEM, given), (NAME_SYSTEM, anyword)):
        for word in sorted(words):
            yield system, word
    birth = resource.get("birthDate")
    if isinstance(birth, str):
        for token in birth_date_tokens(birth):
            yield BIRTHDATE_SYSTEM, token
