"""Search tokens: name normalisation (property-tested) and what a Patient indexes."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from bridge.core.clock import FixedClock
from bridge.store.crypto import StoreCrypto
from bridge.store.resources import ResourceRepository
from bridge.store.search_tokens import (
    BIRTHDATE_SYSTEM,
    FAMILY_SYSTEM,
    GIVEN_SYSTEM,
    NAME_SYSTEM,
    birth_date_tokens,
    name_words,
    patient_search_tokens,
)
from tests.fixtures.fhir import patient

# Latin letters with and without accents, as names are written in the sample's languages.
LETTERS = "abcdefghijklmnopqrstuvwxyzàáâäãåçèéêëìíîïñòóôöõùúûüýÿśźżłøæœ"
word = st.text(alphabet=LETTERS, min_size=1, max_size=12)
words = st.lists(word, min_size=1, max_size=4)
separator = st.sampled_from([" ", "  ", "-", " - ", "\t", ", "])


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


class TestNameWords:
    def test_examples(self) -> None:
        assert name_words("  O'Neill-Testperson ") == ["oneill", "testperson"]
        assert name_words("ZOË") == ["zoe"]
        assert name_words("José María") == ["jose", "maria"]
        assert name_words("Søren Łukasz") == ["soren", "lukasz"]
        assert name_words("D\u2019Arcy") == ["darcy"]
        assert name_words("--- ,") == []

    @given(words, separator)
    def test_case_does_not_matter(self, ws: list[str], sep: str) -> None:
        text = sep.join(ws)
        assert name_words(text.upper()) == name_words(text) == name_words(text.title())

    @given(words, separator)
    def test_accents_do_not_matter(self, ws: list[str], sep: str) -> None:
        text = sep.join(ws)
        assert name_words(_strip_accents(text)) == name_words(text)

    @given(words, separator, separator)
    def test_whitespace_and_hyphens_only_separate(self, ws: list[str], a: str, b: str) -> None:
        assert name_words(a.join(ws)) == name_words(b.join(ws)) == name_words(f" {a.join(ws)} ")

    @given(words)
    def test_one_word_per_word(self, ws: list[str]) -> None:
        assert len(name_words(" ".join(ws))) == len(ws)

    @given(st.text(max_size=40))
    def test_idempotent_on_any_text(self, text: str) -> None:
        once = name_words(text)
        assert name_words(" ".join(once)) == once
        assert all(w == w.casefold() and w.strip() == w and w for w in once)

    @given(st.text(max_size=40))
    def test_composed_and_decomposed_forms_agree(self, text: str) -> None:
        assert name_words(unicodedata.normalize("NFC", text)) == name_words(
            unicodedata.normalize("NFD", text)
        )


class TestPatientTokens:
    def test_names_and_birth_date(self) -> None:
        res = patient(family="O'Neill-Testperson", given="Zoë", birth_date="1937-02-12")
        res["name"][0]["given"].append("Ann")
        res["name"].append({"text": "Zoe Smith"})
        tokens = set(patient_search_tokens(res))
        assert tokens == {
            (FAMILY_SYSTEM, "oneill"),
            (FAMILY_SYSTEM, "testperson"),
            (GIVEN_SYSTEM, "zoe"),
            (GIVEN_SYSTEM, "ann"),
            (NAME_SYSTEM, "oneill"),
            (NAME_SYSTEM, "testperson"),
            (NAME_SYSTEM, "zoe"),
            (NAME_SYSTEM, "ann"),
            (NAME_SYSTEM, "smith"),  # text words are names, but not family or given
            (BIRTHDATE_SYSTEM, "1937"),
            (BIRTHDATE_SYSTEM, "1937-02"),
            (BIRTHDATE_SYSTEM, "1937-02-12"),
        }

    def test_only_patients(self) -> None:
        other = patient() | {"resourceType": "RelatedPerson"}
        assert list(patient_search_tokens(other)) == []

    def test_birth_date_precision(self) -> None:
        assert birth_date_tokens("1937") == ["1937"]
        assert birth_date_tokens("1937-02") == ["1937", "1937-02"]
        assert birth_date_tokens("12/02/1937") == []


class TestIndexed:
    def test_a_stored_patient_is_found_by_its_tokens(
        self, session: Session, crypto: StoreCrypto, clock: FixedClock
    ) -> None:
        repo = ResourceRepository(session, crypto=crypto, clock=clock)
        repo.put(patient(rid="p1", family="Ó Briain", given="Siobhán"))
        repo.put(patient(rid="p2", family="Brian", given="Siobhan", birth_date="1950-01-01"))
        # "Ó Briain" is two words: "o" and "briain".
        assert repo.ids_by_identifier(FAMILY_SYSTEM, "briain", resource_type="Patient") == ["p1"]
        found = repo.ids_by_identifier(GIVEN_SYSTEM, "siobhan", resource_type="Patient")
        assert found == ["p1", "p2"]
        assert repo.ids_by_identifier(BIRTHDATE_SYSTEM, "1950", resource_type="Patient") == ["p2"]
        # A changed name is re-indexed: the old token no longer finds the patient.
        repo.put(patient(rid="p2", family="Bryant", given="Siobhan", birth_date="1950-01-01"))
        assert repo.ids_by_identifier(FAMILY_SYSTEM, "brian", resource_type="Patient") == []
        assert repo.ids_by_identifier(FAMILY_SYSTEM, "bryant", resource_type="Patient") == ["p2"]
