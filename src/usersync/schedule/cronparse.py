"""Parse and check cron expressions: Quartz (6 or 7 fields, seconds first) and Unix (5 fields).

What is refused follows Quartz's CronExpression: a wrong number of fields, values out of
range, a step larger than its field (`0/120` in seconds), `?` outside the day fields, `W`
with a list or range, `L` or `#` mixed with a list, `#` with k outside 1-5, and in Quartz
form both day fields restricted or both `?`. Where Quartz is lax or odd we are stricter or
plainer: more than 7 fields, a step of 0 and a backwards range in the year field are
refused (Quartz ignores extra fields and the others misbehave), and `nW` / `L-n` fire in no
month that lacks that day (skipped, like a plain `31`; Quartz's lenient calendar spills
them into the next month).

Unix form: minute hour day-of-month month day-of-week, day-of-week 0-7 with 0 and 7 Sunday.
Following Vixie cron, when both day fields are restricted (neither starts with `*`) a day
matching either fires; `?` is accepted as `*`; `L`, `W` and `#` need the Quartz form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from usersync.errors import UsageError
from usersync.schedule.base import ALL_YEARS, MAX_YEAR, MIN_YEAR, WallPattern
from usersync.schedule.days import (
    MONTH_NAMES,
    SATURDAY,
    WEEKDAY_NAMES,
    BothDays,
    DayRule,
    DaysOfMonth,
    DaysOfWeek,
    EitherDay,
    EveryDay,
    LastDayOfMonth,
    LastWeekdayOfMonth,
    NearestWeekday,
    NthWeekdayOfMonth,
)

Flavor = Literal["quartz", "unix"]

MONTH_NUMBERS = {name[:3].upper(): number for number, name in enumerate(MONTH_NAMES, 1)}
# Quartz numbers days from Sunday = 1; WEEKDAY_NAMES start on Monday.
QUARTZ_DAY_NUMBERS = {name[:3].upper(): (n + 1) % 7 + 1 for n, name in enumerate(WEEKDAY_NAMES)}
UNIX_DAY_NUMBERS = {name: number - 1 for name, number in QUARTZ_DAY_NUMBERS.items()}
_NUMBER = re.compile(r"[0-9]+")
_DAY_VALUE = r"([0-9]+|[A-Z]+)"


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int  # the largest value accepted
    top: int  # where `*` and `a/n` stop: Unix day-of-week stops at 6, 7 is Sunday again
    max_step: int | None  # Quartz refuses larger increments ("Increment > 60")
    names: Mapping[str, int]
    wraps: bool  # Quartz reads 22-2 in hours as 22,23,0,1,2
    quartz: bool

    def example(self) -> str:
        ordered = sorted(self.names, key=self.names.__getitem__)
        names = f" or {ordered[0]}-{ordered[-1]}" if ordered else ""
        return f"from {self.low} to {self.high}{names}"


def _fields(
    flavor: Flavor,
) -> tuple[_Field, _Field, _Field, _Field, _Field, _Field, _Field]:
    quartz = flavor == "quartz"
    return (
        _Field("seconds", 0, 59, 59, 59, {}, quartz, quartz),
        _Field("minutes", 0, 59, 59, 59, {}, quartz, quartz),
        _Field("hours", 0, 23, 23, 23, {}, quartz, quartz),
        _Field("day-of-month", 1, 31, 31, 31, {}, quartz, quartz),
        _Field("month", 1, 12, 12, 12, MONTH_NUMBERS, quartz, quartz),
        _Field("day-of-week", 1, 7, 7, 7, QUARTZ_DAY_NUMBERS, True, True)
        if quartz
        else _Field("day-of-week", 0, 7, 6, 7, UNIX_DAY_NUMBERS, False, False),
        _Field("year", MIN_YEAR, MAX_YEAR, MAX_YEAR, None, {}, False, True),
    )


class _Refused(Exception):
    def __init__(self, field: _Field | str, token: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field.name if isinstance(field, _Field) else field
        self.token = token
        self.problem = problem


@dataclass(frozen=True)
class CronSpec:
    text: str  # whitespace-normalised and upper-cased
    flavor: Flavor
    pattern: WallPattern


def parse_cron(expression: str) -> CronSpec:
    """Parse a Quartz or Unix cron expression; UsageError names the field and the fix."""
    typed = " ".join(expression.split())  # as the user wrote it, for messages
    text = typed.upper()
    parts = text.split(" ") if text else []
    try:
        if len(parts) == 5:
            return CronSpec(text, "unix", _unix(parts))
        if len(parts) in (6, 7):
            return CronSpec(text, "quartz", _quartz(parts))
        raise _Refused(
            "expression",
            typed or "(empty)",
            f"has {len(parts)} fields; Quartz cron has 6 or 7 (second minute hour"
            " day-of-month month day-of-week [year], e.g. '0 0 1 * * ?'), Unix cron 5"
            " (minute hour day-of-month month day-of-week, e.g. '0 1 * * *')",
        )
    except _Refused as refused:
        raise UsageError(
            f"{refused.field}: {refused.token}: {refused.problem} (cron expression {typed!r})"
        ) from None


def _quartz(parts: list[str]) -> WallPattern:
    seconds, minutes, hours, dom, months, dow, years = _fields("quartz")
    day_of_month = _quartz_day_of_month(parts[3], dom)
    day_of_week = _quartz_day_of_week(parts[5], dow)
    both = "day-of-month and day-of-week"
    if day_of_month is None:
        if day_of_week is None:
            raise _Refused(
                both,
                f"{parts[3]} {parts[5]}",
                "only one of them may be '?'; use '*' in the other, e.g. '0 0 1 * * ?'",
            )
        days = day_of_week
    elif day_of_week is None:
        days = day_of_month
    else:
        raise _Refused(
            both,
            f"{parts[3]} {parts[5]}",
            "Quartz does not support restricting both; put '?' in one of them,"
            " e.g. '0 0 1 ? * MON' or '0 0 1 15 * ?'",
        )
    return WallPattern(
        seconds=_values(parts[0], seconds),
        minutes=_values(parts[1], minutes),
        hours=_values(parts[2], hours),
        days=days,
        months=_values(parts[4], months),
        years=_values(parts[6], years) if len(parts) == 7 else ALL_YEARS,
    )


def _unix(parts: list[str]) -> WallPattern:
    _, minutes, hours, dom, months, dow, _ = _fields("unix")
    for text, field in ((parts[2], dom), (parts[4], dow)):
        for mark in "LW#":
            if mark in _without_names(text, field):
                raise _Refused(
                    field,
                    text,
                    f"'{mark}' needs the Quartz form with seconds first,"
                    " e.g. '0 0 12 LW * ?' or '0 15 10 ? * 6#3'",
                )
    dom_values = _values(_question_as_star(parts[2], dom), dom)
    dow_values = _values(_question_as_star(parts[4], dow), dow)
    by_date: DayRule = EveryDay() if len(dom_values) == 31 else DaysOfMonth(dom_values)
    weekdays = tuple(sorted({_weekday(value, dow) for value in dow_values}))
    by_weekday: DayRule = EveryDay() if len(weekdays) == 7 else DaysOfWeek(weekdays)
    return WallPattern(
        seconds=(0,),
        minutes=_values(parts[0], minutes),
        hours=_values(parts[1], hours),
        days=_unix_days(parts[2], parts[4], by_date, by_weekday),
        months=_values(parts[3], months),
    )


def _unix_days(dom_text: str, dow_text: str, by_date: DayRule, by_weekday: DayRule) -> DayRule:
    # Vixie cron: a day field starting with '*' (or '?') leaves the other one in charge;
    # with both restricted, either may match.
    starred = dom_text[0] in "*?" or dow_text[0] in "*?"
    if isinstance(by_date, EveryDay) and (starred or isinstance(by_weekday, EveryDay)):
        return by_weekday
    if isinstance(by_weekday, EveryDay) and starred:
        return by_date
    return BothDays(by_date, by_weekday) if starred else EitherDay(by_date, by_weekday)


def _question_as_star(text: str, field: _Field) -> str:
    if text == "?":
        return "*"
    if "?" in text:
        raise _Refused(field, text, "'?' must stand alone")
    return text


def _quartz_day_of_month(text: str, field: _Field) -> DayRule | None:
    """The day-of-month rule, or None for '?'."""
    if text == "?":
        return None
    if "?" in text:
        raise _Refused(field, text, "'?' must stand alone")
    if "L" in text or "W" in text:
        return _last_or_weekday(text, field)
    values = _values(text, field)
    return EveryDay() if len(values) == 31 else DaysOfMonth(values)


def _last_or_weekday(text: str, field: _Field) -> DayRule:
    if "," in text:
        raise _Refused(field, text, "L and W cannot be combined with a list (Quartz refuses it)")
    last = re.fullmatch(r"L(?:-([0-9]+))?(W?)", text)
    if last is not None:
        offset = int(last[1] or 0)
        if offset > 30:
            raise _Refused(field, text, "the n in L-n must be from 0 to 30")
        return LastDayOfMonth(offset, weekday=bool(last[2]))
    nearest = re.fullmatch(r"([0-9]+)W", text)
    if nearest is not None:
        day = int(nearest[1])
        if not 1 <= day <= 31:
            raise _Refused(field, text, "W needs a day from 1 to 31")
        return NearestWeekday(day)
    if "W" in text and ("-" in text or "/" in text or "*" in text):
        raise _Refused(field, text, "W takes a single day, not a range or step; e.g. 15W")
    raise _Refused(field, text, "use L, L-n (n from 0 to 30), LW, L-nW or nW (e.g. 15W)")


def _quartz_day_of_week(text: str, field: _Field) -> DayRule | None:
    """The day-of-week rule, or None for '?'."""
    if text == "?":
        return None
    if "?" in text:
        raise _Refused(field, text, "'?' must stand alone")
    items = text.split(",")
    if len(items) > 1 and any(
        "#" in item or re.fullmatch(f"{_DAY_VALUE}?L", item) for item in items
    ):
        raise _Refused(field, text, "L and # cannot be combined with a list (Quartz refuses it)")
    if text == "L":
        return DaysOfWeek((SATURDAY,))  # Quartz: L alone in day-of-week is 7, Saturday
    last = re.fullmatch(f"{_DAY_VALUE}L", text)
    if last is not None:
        return LastWeekdayOfMonth(_weekday(_value(last[1], field, text), field))
    nth = re.fullmatch(f"{_DAY_VALUE}#([0-9]+)", text)
    if nth is not None:
        weekday = _weekday(_value(nth[1], field, text), field)
        if not 1 <= int(nth[2]) <= 5:
            raise _Refused(field, text, "'#' needs a number from 1 to 5 after it, e.g. 6#3")
        return NthWeekdayOfMonth(weekday, int(nth[2]))
    if "#" in text:
        raise _Refused(field, text, "'#' takes the form n#k, e.g. 6#3 (the third Friday)")
    weekdays = tuple(sorted({_weekday(value, field) for value in _values(text, field)}))
    return EveryDay() if len(weekdays) == 7 else DaysOfWeek(weekdays)


def _weekday(value: int, field: _Field) -> int:
    """Python's weekday (Monday 0) for a Quartz (1 = Sunday) or Unix (0 and 7 = Sunday) one."""
    return (value + 5) % 7 if field.quartz else (value + 6) % 7


