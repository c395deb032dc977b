"""Europe/London wall-clock times for synthetic records, without the system time zone database.

Generated times are naive local datetimes kept between 06:00 and 23:00, so they never fall in
the hour that is skipped or repeated when the clocks change (01:00-02:00 local). UK summer
time runs from the last Sunday of March to the last Sunday of October; computing that here
keeps output identical on machines whose tz database differs or is missing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1)


def _last_sunday(year: int, month: int) -> date:
    """Return the last Sunday of a month (month is March or October)."""
    last = date(year, month, 31)
    return last - timedelta(days=(last.weekday() + 1) % 7)


@lru_cache(maxsize=64)
def _bst_bounds(year: int) -> tuple[date, date]:
    """Return the first and the first-after-last days that are on summer time in ``year``."""
    return _last_sunday(year, 3), _last_sunday(year, 10)


def utc_offset_hours(t: datetime) -> int:
    """Return 1 in British Summer Time, else 0, for a naive local time outside 01:00-02:59."""
    start, end = _bst_bounds(t.year)
    d = t.date()
    return 1 if start <= d < end else 0


def iso(t: datetime) -> str:
    """Format a naive London time as ISO 8601 with its offset: ``2026-10-03T14:05:00+01:00``."""
    off = utc_offset_hours(t)
    return f"{t.isoformat(timespec='seconds')}+0{off}:00"


def hl7_ts(t: datetime) -> str:
    """Format a naive London time as an HL7 v2 TS: ``20261003140500+0100``."""
    off = utc_offset_hours(t)
    return f"{t:%Y%m%d%H%M%S}+0{off}00"


def utc_minutes(t: datetime) -> int:
    """Return minutes since 1970 UTC for a naive London time (a sort key across clock changes)."""
    return int((t - _EPOCH).total_seconds()) // 60 - 60 * utc_offset_hours(t)


def to_utc(t: datetime) -> datetime:
    """Return the aware UTC instant of a naive London time."""
    return (t - timedelta(hours=utc_offset_hours(t))).replace(tzinfo=UTC)
