"""`usersync schedule ...`: try a schedule out before a sync uses it."""

from __future__ import annotations

from datetime import datetime

import click

from usersync.cli_output import emit_json, handle_errors, json_option
from usersync.errors import UsageError
from usersync.schedule import parse_schedule, resolve_zone, start_at


@click.group()
def schedule() -> None:
    """Work with schedules (cron expressions and calendar repeats)."""


@schedule.command("next")
@click.argument("spec", metavar="SCHEDULE")
@click.option("--tz", "zone_name", help="IANA time zone (default: the schedule's, else UTC).")
@click.option("--after", help="Start from this ISO 8601 time instead of now.")
@click.option("--count", default=5, show_default=True, type=click.IntRange(1, 1000))
@json_option
@handle_errors
def next_times(
    spec: str, zone_name: str | None, after: str | None, count: int, as_json: bool
) -> None:
    """Show SCHEDULE's next fire times and what it means in words.

    SCHEDULE is a cron expression (Quartz, e.g. '0 0 1 * * ?', or 5-field Unix cron) or a
    schedule's JSON, e.g. '{"type": "weekly", "days": ["MON"], "time": "09:30"}'.
    """
    parsed = parse_schedule(spec)
    zone = resolve_zone(zone_name or parsed.timezone)
    try:
        given = None if after is None else datetime.fromisoformat(after)
    except ValueError:
        raise UsageError(f"--after {after!r} is not an ISO 8601 date and time") from None
    times = parsed.next_times(start_at(given, zone), count, zone)
    if as_json:
        emit_json({"description": parsed.describe(), "next": [t.isoformat() for t in times]})
        return
    click.echo(f"{parsed.describe()} ({zone.key})")
    for moment in times:
        click.echo(f"  {moment.isoformat()}")
    if not times:
        click.echo("  (no more fire times)")
