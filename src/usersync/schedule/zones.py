"""Time zones, and the daylight-saving policy that turns a local wall-clock time into an instant.

Schedules produce wall-clock times in their zone; `fire_instant` decides when each one fires:

* a wall time that exists once fires then;
* a wall time repeated when the clocks go back fires once, at its first occurrence (fold=0);
* a wall time skipped when the clocks go forward fires at the instant of the jump
  (02:30 on a night when 02:00 becomes 03:00 fires at 03:00).

Instants are returned in UTC, because aware datetimes that share a tzinfo compare by wall
time and ignore `fold`; callers compare in UTC and convert to the zone only for display.
"""

from __future__ import annotations

import difflib
import zoneinfo
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from usersync.errors import UsageError

_EXAMPLE_ZONES = "'Europe/Berlin', 'America/New_York' or 'UTC'"
# Files in the zone directory that are not zones: "localtime" would be the host's own zone,
# which a schedule must never silently depend on.
_NOT_ZONES = frozenset({"localtime", "posixrules"})


def resolve_zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """The IANA zone called `name`, or `default` when `name` is None or blank.

    Raises UsageError for a name that is not an IANA zone, suggesting the closest real one.
    """
    blank = name is None or (isinstance(name, str) and not name.strip())
    chosen = default if blank else name
    if not isinstance(chosen, str):
        raise UsageError(f"timezone: expected an IANA zone name such as {_EXAMPLE_ZONES}")
    key = chosen.strip()
    try:
        if key in _NOT_ZONES:
            raise KeyError(key)
        return ZoneInfo(key)
    # ZoneInfo reports a bad key in several ways: not found (KeyError), a path that escapes
    # the zone directory (ValueError), a directory such as "Europe" (OSError).
    except (KeyError, ValueError, OSError):
        raise UsageError(f"timezone: unknown time zone {key!r}; {_suggest(key)}") from None


def _suggest(key: str) -> str:
    zones = known_zones()
    by_case = {zone.lower(): zone for zone in zones}
    close = by_case.get(key.lower())
    if close is None:
        matches = difflib.get_close_matches(key, zones, n=1, cutoff=0.6)
        close = matches[0] if matches else None
    if close is not None:
        return f"did you mean {close!r}?"
    return f"use an IANA name such as {_EXAMPLE_ZONES}"


@lru_cache(maxsize=1)
def known_zones() -> tuple[str, ...]:
    # Reading the zone list walks the tzdata tree; only needed for error messages, so cached.
    return tuple(sorted(zoneinfo.available_timezones() - _NOT_ZONES))


def fire_instant(wall: datetime, tz: ZoneInfo) -> tuple[datetime, datetime | None]:
    """When the naive local `wall` time fires in `tz`, as an aware UTC datetime.

    The second item is None, except for a wall time skipped by a spring-forward: then it is
    the wall time just after the jump (03:00 for a 02:00→03:00 change), so that a caller
    walking through wall times can step over the rest of the gap in one go.
    """
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None, fold=0) == wall:
        return first, None  # exists; for a repeated time fold=0 is the first occurrence
    # In a gap, fold=1 reads the wall time with the offset after the change and fold=0 with
    # the one before, so the jump lies between the two readings.
    earliest = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    jump = _jump_between(tz, earliest, first)
    return jump, jump.astimezone(tz).replace(tzinfo=None, fold=0)


def _jump_between(tz: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first second in (before, after] that already uses `after`'s UTC offset."""
    new_offset = after.astimezone(tz).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == new_offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