def _values(text: str, field: _Field) -> tuple[int, ...]:
    """Expand `*`, numbers, names, ranges, lists and steps into sorted values."""
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _Refused(field, text, "a list has an empty item; separate values with one ','")
        base, slash, step_text = item.partition("/")
        step = _step(step_text, field, item) if slash else 1
        if base == "*":
            low, high = field.low, field.top
        elif "-" in base:
            start, _, end = base.partition("-")
            low, high = _value(start, field, item), _value(end, field, item)
        else:
            low = _value(base, field, item)
            high = max(field.top, low) if slash else low
        values.update(_expand(low, high, step, field, item))
    return tuple(sorted(values))


def _expand(low: int, high: int, step: int, field: _Field, item: str) -> list[int]:
    if low <= high:
        return list(range(low, high + 1, step))
    if not field.wraps:
        raise _Refused(
            field, item, f"the range runs backwards; put the lower value first ({field.example()})"
        )
    # Quartz wraps a backwards range round the end of the field: 50-10 in seconds is
    # 50..59 then 0..10.
    cycle = field.high - field.low + 1
    return [field.low + (v - field.low) % cycle for v in range(low, high + cycle + 1, step)]


def _step(text: str, field: _Field, item: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise _Refused(field, item, "'/' must be followed by a number, e.g. */5")
    step = int(text)
    if step == 0:
        raise _Refused(field, item, "the step after '/' must be 1 or more")
    if field.max_step is not None and step > field.max_step:
        # Quartz's own message names the field's size for 0-based fields (Increment > 60
        # for 60 refused in seconds) and its top value for 1-based ones (Increment > 31).
        quartz = f" (Quartz: 'Increment > {field.high + 1 - field.low}')" if field.quartz else ""
        raise _Refused(
            field,
            item,
            f"the step {step} is larger than the field allows; use 1 to {field.max_step}{quartz}",
        )
    return step


def _value(text: str, field: _Field, item: str) -> int:
    if _NUMBER.fullmatch(text):
        value = int(text)
    elif text in field.names:
        value = field.names[text]
    else:
        raise _Refused(field, item, _not_a_value(text, field))
    if not field.low <= value <= field.high:
        raise _Refused(field, item, f"{value} is out of range; use {field.example()}")
    return value


def _not_a_value(text: str, field: _Field) -> str:
    marks = _without_names(text, field)
    if "?" in text:
        return "'?' is only allowed in day-of-month or day-of-week, on its own"
    if field.name == "day-of-month":
        if "#" in marks:
            return "'#' is only allowed in day-of-week"
        if re.search("[LW]", marks):
            return "L and W must stand alone in day-of-month (L, L-n, LW, nW), not in a range"
    elif field.name == "day-of-week":
        if "W" in marks:
            return "W is only allowed in day-of-month"
        if re.search("[L#]", marks):
            return "L and # must stand alone in day-of-week (L, nL, n#k), not in a range"
    elif re.search("[LW#]", marks):
        return "L, W and # are only allowed in day-of-month and day-of-week"
    if text == "":
        return f"a value is missing; use {field.example()}"
    return f"not a number{' or name' if field.names else ''}; use {field.example()}"


def _without_names(text: str, field: _Field) -> str:
    """`text` with month and day names blanked, so the L in JUL or the W in WED is no mark."""
    for name in field.names:
        text = text.replace(name, " ")
    return text
