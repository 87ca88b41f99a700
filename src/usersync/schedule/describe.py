"""Cron expressions in words: cron_descriptor where it is right, our own words otherwise.

cron_descriptor numbers days of the week from 0 (Sunday) unless told otherwise, so Quartz
expressions (1 = Sunday) go in with `day_of_week_start_index_zero=False`, and always with all
7 fields, because with 6 it guesses whether the last one is a year. It cannot describe some
valid Quartz forms (`L` alone in day-of-week, `L-nW`), reads a backwards range such as
`FRI-MON` as "Friday through Monday" with Monday before Friday in the week, words a step that
names one value (`7/2` in day-of-week) as a repeat, and says "or" for Unix cron's two day
fields even when a `*` makes both needed; those, and anything it raises on, get
`describe_pattern` instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cron_descriptor import ExpressionDescriptor, Options

from usersync.schedule.base import (
    ALL_HOURS,
    ALL_MINUTES,
    ALL_MONTHS,
    ALL_SECONDS,
    ALL_YEARS,
    MAX_YEAR,
    WallPattern,
    format_time,
)
from usersync.schedule.cronparse import (
    MONTH_NUMBERS,
    QUARTZ_DAY_NUMBERS,
    UNIX_DAY_NUMBERS,
    CronSpec,
)
from usersync.schedule.days import (
    MONTH_NAMES,
    BothDays,
    DaysOfMonth,
    DaysOfWeek,
    EitherDay,
    join_words,
    ranged_words,
)

# Day-field forms cron_descriptor refuses or words badly: L alone in day-of-week (Saturday),
# L-nW, and L-1 ("1 days before").
_OWN_WORDS_DAYS = re.compile(r"L|L-[0-9]+W|L-1")
_RANGE = re.compile(r"([0-9]+|[A-Z]{3})-([0-9]+|[A-Z]{3})")
_YEAR_STEP = re.compile(r"([0-9]+)/([0-9]+)")


def describe_cron(spec: CronSpec) -> str:
    if not _needs_own_words(spec):
        try:
            return _with_cron_descriptor(spec)
        # cron_descriptor raises its own FormatError and, on inputs it does not expect,
        # whatever its string handling trips over; any failure means "use our words".
        except Exception:
            pass
    return describe_pattern(spec.pattern)


def _with_cron_descriptor(spec: CronSpec) -> str:
    parts = spec.text.split(" ")
    if spec.flavor == "quartz" and len(parts) == 6:
        parts.append("*")
    if spec.flavor == "quartz" and (step := _YEAR_STEP.fullmatch(parts[6])):
        # cron_descriptor reads 2027/2 as "2027 through 9999"; our years end at MAX_YEAR.
        parts[6] = f"{step[1]}-{MAX_YEAR}/{step[2]}"
    options = Options(
        locale_code="en_US",
        use_24hour_time_format=True,
        day_of_week_start_index_zero=spec.flavor == "unix",
    )
    words = str(ExpressionDescriptor(" ".join(parts), options).get_description())
    # cron_descriptor says nothing of the days when every day fires ("At 01:00"); say it, as
    # the calendar schedules do ("At 01:00, every day").
    days = parts[3:] if spec.flavor == "quartz" else parts[2:]
    every_day = all(field in ("*", "?") for field in days)
    if every_day and words.startswith("At ") and "," not in words:
        words += ", every day"
    return words


def _needs_own_words(spec: CronSpec) -> bool:
    parts = spec.text.split(" ")
    if isinstance(spec.pattern.days, BothDays | EitherDay):
        # Unix cron's two restricted day fields: cron_descriptor says "or" whether or not
        # one of them starts with `*` (which makes both needed).
        return True
    if _step_names_one_value(spec, parts):
        return True
    quartz = spec.flavor == "quartz"
    if quartz and any(_OWN_WORDS_DAYS.fullmatch(part) for part in (parts[3], parts[5])):
        return True
    names = {4: MONTH_NUMBERS, 5: QUARTZ_DAY_NUMBERS} if quartz else {3: MONTH_NUMBERS}
    # A backwards (wrapping) range, or one that starts where it ends ("Tuesday through
    # Tuesday"); Unix day-of-week 0-7 runs from Sunday to Sunday.
    for index, part in enumerate(parts):
        for match in _RANGE.finditer(part):
            if not quartz and index == 4:
                low, high = (_number(end, UNIX_DAY_NUMBERS) % 7 for end in match.groups())
            else:
                low, high = (_number(end, names.get(index)) for end in match.groups())
            if low >= high:
                return True
    return False


def _step_names_one_value(spec: CronSpec, parts: list[str]) -> bool:
    """Whether a stepped field holds one value only: `7/2` in day-of-week is Saturday alone
    (a step runs to the field's end), which cron_descriptor words as "every 2 weeks"."""
    pattern = spec.pattern
    days = pattern.days
    day_count = (
        len(days.numbers)
        if isinstance(days, DaysOfMonth)
        else len(days.weekdays)
        if isinstance(days, DaysOfWeek)
        else None
    )
    counts = [len(pattern.minutes), len(pattern.hours), day_count, len(pattern.months), day_count]
    if spec.flavor == "quartz":
        counts = [len(pattern.seconds), *counts, len(pattern.years)]
    return any("/" in part and count == 1 for part, count in zip(parts, counts, strict=False))


def _number(text: str, names: Mapping[str, int] | None) -> int:
    # A range that parsed holds numbers, or names of its own field.
    return int(text) if text.isdigit() else (names or {}).get(text, 0)


def describe_pattern(pattern: WallPattern) -> str:
    """Our own words for any pattern, e.g. "At 10:15, on the third Friday of the month"."""
    words = [_describe_time(pattern), pattern.days.describe()]
    if pattern.months != ALL_MONTHS:
        words.append(f"in {join_words([MONTH_NAMES[m - 1] for m in pattern.months])}")
    if pattern.years != ALL_YEARS:
        words.append(f"in {_ranges(pattern.years)}")
    return ", ".join(words)


def _describe_time(pattern: WallPattern) -> str:
    seconds, minutes, hours = pattern.seconds, pattern.minutes, pattern.hours
    if len(seconds) == len(minutes) == len(hours) == 1:
        return f"At {format_time(hours[0], minutes[0], seconds[0])}"
    words = [_unit(minutes, ALL_MINUTES, "minute"), _unit(hours, ALL_HOURS, "hour")]
    if seconds != (0,):
        words.insert(0, _unit(seconds, ALL_SECONDS, "second"))
    return "At " + ", ".join(words)


def _unit(values: tuple[int, ...], every: tuple[int, ...], name: str) -> str:
    if values == every:
        return f"every {name}"
    return f"{name}{'' if len(values) == 1 else 's'} {_ranges(values)}"


def _ranges(values: tuple[int, ...]) -> str:
    """ "0-5, 10 and 20": runs of three or more consecutive values shown as ranges."""
    return join_words(ranged_words(list(values), str, "-"))
