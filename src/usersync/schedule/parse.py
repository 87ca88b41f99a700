"""`parse_schedule`: a schedule spec (a dict, its JSON text, or a cron expression) to a Schedule."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from usersync.errors import UsageError
from usersync.schedule.base import Schedule
from usersync.schedule.calendar import (
    DailySchedule,
    MonthlySchedule,
    OnceSchedule,
    WeeklySchedule,
    parse_day_of_month,
    parse_local_datetime,
    parse_time,
    parse_weekdays,
)
from usersync.schedule.cron import CronSchedule
from usersync.schedule.zones import resolve_zone

_EXAMPLE = '{"type": "daily", "time": "01:00"}'


def _once(spec: Mapping[str, Any], zone: str | None) -> Schedule:
    at = spec.get("at")
    return OnceSchedule(None if at is None else parse_local_datetime(at), zone)


def _daily(spec: Mapping[str, Any], zone: str | None) -> Schedule:
    return DailySchedule(parse_time(spec["time"]), zone)


def _weekly(spec: Mapping[str, Any], zone: str | None) -> Schedule:
    return WeeklySchedule(parse_weekdays(spec["days"]), parse_time(spec["time"]), zone)


def _monthly(spec: Mapping[str, Any], zone: str | None) -> Schedule:
    return MonthlySchedule(parse_day_of_month(spec["day"]), parse_time(spec["time"]), zone)


def _cron(spec: Mapping[str, Any], zone: str | None) -> Schedule:
    expression = spec["expression"]
    if not isinstance(expression, str):
        raise UsageError(
            f"expression: {expression!r} is not a cron expression; use text such as '0 0 1 * * ?'"
        )
    return CronSchedule.from_expression(expression, zone)


# type -> (required keys, optional keys besides "type" and "timezone", builder)
_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], Callable[..., Schedule]]] = {
    "once": ((), ("at",), _once),
    "daily": (("time",), (), _daily),
    "weekly": (("days", "time"), (), _weekly),
    "monthly": (("day", "time"), (), _monthly),
    "cron": (("expression",), (), _cron),
}
_EXAMPLES = {
    "at": '"2026-12-01T09:00"',
    "time": '"01:00"',
    "days": '["MON", "THU"]',
    "day": "31",
    "expression": '"0 0 1 * * ?"',
}


def parse_schedule(spec: Mapping[str, Any] | str) -> Schedule:
    """A Schedule from a spec dict (CONTRACT.md "Schedules"), its JSON text, or a cron
    expression. Raises UsageError naming the bad field and value, and how to fix it."""
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            return _from_mapping(_json_object(text))
        if not text:
            raise UsageError(
                f"schedule: empty; give a cron expression such as '0 0 1 * * ?'"
                f" or a JSON object such as {_EXAMPLE}"
            )
        return CronSchedule.from_expression(text)
    if isinstance(spec, Mapping):
        return _from_mapping(spec)
    raise UsageError(
        f"schedule: expected a JSON object or a cron expression, got {type(spec).__name__}"
    )


def _json_object(text: str) -> Mapping[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"schedule: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno});"
            f" write an object such as {_EXAMPLE}"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"schedule: expected a JSON object such as {_EXAMPLE}")
    return data


def _from_mapping(spec: Mapping[str, Any]) -> Schedule:
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise UsageError(f"type: {kind!r} is not a schedule type; use one of {', '.join(_KINDS)}")
    required, optional, build = _KINDS[kind]
    allowed = {"type", "timezone", *required, *optional}
    unknown = sorted(str(key) for key in spec if key not in allowed)
    if unknown:
        raise UsageError(
            f"{unknown[0]}: not a field of a {kind} schedule; it takes"
            f" {', '.join(sorted(allowed - {'type'}))}"
        )
    for key in required:
        if key not in spec:
            raise UsageError(f"{key}: missing from the {kind} schedule; add e.g. {_EXAMPLES[key]}")
    zone = spec.get("timezone")
    if isinstance(zone, str) and not zone.strip():
        zone = None  # a blank form field means "the workspace's zone", as a missing one does
    if zone is not None:
        if not isinstance(zone, str):
            raise UsageError(f"timezone: {zone!r} is not a zone name; use e.g. 'Europe/Berlin'")
        zone = resolve_zone(zone).key
    return build(spec, zone)
