"""Schedules: parse a spec, list its next fire times in a zone, and say it in words.

    parse_schedule(spec) -> Schedule      dict, its JSON text, or a cron expression
    Schedule.next_times(after, count, tz) aware fire times strictly after `after`
    Schedule.describe()                   "At 01:00, every day"
    Schedule.to_dict()                    the canonical spec
    resolve_zone(name, default)           IANA name -> ZoneInfo, UsageError if unknown
    start_at(after, zone)                 where a listing starts: now, or a (naive) time

Modules: `base` (the interface and the wall-time walk), `zones` (zones and the DST policy),
`days` (day rules), `calendar` (once/daily/weekly/monthly), `cronparse` and `cron` (Quartz
and Unix cron), `describe` (cron in words), `parse` (spec dispatch).
"""

from usersync.schedule.base import MAX_COUNT, MAX_YEAR, MIN_YEAR, Schedule, start_at
from usersync.schedule.calendar import (
    DailySchedule,
    MonthlySchedule,
    OnceSchedule,
    TimeOfDay,
    WeeklySchedule,
)
from usersync.schedule.cron import CronSchedule
from usersync.schedule.parse import parse_schedule
from usersync.schedule.zones import resolve_zone

__all__ = [
    "MAX_COUNT",
    "MAX_YEAR",
    "MIN_YEAR",
    "CronSchedule",
    "DailySchedule",
    "MonthlySchedule",
    "OnceSchedule",
    "Schedule",
    "TimeOfDay",
    "WeeklySchedule",
    "parse_schedule",
    "resolve_zone",
    "start_at",
]
