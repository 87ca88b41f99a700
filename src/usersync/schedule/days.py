"""Day rules: which days of a given month a schedule fires on.

Cron's day-of-month and day-of-week fields and the weekly and monthly schedules all reduce
to one of these. Weekdays use Python's numbering (Monday 0 … Sunday 6), whatever the
numbering of the text they were parsed from.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEKDAY_ABBREVIATIONS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
SATURDAY, SUNDAY = 5, 6
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_ORDINALS = ("first", "second", "third", "fourth", "fifth")


class DayRule(Protocol):
    def days(self, year: int, month: int) -> tuple[int, ...]:
        """The matching days of that month, ascending."""
        ...

    def describe(self) -> str:
        """Words that follow a time, e.g. "on the last day of the month"."""
        ...


def join_words(words: list[str], conjunction: str = "and") -> str:
    """ "Monday", "Monday and Thursday", "Monday, Wednesday and Friday"."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def _month_shape(year: int, month: int) -> tuple[int, int]:
    """(weekday of the 1st, number of days)."""
    return calendar.monthrange(year, month)


def nearest_weekday(year: int, month: int, day: int) -> int:
    """The weekday (Mon-Fri) nearest `day`, never leaving the month, as Quartz's `W` does.

    A Saturday moves back to Friday unless it is the 1st (then Monday the 3rd); a Sunday moves
    on to Monday unless it is the month's last day (then Friday).
    """
    first_weekday, length = _month_shape(year, month)
    weekday = (first_weekday + day - 1) % 7
    if weekday == SATURDAY:
        return day + 2 if day == 1 else day - 1
    if weekday == SUNDAY:
        return day - 2 if day == length else day + 1
    return day


@dataclass(frozen=True)
class EveryDay:
    def days(self, year: int, month: int) -> tuple[int, ...]:
        return tuple(range(1, _month_shape(year, month)[1] + 1))

    def describe(self) -> str:
        return "every day"


@dataclass(frozen=True)
class DaysOfMonth:
    """Plain day numbers; a month without that day is skipped (cron `31`)."""

    numbers: tuple[int, ...]

    def days(self, year: int, month: int) -> tuple[int, ...]:
        length = _month_shape(year, month)[1]
        return tuple(day for day in self.numbers if day <= length)

    def describe(self) -> str:
        noun = "day" if len(self.numbers) == 1 else "days"
        return f"on {noun} {join_words([str(day) for day in self.numbers])} of the month"


@dataclass(frozen=True)
class ClampedDayOfMonth:
    """The monthly schedule's day: a month too short for it fires on its last day instead."""

    day: int

    def days(self, year: int, month: int) -> tuple[int, ...]:
        return (min(self.day, _month_shape(year, month)[1]),)

    def describe(self) -> str:
        if self.day > 28:
            return f"on day {self.day} of the month (the last day in shorter months)"
        return f"on day {self.day} of the month"


@dataclass(frozen=True)
class LastDayOfMonth:
    """Quartz `L`, `L-n`, `LW` and `L-nW`."""

    offset: int = 0
    weekday: bool = False

    def days(self, year: int, month: int) -> tuple[int, ...]:
        day = _month_shape(year, month)[1] - self.offset
        if day < 1:
            return ()  # L-30 in February: no such day this month
        return (nearest_weekday(year, month, day) if self.weekday else day,)

    def describe(self) -> str:
        if self.offset == 0:
            return f"on the last {'weekday' if self.weekday else 'day'} of the month"
        target = f"{_days(self.offset)} before the last day of the month"
        return f"on the weekday nearest {target}" if self.weekday else target


@dataclass(frozen=True)
class NearestWeekday:
    """Quartz `nW`; a month without day n is skipped, as for a plain `n`."""

    day: int

    def days(self, year: int, month: int) -> tuple[int, ...]:
        if self.day > _month_shape(year, month)[1]:
            return ()
        return (nearest_weekday(year, month, self.day),)

    def describe(self) -> str:
        return f"on the weekday nearest day {self.day} of the month"


@dataclass(frozen=True)
class DaysOfWeek:
    weekdays: tuple[int, ...]

    def days(self, year: int, month: int) -> tuple[int, ...]:
        first_weekday, length = _month_shape(year, month)
        wanted = set(self.weekdays)
        return tuple(d for d in range(1, length + 1) if (first_weekday + d - 1) % 7 in wanted)

    def describe(self) -> str:
        if len(self.weekdays) == 7:
            return "every day"
        names = ranged_words(list(self.weekdays), WEEKDAY_NAMES.__getitem__, " through ", 7)
        return f"on {join_words(names)}"


@dataclass(frozen=True)
class LastWeekdayOfMonth:
    """Quartz `nL` in day-of-week: the last Friday (etc.) of the month."""

    weekday: int

    def days(self, year: int, month: int) -> tuple[int, ...]:
        first_weekday, length = _month_shape(year, month)
        last_weekday = (first_weekday + length - 1) % 7
        return (length - (last_weekday - self.weekday) % 7,)

    def describe(self) -> str:
        return f"on the last {WEEKDAY_NAMES[self.weekday]} of the month"


@dataclass(frozen=True)
class NthWeekdayOfMonth:
    """Quartz `n#k`: the k-th Friday (etc.); a month without a fifth one is skipped."""

    weekday: int
    nth: int

    def days(self, year: int, month: int) -> tuple[int, ...]:
        first_weekday, length = _month_shape(year, month)
        day = 1 + (self.weekday - first_weekday) % 7 + 7 * (self.nth - 1)
        return (day,) if day <= length else ()

    def describe(self) -> str:
        return f"on the {_ORDINALS[self.nth - 1]} {WEEKDAY_NAMES[self.weekday]} of the month"


@dataclass(frozen=True)
class BothDays:
    """Days matching both rules (Unix cron when a day field starts with `*`, e.g. `*/2`)."""

    first: DayRule
    second: DayRule

    def days(self, year: int, month: int) -> tuple[int, ...]:
        other = set(self.second.days(year, month))
        return tuple(day for day in self.first.days(year, month) if day in other)

    def describe(self) -> str:
        return f"{self.first.describe()}, if also {self.second.describe()}"


@dataclass(frozen=True)
class EitherDay:
    """Days matching either rule (Unix cron when both day fields are restricted)."""

    first: DayRule
    second: DayRule

    def days(self, year: int, month: int) -> tuple[int, ...]:
        return tuple(sorted({*self.first.days(year, month), *self.second.days(year, month)}))

    def describe(self) -> str:
        return f"{self.first.describe()}, or {self.second.describe()}"


def ranged_words(
    values: list[int], name: Callable[[int], str], through: str, cycle: int = 0
) -> list[str]:
    """The values' names, three or more in a row as one range: "Monday through Friday",
    "0-5". With `cycle` (7 for weekdays) the values wrap: the walk starts at one whose
    predecessor is not among them, so Friday to Monday is one range, not two pieces."""
    if cycle:
        wanted = set(values)
        starts = (value for value in sorted(wanted) if (value - 1) % cycle not in wanted)
        start = next(starts, min(wanted, default=0))  # every value: no run begins, none ends
        values = sorted(wanted, key=lambda value: (value - start) % cycle)
    runs: list[list[int]] = []
    for value in values:
        after = runs[-1][-1] + 1 if runs else None
        if after is not None and (after % cycle if cycle else after) == value:
            runs[-1].append(value)
        else:
            runs.append([value])
    words: list[str] = []
    for run in runs:
        if len(run) >= 3:
            words.append(f"{name(run[0])}{through}{name(run[-1])}")
        else:
            words.extend(name(value) for value in run)
    return words


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"
