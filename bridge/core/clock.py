"""Time as a dependency: code that needs "now" receives a Clock, tests pass a fixed one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Source of the current time (timezone-aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock, truncated to milliseconds (FHIR instants keep no more)."""

    def now(self) -> datetime:
        t = datetime.now(UTC)
        return t.replace(microsecond=(t.microsecond // 1000) * 1000)


class FixedClock:
    """A clock that returns a set time and can be advanced (tests, replays)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self._at = self._at + timedelta(**delta)


def fhir_instant(t: datetime) -> str:
    """Format an aware datetime as a FHIR instant in UTC with milliseconds."""
    if t.tzinfo is None:
        raise ValueError("FHIR instants need a timezone")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
