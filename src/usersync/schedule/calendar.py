"""The calendar schedules: once, daily, weekly and monthly, and the parsing of their fields."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from usersync.errors import UsageError
from usersync.schedule.base import (
    MAX_YEAR,
    MIN_YEAR,
    PatternSchedule,
    Schedule,
    WallPattern,
    check_request,
    format_time,
)
from usersync.schedule.days import (
    MONTH_NAMES,
    WEEKDAY_ABBREVIATIONS,
    WEEKDAY_NAMES,
    ClampedDayOfMonth,
    DayRule,
    DaysOfWeek,
    EveryDay,
)
from usersync.schedule.zones import fire_instant

_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")
_LOCAL_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2})?")


@dataclass(frozen=True)
class TimeOfDay:
    hour: int
    minute: int
    second: int = 0

    def __str__(self) -> str:
        return format_time(self.hour, self.minute, self.second)


def parse_time(value: object, field: str = "time") -> TimeOfDay:
    """ "HH:MM" or "HH:MM:SS", 24-hour clock."""
    match = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is not None:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour <= 23 and minute <= 59 and second <= 59:
            return TimeOfDay(hour, minute, second)
    raise UsageError(
        f"{field}: {value!r} is not a time of day; use HH:MM on the 24-hour clock,"
        ' from 00:00 to 23:59, e.g. "01:00"'
    )


def parse_local_datetime(value: object, field: str = "at") -> datetime:
    """A local date and time, "YYYY-MM-DDTHH:MM[:SS]", without a UTC offset."""
    fix = (
        'use a local date and time such as "2026-12-01T09:00" (no offset: the zone comes'
        ' from "timezone")'
    )
    if not isinstance(value, str) or not _LOCAL_DATETIME.fullmatch(value.strip()):
        raise UsageError(f"{field}: {value!r} is not a local date and time; {fix}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{field}: {value!r} is not a real date and time; {fix}") from None
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise UsageError(f"{field}: {value!r}: the year must be from {MIN_YEAR} to {MAX_YEAR}")
    return moment


def parse_weekdays(value: object, field: str = "days") -> tuple[int, ...]:
    """A non-empty list of SUN..SAT names (any case), as sorted Python weekday numbers."""
    fix = f'use a list of {", ".join(WEEKDAY_ABBREVIATIONS)}, e.g. ["MON", "THU"]'
    if not isinstance(value, list) or not value:
        raise UsageError(f"{field}: {value!r} is not a list of days; {fix}")
    weekdays: set[int] = set()
    for item in value:
        name = item.strip().upper() if isinstance(item, str) else None
        if name not in WEEKDAY_ABBREVIATIONS:
            raise UsageError(f"{field}: {item!r} is not a day of the week; {fix}")
        weekdays.add(WEEKDAY_ABBREVIATIONS.index(name))
    return tuple(sorted(weekdays))


def parse_day_of_month(value: object, field: str = "day") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 31:
        raise UsageError(
            f"{field}: {value!r} is not a day of the month; use a number from 1 to 31"
            " (31 fires on the last day of shorter months)"
        )
    return value


@dataclass(frozen=True)
class OnceSchedule(Schedule):
    """Fires once: at `at` (a naive local time), or, without `at`, right away.

    "Right away" has no anchor of its own, so `next_times` returns `after` itself (not
    rounded, the one exception to "strictly after"): whoever asks with `after=now` gets
    "now". The caller records that it ran; asking again gives `after` again.
    """

    at: datetime | None = None
    timezone: str | None = None

    def next_times(self, after: datetime, count: int, tz: ZoneInfo | None = None) -> list[datetime]:
        after_utc = check_request(after, count)
        zone = tz if tz is not None else self.zone()
        if count == 0:
            return []
        if self.at is None:
            return [after.astimezone(zone)]
        instant, _ = fire_instant(self.at, zone)
        return [instant.astimezone(zone)] if instant > after_utc else []

    def describe(self) -> str:
        if self.at is None:
            return "Once, right away"
        at = self.at
        when = format_time(at.hour, at.minute, at.second)
        date = f"{WEEKDAY_NAMES[at.weekday()]} {at.day} {MONTH_NAMES[at.month - 1]} {at.year}"
        return f"Once, at {when} on {date}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "once"}
        if self.at is not None:
            seconds = self.at.second != 0
            data["at"] = self.at.isoformat(timespec="seconds" if seconds else "minutes")
        return self._with_zone(data)


@dataclass(frozen=True)
class DailySchedule(PatternSchedule):
    time: TimeOfDay
    timezone: str | None = None

    @property
    def pattern(self) -> WallPattern:
        return _at(self.time, EveryDay())

    def describe(self) -> str:
        return f"At {self.time}, every day"

    def to_dict(self) -> dict[str, Any]:
        return self._with_zone({"type": "daily", "time": str(self.time)})


@dataclass(frozen=True)
class WeeklySchedule(PatternSchedule):
    weekdays: tuple[int, ...]  # Python numbering, Monday 0
    time: TimeOfDay
    timezone: str | None = None

    @property
    def pattern(self) -> WallPattern:
        return _at(self.time, DaysOfWeek(self.weekdays))

    def describe(self) -> str:
        return f"At {self.time}, {DaysOfWeek(self.weekdays).describe()}"

    def to_dict(self) -> dict[str, Any]:
        days = [WEEKDAY_ABBREVIATIONS[day] for day in self.weekdays]
        return self._with_zone({"type": "weekly", "days": days, "time": str(self.time)})


@dataclass(frozen=True)
class MonthlySchedule(PatternSchedule):
    day: int
    time: TimeOfDay
    timezone: str | None = None

    @property
    def pattern(self) -> WallPattern:
        return _at(self.time, ClampedDayOfMonth(self.day))

    def describe(self) -> str:
        return f"At {self.time}, {ClampedDayOfMonth(self.day).describe()}"

    def to_dict(self) -> dict[str, Any]:
        return self._with_zone({"type": "monthly", "day": self.day, "time": str(self.time)})


def _at(time: TimeOfDay, days: DayRule) -> WallPattern:
    return WallPattern((time.second,), (time.minute,), (time.hour,), days)
