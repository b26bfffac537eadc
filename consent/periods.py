"""Instants and periods: the time arithmetic every consent rule depends on.

All consent timestamps are UTC with whole seconds. Dropping sub-second precision is deliberate:
the canonical encoding (and so every digest and receipt) must round-trip exactly through JSON,
databases and phones, and no consent rule needs more than one-second resolution.

Periods are calendar periods: a month back from 31 March is 28/29 February, a year back from
29 February is 28 February. Arithmetic saturates at the ends of ``datetime``'s range instead of
raising, so that pure decisions stay total for any input.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from consent.errors import ConsentInvalid

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(microsecond=0, tzinfo=UTC)

#: Upper bound of ``Frequency.value``: beyond a thousand uses per period a consent is no longer
#: a citizen's decision about a use but a standing data feed, which needs a legal basis.
MAX_USES_PER_PERIOD = 1000
#: Upper bound of ``DataLife.value`` (in its unit), far beyond any real retention schedule.
MAX_DATA_LIFE = 10_000


class TimeUnit(str, Enum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


_FIXED = {
    TimeUnit.HOUR: timedelta(hours=1),
    TimeUnit.DAY: timedelta(days=1),
    TimeUnit.WEEK: timedelta(weeks=1),
}


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC, whole seconds; a naive value is taken to be UTC already."""
    if moment.tzinfo is UTC and not moment.microsecond:
        return moment  # already normal: the common case on every decision
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    else:
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            return EARLIEST if moment.year < 5000 else LATEST
    return moment.replace(microsecond=0)


def rfc3339(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``: the one timestamp spelling of the canonical encoding."""
    return as_utc(moment).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def shift(moment: datetime, unit: TimeUnit, count: int) -> datetime:
    """``moment`` moved by ``count`` calendar units (negative goes back), saturating."""
    moment = as_utc(moment)
    if unit in _FIXED:
        try:
            return moment + _FIXED[unit] * count
        except OverflowError:
            return EARLIEST if count < 0 else LATEST
    months = count * (12 if unit is TimeUnit.YEAR else 1)
    total = moment.year * 12 + (moment.month - 1) + months
    year, month0 = divmod(total, 12)
    if year < 1:
        return EARLIEST
    if year > 9999:
        return LATEST
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return moment.replace(year=year, month=month0 + 1, day=day)


def _unit(value: object) -> TimeUnit:
    try:
        return TimeUnit(value)
    except ValueError:
        allowed = ", ".join(u.value for u in TimeUnit)
        raise ConsentInvalid(f"La unidad de tiempo debe ser una de: {allowed}.") from None


def _check_count(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConsentInvalid(f"{name} debe ser un entero entre {low} y {high}.")
    return value


@dataclass(frozen=True, slots=True)
class Frequency:
    """At most ``value`` uses in any window of one ``unit`` (a sliding calendar window).

    Sliding rather than fixed calendar buckets: "once a day" then means 24 h between uses
    whatever the time zone, and an agency cannot burst at 23:59 and again at 00:00.
    """

    unit: TimeUnit
    value: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", _unit(self.unit))
        _check_count("frequency.value", self.value, 1, MAX_USES_PER_PERIOD)

    def window_start(self, now: datetime) -> datetime:
        """Uses strictly after this instant count against a decision taken at ``now``."""
        return shift(now, self.unit, -1)


@dataclass(frozen=True, slots=True)
class DataLife:
    """How long the consumer may keep released data; ``value == 0`` means not at all
    (use it during the transaction only — the natural pair of ``access_mode=view``)."""

    unit: TimeUnit
    value: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", _unit(self.unit))
        _check_count("data_life.value", self.value, 0, MAX_DATA_LIFE)

    def ends(self, received_at: datetime) -> datetime:
        """When data received at ``received_at`` must be gone from the consumer's systems."""
        return shift(received_at, self.unit, self.value)
