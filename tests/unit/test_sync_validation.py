"""A sync's settings: defaults, canonical forms, and errors that name the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from usersync.errors import UsageError
from usersync.store.syncs import first_fire, validate

BASE: dict[str, Any] = {
    "connection_id": 1,
    "folder": "/in/",
    "file": "userdata_a.csv",
    "mapping": {"user_id": "id", "properties": {"email": "mail"}},
}


def test_defaults_and_canonical_forms() -> None:
    out = validate({**BASE, "delimiter": "tab"}, workspace_zone="Europe/Berlin")
    assert out["folder"] == "/in"
    assert out["file_choice"] == "exact"
    assert out["conflict"] == "update"
    assert out["schedule"] == {"type": "once"}
    assert out["timezone"] == "Europe/Berlin"
    assert out["delimiter"] == "\t"
    assert out["mapping"] == {"user_id": "id", "properties": {"email": "mail"}, "types": {}}
    assert out["after_import"] == "leave"
    assert out["move_to"] is None


def test_the_schedules_own_zone_wins_over_the_workspaces() -> None:
    out = validate(
        {**BASE, "schedule": {"type": "daily", "time": "01:00", "timezone": "Asia/Tokyo"}},
        workspace_zone="Europe/Berlin",
    )
    assert out["timezone"] == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"folder": "in"}, "folder: give an absolute folder path"),
        ({"file": "data.csv"}, "must begin with 'userdata_'"),
        ({"file": None}, "file: name the file"),
        ({"mapping": {"properties": {}}}, "mapping.user_id"),
        ({"mapping": {"user_id": "id", "properties": {"1bad": "x"}}}, "not a valid property"),
        ({"mapping": {"user_id": "id", "types": {"age": "integer"}}}, "not a mapped property"),
        ({"conflict": "merge"}, "conflict: 'merge' is not one of update, replace"),
        ({"schedule": {"type": "cron", "expression": "0/120 * * * * ?"}}, "120"),
        ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"after_import": "move"}, "move_to: name the folder"),
        ({"after_import": "move", "move_to": "/in"}, "other than the sync's own folder"),
        ({"webhook_url": "ftp://x"}, "webhook_url"),
        ({"max_rejected": -1}, "max_rejected"),
        ({"enabled": "yes"}, "enabled: give true or false"),
        ({"colour": "red"}, "syncs have no field colour"),
        ({"connection_id": None}, "missing connection_id"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate({**BASE, **change})


def test_once_now_fires_at_once_and_a_daily_schedule_at_its_next_local_time() -> None:
    now = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert first_fire({"type": "once"}, "UTC", now) == now
    daily = first_fire({"type": "daily", "time": "02:30"}, "Europe/Berlin", now)
    # 02:30 does not exist on 29 March 2026 in Berlin: it fires when the clock jumps
    assert daily == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
