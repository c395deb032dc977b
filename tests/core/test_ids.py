"""Stable ids from source records."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.core.ids import is_fhir_id, stable_id


class TestStableId:
    def test_same_source_same_id_different_source_different_id(self) -> None:
        a = stable_id("chs", "patient", "MRN1")
        assert a == stable_id("chs", "patient", "MRN1")
        assert a != stable_id("asc", "patient", "MRN1")
        assert a != stable_id("chs", "encounter", "MRN1")
        assert a != stable_id("chs", "patient", "MRN2")

    def test_separator_cannot_make_collisions(self) -> None:
        with pytest.raises(ValueError, match="must not contain"):
            stable_id("chs|patient", "x", "1")

    def test_empty_parts_are_rejected(self) -> None:
        with pytest.raises(ValueError, match="source_id"):
            stable_id("chs", "patient", "")

    @given(st.text(min_size=1, max_size=50))
    def test_always_a_legal_fhir_id(self, source_id: str) -> None:
        assert is_fhir_id(stable_id("asc", "person", source_id))
