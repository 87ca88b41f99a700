"""Daylight saving, for every rule kind, both ways, in three zones (CONTRACT.md "Schedules").

A local time skipped by a spring-forward fires once, when the clock jumps; a local time that
repeats in autumn fires once, at its first occurrence; a cron that fires every few minutes
is evaluated once per wall-clock time, so the repeated hour's second pass does not fire.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usersync.schedule import parse_schedule


@dataclass(frozen=True)
class Zone:
    name: str
    gap_day: date  # clocks go forward from 02:00 to 03:00 that night
    gap_offset: str  # the UTC offset from the jump on
    repeat_day: date  # clocks go back that night, repeating `repeated_hour`
    repeated_hour: int
    first_offset: str  # the repeated hour's first pass
    second_offset: str  # its second pass, and after

    def __str__(self) -> str:
        return self.name


BERLIN = Zone(
    "Europe/Berlin", date(2026, 3, 29), "+02:00", date(2026, 10, 25), 2, "+02:00", "+01:00"
)
NEW_YORK = Zone(
    "America/New_York", date(2026, 3, 8), "-04:00", date(2026, 11, 1), 1, "-04:00", "-05:00"
)
# Southern hemisphere: summer time ends on the first Sunday of April, starts on the first
# Sunday of October.
SYDNEY = Zone(
    "Australia/Sydney", date(2026, 10, 4), "+11:00", date(2026, 4, 5), 2, "+11:00", "+10:00"
)
ZONES = pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, SYDNEY], ids=str)


def fires(spec: dict[str, Any] | str, zone: Zone, after: datetime, count: int = 2) -> list[str]:
    tz = ZoneInfo(zone.name)
    return [t.isoformat() for t in parse_schedule(spec).next_times(after, count, tz)]


def local(zone: Zone, day: date, clock: str, fold: int = 0) -> datetime:
    moment = datetime.fromisoformat(f"{day.isoformat()}T{clock}")
    return moment.replace(tzinfo=ZoneInfo(zone.name), fold=fold)


def noon_before(zone: Zone, day: date) -> datetime:
    return local(zone, day - timedelta(days=1), "12:00")


def at(day: date, clock: str, offset: str) -> str:
    return f"{day.isoformat()}T{clock}:00{offset}"


def next_month(day: date) -> date:
    return day.replace(year=day.year + day.month // 12, month=day.month % 12 + 1)


# Spring forward: 02:30 does not exist that night.

SKIPPED_RULES = [
    {"type": "daily", "time": "02:30"},
    {"type": "weekly", "days": ["SUN"], "time": "02:30"},  # every change night is a Sunday
    "0 30 2 * * ?",
    "30 2 * * *",
]


@ZONES
@pytest.mark.parametrize("spec", SKIPPED_RULES, ids=str)
def test_a_skipped_time_fires_once_when_the_clock_jumps(
    zone: Zone, spec: dict[str, Any] | str
) -> None:
    gap = zone.gap_day
    following = gap + timedelta(days=7 if "SUN" in str(spec) else 1)
    assert fires(spec, zone, noon_before(zone, gap)) == [
        at(gap, "03:00", zone.gap_offset),
        at(following, "02:30", zone.gap_offset),
    ]


@ZONES
def test_monthly_on_a_skipped_time_fires_at_the_jump(zone: Zone) -> None:
    gap = zone.gap_day
    spec = {"type": "monthly", "day": gap.day, "time": "02:30"}
    assert fires(spec, zone, noon_before(zone, gap)) == [
        at(gap, "03:00", zone.gap_offset),
        at(next_month(gap), "02:30", zone.gap_offset),
    ]


@ZONES
def test_once_at_a_skipped_time_fires_at_the_jump(zone: Zone) -> None:
    spec = {"type": "once", "at": f"{zone.gap_day.isoformat()}T02:30"}
    assert fires(spec, zone, noon_before(zone, zone.gap_day)) == [
        at(zone.gap_day, "03:00", zone.gap_offset)
    ]


@ZONES
def test_a_cron_every_20_minutes_skips_the_missing_hour(zone: Zone) -> None:
    gap = zone.gap_day
    assert fires("0 */20 * * * ?", zone, local(zone, gap, "01:30"), 4) == [
        local(zone, gap, "01:40").isoformat(),
        at(gap, "03:00", zone.gap_offset),
        at(gap, "03:20", zone.gap_offset),
        at(gap, "03:40", zone.gap_offset),
    ]


@ZONES
def test_every_minute_of_the_missing_hour_collapses_into_one_fire_at_the_jump(
    zone: Zone,
) -> None:
    gap = zone.gap_day
    assert fires("0 * * * * ?", zone, local(zone, gap, "01:58"), 3) == [
        local(zone, gap, "01:59").isoformat(),
        at(gap, "03:00", zone.gap_offset),
        at(gap, "03:01", zone.gap_offset),
    ]


@ZONES
def test_the_jump_fire_is_not_repeated_when_asking_from_it(zone: Zone) -> None:
    jump = local(zone, zone.gap_day, "03:00")
    assert fires({"type": "daily", "time": "02:30"}, zone, jump, 1) == [
        at(zone.gap_day + timedelta(days=1), "02:30", zone.gap_offset)
    ]


# Fall back: the repeated hour happens twice.


def repeated_clock(zone: Zone, minute: int = 30) -> str:
    return f"{zone.repeated_hour:02d}:{minute:02d}"


@ZONES
@pytest.mark.parametrize("kind", ["daily", "weekly", "cron", "unix"])
def test_a_repeated_time_fires_once_at_its_first_occurrence(zone: Zone, kind: str) -> None:
    day, clock = zone.repeat_day, repeated_clock(zone)
    specs: dict[str, dict[str, Any] | str] = {
        "daily": {"type": "daily", "time": clock},
        "weekly": {"type": "weekly", "days": ["SUN"], "time": clock},
        "cron": f"0 30 {zone.repeated_hour} * * ?",
        "unix": f"30 {zone.repeated_hour} * * *",
    }
    spec = specs[kind]
    following = day + timedelta(days=7 if kind == "weekly" else 1)
    assert fires(spec, zone, noon_before(zone, day)) == [
        at(day, clock, zone.first_offset),
        at(following, clock, zone.second_offset),
    ]


@ZONES
def test_monthly_on_a_repeated_time_fires_at_the_first_occurrence(zone: Zone) -> None:
    day, clock = zone.repeat_day, repeated_clock(zone)
    spec = {"type": "monthly", "day": day.day, "time": clock}
    assert fires(spec, zone, noon_before(zone, day)) == [
        at(day, clock, zone.first_offset),
        at(next_month(day), clock, zone.second_offset),
    ]


@ZONES
def test_once_at_a_repeated_time_fires_at_the_first_occurrence_only(zone: Zone) -> None:
    day, clock = zone.repeat_day, repeated_clock(zone)
    spec = {"type": "once", "at": f"{day.isoformat()}T{clock}"}
    assert fires(spec, zone, noon_before(zone, day)) == [at(day, clock, zone.first_offset)]
    second_pass = local(zone, day, repeated_clock(zone, 0), fold=1)
    assert fires(spec, zone, second_pass) == []


@ZONES
def test_a_cron_every_20_minutes_does_not_fire_again_in_the_second_pass(zone: Zone) -> None:
    day, hour = zone.repeat_day, zone.repeated_hour
    after = local(zone, day, f"{hour - 1:02d}:50")
    assert fires("0 */20 * * * ?", zone, after, 4) == [
        at(day, repeated_clock(zone, 0), zone.first_offset),
        at(day, repeated_clock(zone, 20), zone.first_offset),
        at(day, repeated_clock(zone, 40), zone.first_offset),
        at(day, f"{hour + 1:02d}:00", zone.second_offset),
    ]


@ZONES
def test_asking_during_the_second_pass_gives_the_hour_after_it(zone: Zone) -> None:
    day, hour = zone.repeat_day, zone.repeated_hour
    second_pass = local(zone, day, repeated_clock(zone, 10), fold=1)
    assert second_pass.utcoffset() != local(zone, day, repeated_clock(zone, 10)).utcoffset()
    assert fires("0 */20 * * * ?", zone, second_pass, 1) == [
        at(day, f"{hour + 1:02d}:00", zone.second_offset)
    ]
    assert fires({"type": "daily", "time": repeated_clock(zone)}, zone, second_pass, 1) == [
        at(day + timedelta(days=1), repeated_clock(zone), zone.second_offset)
    ]


def test_fire_times_are_in_the_zone_asked_for_whatever_zone_after_is_in() -> None:
    schedule = parse_schedule({"type": "daily", "time": "03:00"})
    after = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    [first] = schedule.next_times(after, 1, ZoneInfo("Europe/Berlin"))
    assert first.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert first.tzinfo == ZoneInfo("Europe/Berlin")


def test_the_schedules_own_timezone_is_used_when_none_is_passed() -> None:
    schedule = parse_schedule({"type": "daily", "time": "02:30", "timezone": "Europe/Berlin"})
    after = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert [t.isoformat() for t in schedule.next_times(after, 1)] == ["2026-03-29T03:00:00+02:00"]


# Any zone, any daily time: the policy holds across odd transitions too (30-minute changes on
# Lord Howe, a skipped day in Apia in 2011, midnight changes in Havana and Santiago).

ODD_ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "Pacific/Chatham",
    "America/Havana",
    "America/Santiago",
    "Africa/Casablanca",
    "Europe/Dublin",
]


@settings(max_examples=100, deadline=None, database=None)
@given(
    zone_name=st.sampled_from(ODD_ZONES),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 15, 30, 45]),
    start=st.datetimes(min_value=datetime(2005, 1, 1), max_value=datetime(2035, 1, 1)),
)
def test_daily_fires_at_its_time_or_at_a_jump_once_per_wall_time(
    zone_name: str, hour: int, minute: int, start: datetime
) -> None:
    tz = ZoneInfo(zone_name)
    after = start.replace(tzinfo=UTC)
    spec = {"type": "daily", "time": f"{hour:02d}:{minute:02d}"}
    found = parse_schedule(spec).next_times(after, 60, tz)
    instants = [after, *(t.astimezone(UTC) for t in found)]
    assert all(earlier < later for earlier, later in itertools.pairwise(instants))
    assert len(found) == 60
    for fire in found:
        assert fire.tzinfo is tz
        if (fire.hour, fire.minute) == (hour, minute):
            # At the wall time itself, and at its first occurrence if it repeats.
            assert fire.second == 0
            assert fire.fold == 0
        else:
            # Otherwise the wall time was skipped: the fire is the jump, the first instant
            # of a new UTC offset.
            before = (fire.astimezone(UTC) - timedelta(seconds=1)).astimezone(tz)
            assert before.utcoffset() != fire.utcoffset()
