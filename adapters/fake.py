"""A source adapter that yields records it was given: for tests and demos."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from adapters.base import AdapterError, SourceRecord

SYSTEM: Final = "fake"


class FakeAdapter:
    """Yield the given SourceRecords and AdapterErrors in order, on every ``read()``.

    Satisfies :class:`adapters.base.SourceAdapter`; ``system`` defaults to ``fake`` but can
    stand in for a real one (``FakeAdapter(records, system="asc")``). The items are copied
    when the adapter is built, so a generator passed in can be read more than once.
    """

    def __init__(
        self, records: Iterable[SourceRecord | AdapterError], *, system: str = SYSTEM
    ) -> None:
        self.system = system
        self.items: tuple[SourceRecord | AdapterError, ...] = tuple(records)

    def read(self) -> Iterator[SourceRecord | AdapterError]:
        """Yield the items as given."""
        yield from self.items
