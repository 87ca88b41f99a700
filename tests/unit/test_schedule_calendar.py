"""Once, daily, weekly and monthly schedules, and parse_schedule's checks of spec fields."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from usersync.errors import UsageError
from usersync.schedule import (
    MAX_COUNT,
    CronSchedule,
    DailySchedule,
    MonthlySchedule,
    OnceSchedule,
    TimeOfDay,
    WeeklySchedule,
    parse_schedule,
)

UTC_ZONE = ZoneInfo("UTC")


def fires(spec: dict[str, Any], after: str, count: int = 4) -> list[str]:
    start = datetime.fromisoformat(after).replace(tzinfo=UTC_ZONE)
    schedule = parse_schedule(spec)
    return [t.strftime("%a %Y-%m-%d %H:%M") for t in schedule.next_times(start, count, UTC_ZONE)]


def test_once_now_is_due_at_the_moment_asked_about() -> None:
    after = datetime(2026, 5, 1, 12, 0, 7, 250_000, tzinfo=UTC_ZONE)
    schedule = parse_schedule({"type": "once"})
    assert schedule.next_times(after, 3, UTC_ZONE) == [after]
    assert schedule.next_times(after, 0, UTC_ZONE) == []


def test_once_at_a_future_time_fires_then_and_only_then() -> None:
    spec = {"type": "once", "at": "2026-12-01T09:00"}
    assert fires(spec, "2026-11-30T00:00") == ["Tue 2026-12-01 09:00"]
    assert fires(spec, "2026-12-01T08:59:59.9") == ["Tue 2026-12-01 09:00"]


def test_once_at_a_past_time_or_now_gives_nothing() -> None:
    spec = {"type": "once", "at": "2026-12-01T09:00"}
    assert fires(spec, "2026-12-01T09:00") == []
    assert fires(spec, "2027-01-01T00:00") == []


def test_once_at_is_read_in_the_schedules_zone() -> None:
    schedule = parse_schedule({"type": "once", "at": "2026-12-01T09:00", "timezone": "Asia/Tokyo"})
    [fire] = schedule.next_times(datetime(2026, 1, 1, tzinfo=UTC_ZONE), 1)
    assert fire.isoformat() == "2026-12-01T09:00:00+09:00"


def test_daily() -> None:
    assert fires({"type": "daily", "time": "01:00"}, "2026-12-30T01:00", 3) == [
        "Thu 2026-12-31 01:00",
        "Fri 2027-01-01 01:00",
        "Sat 2027-01-02 01:00",
    ]


def test_daily_with_seconds() -> None:
    schedule = parse_schedule({"type": "daily", "time": "7:05:30"})
    assert schedule.to_dict() == {"type": "daily", "time": "07:05:30"}
    [fire] = schedule.next_times(datetime(2026, 1, 1, 7, 5, 29, tzinfo=UTC_ZONE), 1, UTC_ZONE)
    assert fire == datetime(2026, 1, 1, 7, 5, 30, tzinfo=UTC_ZONE)


def test_weekly_on_the_days_given() -> None:
    spec = {"type": "weekly", "days": ["THU", "mon"], "time": "09:30"}
    assert fires(spec, "2026-12-31T09:30") == [
        "Mon 2027-01-04 09:30",
        "Thu 2027-01-07 09:30",
        "Mon 2027-01-11 09:30",
        "Thu 2027-01-14 09:30",
    ]


def test_weekly_on_sunday_and_saturday() -> None:
    spec = {"type": "weekly", "days": ["SUN", "SAT"], "time": "00:00"}
    assert fires(spec, "2027-01-01T00:00", 3) == [
        "Sat 2027-01-02 00:00",
        "Sun 2027-01-03 00:00",
        "Sat 2027-01-09 00:00",
    ]


def test_monthly_31_fires_on_the_last_day_of_shorter_months() -> None:
    assert fires({"type": "monthly", "day": 31, "time": "01:00"}, "2027-01-01T00:00", 5) == [
        "Sun 2027-01-31 01:00",
        "Sun 2027-02-28 01:00",
        "Wed 2027-03-31 01:00",
        "Fri 2027-04-30 01:00",
        "Mon 2027-05-31 01:00",
    ]


def test_monthly_29_and_31_in_a_leap_february() -> None:
    assert fires({"type": "monthly", "day": 31, "time": "01:00"}, "2028-02-01T00:00", 1) == [
        "Tue 2028-02-29 01:00"
    ]
    assert fires({"type": "monthly", "day": 29, "time": "01:00"}, "2028-01-30T00:00", 2) == [
        "Tue 2028-02-29 01:00",
        "Wed 2028-03-29 01:00",
    ]
    assert fires({"type": "monthly", "day": 30, "time": "01:00"}, "2100-01-01T00:00", 1) == []


def test_monthly_30_in_a_common_february() -> None:
    assert fires({"type": "monthly", "day": 30, "time": "23:59"}, "2027-02-01T00:00", 2) == [
        "Sun 2027-02-28 23:59",
        "Tue 2027-03-30 23:59",
    ]


def test_monthly_fires_within_the_same_day_when_the_time_is_still_ahead() -> None:
    assert fires({"type": "monthly", "day": 15, "time": "18:00"}, "2027-01-15T17:00", 2) == [
        "Fri 2027-01-15 18:00",
        "Mon 2027-02-15 18:00",
    ]


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ({"type": "once"}, OnceSchedule()),
        (
            {"type": "once", "at": "2026-12-01T09:00", "timezone": "Europe/Berlin"},
            OnceSchedule(datetime(2026, 12, 1, 9, 0), "Europe/Berlin"),
        ),
        ({"type": "daily", "time": "01:00"}, DailySchedule(TimeOfDay(1, 0))),
        (
            {"type": "weekly", "days": ["MON", "THU"], "time": "09:30"},
            WeeklySchedule((0, 3), TimeOfDay(9, 30)),
        ),
        ({"type": "monthly", "day": 31, "time": "01:00"}, MonthlySchedule(31, TimeOfDay(1, 0))),
        (
            {"type": "cron", "expression": "0 0 1 * * ?"},
            CronSchedule.from_expression("0 0 1 * * ?"),
        ),
    ],
)
def test_contract_specs_parse_and_round_trip(spec: dict[str, Any], parsed: object) -> None:
    schedule = parse_schedule(spec)
    assert schedule == parsed
    assert schedule.to_dict() == spec
    assert parse_schedule(json.dumps(spec)) == schedule


def test_to_dict_is_canonical() -> None:
    spec = {"type": "weekly", "days": ["thu", "MON", "MON"], "time": "9:30"}
    assert parse_schedule(spec).to_dict() == {
        "type": "weekly",
        "days": ["MON", "THU"],
        "time": "09:30",
    }
    assert parse_schedule({"type": "once", "at": "2026-12-01 09:00:05"}).to_dict() == {
        "type": "once",
        "at": "2026-12-01T09:00:05",
    }


def test_a_plain_string_is_a_cron_expression() -> None:
    schedule = parse_schedule("0 0 1 * * ?")
    assert schedule.to_dict() == {"type": "cron", "expression": "0 0 1 * * ?"}


def test_timezone_is_kept_and_offered_as_the_schedules_zone() -> None:
    schedule = parse_schedule({"type": "daily", "time": "01:00", "timezone": "Europe/Berlin"})
    assert schedule.timezone == "Europe/Berlin"
    assert schedule.zone() == ZoneInfo("Europe/Berlin")
    assert parse_schedule({"type": "daily", "time": "01:00"}).zone("Asia/Tokyo").key == "Asia/Tokyo"
    blank = parse_schedule({"type": "daily", "time": "01:00", "timezone": " "})
    assert blank.timezone is None
    assert blank.to_dict() == {"type": "daily", "time": "01:00"}


@pytest.mark.parametrize(
    ("spec", "field", "fix"),
    [
        ({"type": "hourly"}, "type", "use one of once, daily, weekly, monthly, cron"),
        ({"time": "01:00"}, "type", "use one of"),
        ({"type": "daily"}, "time", 'add e.g. "01:00"'),
        ({"type": "daily", "time": "25:00"}, "time", "HH:MM"),
        ({"type": "daily", "time": "01:60"}, "time", "from 00:00 to 23:59"),
        ({"type": "daily", "time": 100}, "time", "HH:MM"),
        ({"type": "daily", "time": "1am"}, "time", "HH:MM"),
        ({"type": "daily", "time": "01:00", "tim": "02:00"}, "tim", "it takes time, timezone"),
        ({"type": "weekly", "time": "09:30"}, "days", '["MON", "THU"]'),
        ({"type": "weekly", "days": [], "time": "09:30"}, "days", "MON, TUE"),
        ({"type": "weekly", "days": "MON", "time": "09:30"}, "days", "a list of"),
        ({"type": "weekly", "days": ["MON", "FUN"], "time": "09:30"}, "days", "'FUN'"),
        ({"type": "weekly", "days": ["Monday"], "time": "09:30"}, "days", "MON, TUE"),
        ({"type": "monthly", "day": 32, "time": "01:00"}, "day", "from 1 to 31"),
        ({"type": "monthly", "day": 0, "time": "01:00"}, "day", "from 1 to 31"),
        ({"type": "monthly", "day": "15", "time": "01:00"}, "day", "from 1 to 31"),
        ({"type": "monthly", "day": True, "time": "01:00"}, "day", "from 1 to 31"),
        ({"type": "once", "at": "2026-13-01T09:00"}, "at", "not a real date"),
        ({"type": "once", "at": "2026-12-01"}, "at", "2026-12-01T09:00"),
        ({"type": "once", "at": "2026-12-01T09:00+01:00"}, "at", "no offset"),
        ({"type": "once", "at": "2100-01-01T00:00"}, "at", "from 1970 to 2099"),
        ({"type": "cron", "expression": 5}, "expression", "'0 0 1 * * ?'"),
        ({"type": "cron"}, "expression", "add e.g."),
        ({"type": "daily", "time": "01:00", "timezone": "Europe/Berln"}, "timezone", "Berlin"),
        ({"type": "daily", "time": "01:00", "timezone": 1}, "timezone", "Europe/Berlin"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(spec: dict[str, Any], field: str, fix: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_schedule(spec)
    assert refused.value.message.startswith(f"{field}: ")
    assert fix in refused.value.message


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ('{"type": "daily", "time": }', "not valid JSON"),
        ("", "give a cron expression"),
        ("   ", "give a cron expression"),
    ],
)
def test_bad_schedule_text_is_refused(text: str, fix: str) -> None:
    with pytest.raises(UsageError, match=fix):
        parse_schedule(text)


def test_neither_text_nor_mapping_is_refused() -> None:
    with pytest.raises(UsageError, match="expected a JSON object or a cron expression"):
        parse_schedule(42)  # type: ignore[arg-type]


def test_next_times_needs_an_aware_start_and_a_count_of_zero_or_more() -> None:
    schedule = parse_schedule({"type": "daily", "time": "01:00"})
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_times(datetime(2026, 1, 1), 1, UTC_ZONE)
    for count in (-1, MAX_COUNT + 1):
        with pytest.raises(UsageError, match="count"):
            schedule.next_times(datetime(2026, 1, 1, tzinfo=UTC_ZONE), count, UTC_ZONE)
    assert schedule.next_times(datetime(2026, 1, 1, tzinfo=UTC_ZONE), 0, UTC_ZONE) == []
