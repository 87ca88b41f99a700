"""Cron schedules: every Quartz feature and the Unix form, against hand-computed dates (UTC)."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from usersync.errors import UsageError
from usersync.schedule import CronSchedule, parse_schedule

UTC_ZONE = ZoneInfo("UTC")


def fires(expression: str, after: str, count: int = 4, fmt: str = "%a %Y-%m-%d %H:%M") -> list[str]:
    start = datetime.fromisoformat(after).replace(tzinfo=UTC_ZONE)
    return [t.strftime(fmt) for t in parse_schedule(expression).next_times(start, count, UTC_ZONE)]


def test_lw_is_the_last_weekday_friday_when_the_month_ends_on_a_weekend() -> None:
    # Jan 31 2027 and Feb 28 2027 are Sundays, Mar 31 a Wednesday.
    assert fires("0 0 12 LW * ?", "2027-01-01T00:00") == [
        "Fri 2027-01-29 12:00",
        "Fri 2027-02-26 12:00",
        "Wed 2027-03-31 12:00",
        "Fri 2027-04-30 12:00",
    ]
    assert fires("0 0 12 LW * ?", "2027-07-01T00:00", 1) == ["Fri 2027-07-30 12:00"]  # 31 Sat


def test_nth_weekday_of_month() -> None:
    assert fires("0 15 10 ? * 6#3", "2027-01-01T00:00") == [
        "Fri 2027-01-15 10:15",
        "Fri 2027-02-19 10:15",
        "Fri 2027-03-19 10:15",
        "Fri 2027-04-16 10:15",
    ]


def test_fifth_weekday_skips_months_without_one() -> None:
    assert fires("0 0 0 ? * 6#5", "2027-01-01T00:00") == [
        "Fri 2027-01-29 00:00",
        "Fri 2027-04-30 00:00",
        "Fri 2027-07-30 00:00",
        "Fri 2027-10-29 00:00",
    ]


def test_nearest_weekday_moves_a_sunday_15th_to_monday_and_a_saturday_to_friday() -> None:
    # Feb 15 and Mar 15 2026 are Sundays, Apr 15 a Wednesday, Aug 15 a Saturday.
    assert fires("0 0 0 15W * ?", "2026-02-01T00:00", 3) == [
        "Mon 2026-02-16 00:00",
        "Mon 2026-03-16 00:00",
        "Wed 2026-04-15 00:00",
    ]
    assert fires("0 0 0 15W * ?", "2026-08-01T00:00", 1) == ["Fri 2026-08-14 00:00"]


def test_1w_on_a_saturday_moves_to_monday_the_3rd_not_into_the_previous_month() -> None:
    assert fires("0 0 0 1W * ?", "2026-07-15T00:00", 3) == [
        "Mon 2026-08-03 00:00",  # Aug 1 2026 is a Saturday
        "Tue 2026-09-01 00:00",
        "Thu 2026-10-01 00:00",
    ]
    assert fires("0 0 0 1W * ?", "2026-10-15T00:00", 1) == ["Mon 2026-11-02 00:00"]  # 1st Sun


def test_31w_stays_in_the_month_and_skips_months_without_a_31st() -> None:
    assert fires("0 0 0 31W * ?", "2027-01-01T00:00") == [
        "Fri 2027-01-29 00:00",  # Sunday 31st, the last day: back to Friday
        "Wed 2027-03-31 00:00",
        "Mon 2027-05-31 00:00",
        "Fri 2027-07-30 00:00",  # Saturday 31st
    ]


def test_last_day_and_offsets_from_it() -> None:
    assert fires("0 0 0 L * ?", "2028-02-01T00:00", 3) == [
        "Tue 2028-02-29 00:00",
        "Fri 2028-03-31 00:00",
        "Sun 2028-04-30 00:00",
    ]
    assert fires("0 0 0 L-3 * ?", "2027-01-01T00:00") == [
        "Thu 2027-01-28 00:00",
        "Thu 2027-02-25 00:00",
        "Sun 2027-03-28 00:00",
        "Tue 2027-04-27 00:00",
    ]
    assert fires("0 0 0 L-3 * ?", "2028-02-01T00:00", 1) == ["Sat 2028-02-26 00:00"]


def test_l_minus_n_skips_months_too_short_for_it() -> None:
    # L-30 is the 1st of 31-day months and nothing in shorter ones.
    assert fires("0 0 0 L-30 * ?", "2027-01-01T12:00", 3) == [
        "Mon 2027-03-01 00:00",
        "Sat 2027-05-01 00:00",
        "Thu 2027-07-01 00:00",
    ]


def test_l_minus_n_w_is_the_weekday_nearest_that_day() -> None:
    # May 29 2027 (31 - 2) is a Saturday.
    assert fires("0 0 0 L-2W * ?", "2027-05-01T00:00", 1) == ["Fri 2027-05-28 00:00"]


def test_last_weekday_of_month_in_day_of_week() -> None:
    assert fires("0 0 0 ? * 2L", "2027-01-01T00:00") == [
        "Mon 2027-01-25 00:00",
        "Mon 2027-02-22 00:00",
        "Mon 2027-03-29 00:00",
        "Mon 2027-04-26 00:00",
    ]


def test_l_alone_in_day_of_week_is_saturday() -> None:
    assert fires("0 0 0 ? * L", "2027-01-01T00:00", 2) == [
        "Sat 2027-01-02 00:00",
        "Sat 2027-01-09 00:00",
    ]


def test_quartz_day_of_week_counts_from_sunday_1() -> None:
    assert fires("0 0 0 ? * 1", "2027-01-01T00:00", 1) == ["Sun 2027-01-03 00:00"]
    assert fires("0 0 0 ? * 7", "2027-01-01T00:00", 1) == ["Sat 2027-01-02 00:00"]
    assert fires("0 0 0 ? * 2/2", "2027-01-01T00:00") == [
        "Mon 2027-01-04 00:00",
        "Wed 2027-01-06 00:00",
        "Fri 2027-01-08 00:00",
        "Mon 2027-01-11 00:00",
    ]


def test_names_are_case_insensitive() -> None:
    assert fires("0 30 9 ? jul mon", "2027-01-01T00:00") == [
        "Mon 2027-07-05 09:30",
        "Mon 2027-07-12 09:30",
        "Mon 2027-07-19 09:30",
        "Mon 2027-07-26 09:30",
    ]
    assert fires("0 0 0 ? * fri#2", "2027-01-01T00:00", 1) == ["Fri 2027-01-08 00:00"]


def test_steps_ranges_and_lists() -> None:
    assert fires("0 5/20 8-9 * * ?", "2027-01-01T00:00", 7) == [
        "Fri 2027-01-01 08:05",
        "Fri 2027-01-01 08:25",
        "Fri 2027-01-01 08:45",
        "Fri 2027-01-01 09:05",
        "Fri 2027-01-01 09:25",
        "Fri 2027-01-01 09:45",
        "Sat 2027-01-02 08:05",
    ]
    assert fires("0 0 9-17/4 * * ?", "2027-01-01T00:00") == [
        "Fri 2027-01-01 09:00",
        "Fri 2027-01-01 13:00",
        "Fri 2027-01-01 17:00",
        "Sat 2027-01-02 09:00",
    ]
    assert fires("0 0 0 1,15 * ?", "2027-01-01T00:00") == [
        "Fri 2027-01-15 00:00",
        "Mon 2027-02-01 00:00",
        "Mon 2027-02-15 00:00",
        "Mon 2027-03-01 00:00",
    ]
    assert fires("0 0 0 1 1/4 ?", "2027-01-01T00:00", 3) == [
        "Sat 2027-05-01 00:00",
        "Wed 2027-09-01 00:00",
        "Sat 2028-01-01 00:00",
    ]
    assert fires("0 0 0 ? * MON-WED", "2027-01-01T00:00") == [
        "Mon 2027-01-04 00:00",
        "Tue 2027-01-05 00:00",
        "Wed 2027-01-06 00:00",
        "Mon 2027-01-11 00:00",
    ]


def test_seconds_field() -> None:
    assert fires("*/15 * * * * ?", "2027-01-01T00:00:07", fmt="%H:%M:%S") == [
        "00:00:15",
        "00:00:30",
        "00:00:45",
        "00:01:00",
    ]


def test_backwards_ranges_wrap_round_as_in_quartz() -> None:
    assert fires("0 0 22-1 * * ?", "2027-01-01T12:00") == [
        "Fri 2027-01-01 22:00",
        "Fri 2027-01-01 23:00",
        "Sat 2027-01-02 00:00",
        "Sat 2027-01-02 01:00",
    ]
    assert fires("0 0 0 ? * FRI-MON", "2027-01-01T00:00") == [
        "Sat 2027-01-02 00:00",
        "Sun 2027-01-03 00:00",
        "Mon 2027-01-04 00:00",
        "Fri 2027-01-08 00:00",
    ]


def test_year_field_with_steps_lists_and_ranges() -> None:
    assert fires("0 0 0 1 1 ? 2030/5", "2027-01-01T00:00", 3) == [
        "Tue 2030-01-01 00:00",
        "Mon 2035-01-01 00:00",
        "Sun 2040-01-01 00:00",
    ]
    assert fires("0 0 0 1 1 ? 2028,2031-2032", "2027-01-01T00:00") == [
        "Sat 2028-01-01 00:00",
        "Wed 2031-01-01 00:00",
        "Thu 2032-01-01 00:00",
    ]


def test_leap_day_in_2096_is_found_fast() -> None:
    started = time.perf_counter()
    assert fires("0 0 0 29 2 ? 2096", "2027-01-01T00:00", 3) == ["Wed 2096-02-29 00:00"]
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("expression", "count"),
    [
        ("0 0 0 ? * 6#5", 100),
        ("0 0 0 30 2 ?", 1),  # never: searched up to 2099
        ("0 0 0 31 2,4,6,9,11 ? *", 1),
        ("* * * ? * *", 2000),
        ("0 0 0 29 2 ? 2099", 1),
    ],
)
def test_sparse_and_impossible_rules_are_computed_without_scanning(
    expression: str, count: int
) -> None:
    started = time.perf_counter()
    fires(expression, "2027-01-01T00:00", count)
    assert time.perf_counter() - started < 0.5


def test_no_fire_times_after_2099() -> None:
    assert fires("0 0 0 1 1 ? 2099", "2099-06-01T00:00") == []
    assert fires("0 0 0 1 1 ?", "2098-06-01T00:00", 5) == ["Thu 2099-01-01 00:00"]
    assert fires("0 0 0 30 2 ?", "2027-01-01T00:00") == []


def test_fire_times_are_strictly_after_the_start() -> None:
    assert fires("0 0 12 * * ?", "2027-01-01T12:00", 1) == ["Sat 2027-01-02 12:00"]
    assert fires("0 0 12 * * ?", "2027-01-01T11:59:59.999", 1) == ["Fri 2027-01-01 12:00"]


# Unix form: minute hour day-of-month month day-of-week.


@pytest.mark.parametrize("sunday", ["0", "7", "SUN", "sun"])
def test_unix_day_of_week_0_and_7_are_sunday(sunday: str) -> None:
    assert fires(f"0 0 * * {sunday}", "2027-01-01T00:00", 2) == [
        "Sun 2027-01-03 00:00",
        "Sun 2027-01-10 00:00",
    ]


def test_unix_form_counts_monday_as_1_and_fires_on_whole_minutes() -> None:
    assert fires("30 9 * * 1-5", "2027-01-01T00:00", fmt="%a %d %H:%M:%S") == [
        "Fri 01 09:30:00",
        "Mon 04 09:30:00",
        "Tue 05 09:30:00",
        "Wed 06 09:30:00",
    ]


def test_unix_form_with_both_day_fields_restricted_fires_on_either() -> None:
    # The 13th, or any Friday.
    assert fires("0 0 13 * 5", "2027-01-01T00:00") == [
        "Fri 2027-01-08 00:00",
        "Wed 2027-01-13 00:00",
        "Fri 2027-01-15 00:00",
        "Fri 2027-01-22 00:00",
    ]


def test_unix_form_with_a_starred_day_field_needs_both() -> None:
    # Vixie cron: '*/2' starts with '*', so odd days that are also Mondays.
    assert fires("0 0 */2 * 1", "2027-01-01T00:00") == [
        "Mon 2027-01-11 00:00",
        "Mon 2027-01-25 00:00",
        "Mon 2027-02-01 00:00",
        "Mon 2027-02-15 00:00",
    ]


def test_unix_form_accepts_a_question_mark_for_a_day_field() -> None:
    assert fires("0 12 ? * *", "2027-01-01T00:00", 2) == [
        "Fri 2027-01-01 12:00",
        "Sat 2027-01-02 12:00",
    ]


def test_expression_is_kept_normalised() -> None:
    schedule = parse_schedule("  0 0  12 lw * ?  ")
    assert isinstance(schedule, CronSchedule)
    assert schedule.to_dict() == {"type": "cron", "expression": "0 0 12 LW * ?"}


@pytest.mark.parametrize(
    ("expression", "field", "fix"),
    [
        ("1 2 3 4", "expression", "6 or 7"),
        ("0 0 0 1 * ? 2030 9", "expression", "has 8 fields"),
        ("0 60 * * * ?", "minutes", "use from 0 to 59"),
        ("60 * * * * ?", "seconds", "use from 0 to 59"),
        ("0 0 24 * * ?", "hours", "use from 0 to 23"),
        ("0 0 0 32 * ?", "day-of-month", "use from 1 to 31"),
        ("0 0 0 0 * ?", "day-of-month", "use from 1 to 31"),
        ("0 0 0 ? 13 *", "month", "use from 1 to 12 or JAN-DEC"),
        ("0 0 0 ? * 8", "day-of-week", "use from 1 to 7 or SUN-SAT"),
        ("0 0 0 ? * 0", "day-of-week", "use from 1 to 7"),
        ("0 0 0 1 * ? 2100", "year", "1970 to 2099"),
        ("0 0 0 1 * ? 1969", "year", "1970 to 2099"),
        ("0 0 0 ? * FUNDAY", "day-of-week", "not a number or name"),
        ("0/120 * * * * ?", "seconds", "Increment > 60"),
        ("0 0/60 * * * ?", "minutes", "use 1 to 59"),
        ("0 0 */24 * * ?", "hours", "Increment > 24"),
        ("0 0 0 1/32 * ?", "day-of-month", "Increment > 31"),
        ("0 0 0 ? * 1/8", "day-of-week", "Increment > 7"),
        ("0 0 0 1 1/13 ?", "month", "use 1 to 12"),
        ("0 0 0 ? * 1/8", "day-of-week", "use 1 to 7"),
        ("*/0 * * * * ?", "seconds", "1 or more"),
        ("0 0 0 1,,2 * ?", "day-of-month", "empty item"),
        ("? * * * * ?", "seconds", "'?' is only allowed in day-of-month or day-of-week"),
        ("0 0 0 1 ? ?", "month", "'?' is only allowed"),
        ("0 0 0 ?5 * ?", "day-of-month", "'?' must stand alone"),
        ("0 0 0 32W * ?", "day-of-month", "W needs a day from 1 to 31"),
        ("0 0 0 1W,15W * ?", "day-of-month", "cannot be combined with a list"),
        ("0 0 0 1-5W * ?", "day-of-month", "not a range"),
        ("0 0 0 L,15 * ?", "day-of-month", "cannot be combined with a list"),
        ("0 0 0 L-31 * ?", "day-of-month", "from 0 to 30"),
        ("0 0 0 ? * 1,6L", "day-of-week", "cannot be combined with a list"),
        ("0 0 0 ? * 2#1,4#3", "day-of-week", "cannot be combined with a list"),
        ("0 0 0 ? * 6#0", "day-of-week", "from 1 to 5"),
        ("0 0 0 ? * 6#6", "day-of-week", "from 1 to 5"),
        ("0 0 0 ? * 1W", "day-of-week", "W is only allowed in day-of-month"),
        ("0 0 0 1#2 * ?", "day-of-month", "'#' is only allowed in day-of-week"),
        ("0 0 L * * ?", "hours", "only allowed in day-of-month and day-of-week"),
        ("0 0 0 1 * MON", "day-of-month and day-of-week", "put '?' in one of them"),
        ("0 0 0 * * *", "day-of-month and day-of-week", "put '?' in one of them"),
        ("0 0 0 ? * ?", "day-of-month and day-of-week", "only one of them may be '?'"),
        ("0 0 0 1 * ? 2030-2020", "year", "runs backwards"),
        ("0 0 L * *", "day-of-month", "Quartz form"),
        ("0 0 * * 5#3", "day-of-week", "Quartz form"),
        ("0 0 * * 8", "day-of-week", "use from 0 to 7"),
        ("0 22-2 * * *", "hours", "runs backwards"),
    ],
)
def test_invalid_expressions_are_refused_naming_the_field(
    expression: str, field: str, fix: str
) -> None:
    with pytest.raises(UsageError) as refused:
        parse_schedule(expression)
    assert refused.value.message.startswith(f"{field}: ")
    assert fix in refused.value.message
    assert refused.value.exit_code == 2


def test_a_refused_expression_is_quoted_as_it_was_typed() -> None:
    with pytest.raises(UsageError) as words:
        parse_schedule("hello  world")
    with pytest.raises(UsageError) as misspelt:
        parse_schedule("0 0 1 ? * mon-fry")

    assert words.value.message.startswith("expression: hello world: has 2 fields")
    assert words.value.message.endswith("(cron expression 'hello world')")
    assert misspelt.value.message.startswith("day-of-week: MON-FRY: ")
    assert misspelt.value.message.endswith("(cron expression '0 0 1 ? * mon-fry')")
