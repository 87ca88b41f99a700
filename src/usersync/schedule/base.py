"""The Schedule interface, and the walk through local wall-clock times that every rule shares.

A rule is a `WallPattern`: the seconds, minutes, hours, months and years it fires in plus a
`DayRule` for the days. `next_times` walks the pattern field by field from the start time
(next matching year, then month, day, hour, minute, second), so a rule that fires once in
decades costs a few hundred month checks, never a second-by-second scan. Each wall time is
turned into an instant by the DST policy in `zones.fire_instant`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from usersync.errors import UsageError
from usersync.schedule.days import DayRule
from usersync.schedule.zones import fire_instant, resolve_zone

# Quartz's year field runs from 1970 to 2099; every schedule stops there.
MIN_YEAR = 1970
MAX_YEAR = 2099

# More fire times than anyone reads in one go; a bound so one request cannot run for ever.
MAX_COUNT = 10_000

ALL_SECONDS = tuple(range(60))
ALL_MINUTES = tuple(range(60))
ALL_HOURS = tuple(range(24))
ALL_MONTHS = tuple(range(1, 13))
ALL_YEARS = tuple(range(MIN_YEAR, MAX_YEAR + 1))


def format_time(hour: int, minute: int, second: int = 0) -> str:
    """ "09:30", or "09:30:15" when the seconds matter."""
    text = f"{hour:02d}:{minute:02d}"
    return f"{text}:{second:02d}" if second else text


@dataclass(frozen=True)
class WallPattern:
    """The local wall-clock times a rule fires at; each tuple ascending."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: DayRule
    months: tuple[int, ...] = ALL_MONTHS
    years: tuple[int, ...] = ALL_YEARS

    def walls_from(self, start: datetime) -> Iterator[datetime]:
        """Matching naive wall times at or after the naive `start`, ascending, up to MAX_YEAR.

        Each level starts at the start's own value only while every level above it is still
        on the start's value; after that it starts from its smallest value.
        """
        if start.year < MIN_YEAR:
            start = datetime(MIN_YEAR, 1, 1)
        for year in self.years[bisect_left(self.years, start.year) :]:
            on_year = year == start.year
            for month in self.months[bisect_left(self.months, start.month) if on_year else 0 :]:
                on_month = on_year and month == start.month
                days = self.days.days(year, month)
                for day in days[bisect_left(days, start.day) if on_month else 0 :]:
                    on_day = on_month and day == start.day
                    hours = self.hours[bisect_left(self.hours, start.hour) if on_day else 0 :]
                    for hour in hours:
                        on_hour = on_day and hour == start.hour
                        first_minute = bisect_left(self.minutes, start.minute) if on_hour else 0
                        for minute in self.minutes[first_minute:]:
                            on_minute = on_hour and minute == start.minute
                            first_second = (
                                bisect_left(self.seconds, start.second) if on_minute else 0
                            )
                            for second in self.seconds[first_second:]:
                                yield datetime(year, month, day, hour, minute, second)


def start_at(after: datetime | None, zone: ZoneInfo) -> datetime:
    """Where a listing of fire times starts, aware: now, or `after`.

    A naive `after` is a wall time in `zone`, read as the schedules read theirs
    (`zones.fire_instant`): a time that a spring-forward skips is the jump, a repeated one its
    first occurrence. UsageError for a time outside the years MIN_YEAR to MAX_YEAR.
    """
    if after is None:
        return datetime.now(UTC)
    if not MIN_YEAR <= after.year <= MAX_YEAR:
        raise UsageError(f"after: give a time between the years {MIN_YEAR} and {MAX_YEAR}")
    if after.tzinfo is None or after.utcoffset() is None:
        return fire_instant(after.replace(tzinfo=None), zone)[0]
    return after


def check_request(after: datetime, count: int) -> datetime:
    """`after` in UTC, once both arguments are known to be usable."""
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("after must be a timezone-aware datetime")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
        raise UsageError(f"count: {count!r} is not a number of fire times; use 0 to {MAX_COUNT}")
    return after.astimezone(UTC)


class Schedule(ABC):
    """A parsed schedule. Build one with `parse_schedule`."""

    timezone: str | None
    """The zone named in the spec, or None to use the workspace's (see `zone`)."""

    def zone(self, default: str = "UTC") -> ZoneInfo:
        """The zone this schedule runs in: its own, else `default`."""
        return resolve_zone(self.timezone, default)

    @abstractmethod
    def next_times(self, after: datetime, count: int, tz: ZoneInfo | None = None) -> list[datetime]:
        """Up to `count` (0 to MAX_COUNT) fire times strictly after the aware `after`,
        ascending, as aware datetimes in `tz` (default: `self.zone()`). Fewer when the rule
        has no more before the end of MAX_YEAR. Skipped and repeated local times follow
        `zones.fire_instant`. ValueError for a naive `after` (a programming error).
        """

    @abstractmethod
    def describe(self) -> str:
        """The rule in words, e.g. "At 01:00, every day" (without the zone)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form; `parse_schedule(s.to_dict()) == s`."""

    def _with_zone(self, data: dict[str, Any]) -> dict[str, Any]:
        if self.timezone is not None:
            data["timezone"] = self.timezone
        return data


class PatternSchedule(Schedule):
    """A schedule whose fire times are the wall times of a `WallPattern`."""

    @property
    @abstractmethod
    def pattern(self) -> WallPattern: ...

    def next_times(self, after: datetime, count: int, tz: ZoneInfo | None = None) -> list[datetime]:
        after_utc = check_request(after, count)
        zone = tz if tz is not None else self.zone()
        # Wall times map to instants monotonically (repeated times take their first
        # occurrence, skipped ones the jump), so no instant after `after` comes from a wall
        # time before after's own; earlier ones from that point on are filtered below.
        start = after.astimezone(zone).replace(tzinfo=None, microsecond=0, fold=0)
        walls = self.pattern.walls_from(start)
        found: list[datetime] = []
        latest = after_utc
        while len(found) < count:
            wall = next(walls, None)
            if wall is None:
                break
            instant, after_jump = fire_instant(wall, zone)
            if after_jump is not None:
                # Every wall time left in this gap fires at the same jump: step over them.
                walls = self.pattern.walls_from(after_jump)
            # `<=` also drops a fire time equal to the previous one: several skipped wall
            # times, and a real one at the jump itself, fire once together.
            if instant <= latest:
                continue
            found.append(instant.astimezone(zone))
            latest = instant
        return found
