import json

import pytest
from click.testing import CliRunner

from usersync.cli import main


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["schedule", "next", *args])
    return result.exit_code, result.stdout, result.stderr


def test_cron_next_times_in_a_zone_as_json() -> None:
    code, out, _ = run(
        "0 0 1 * * ?",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2026-03-28T12:00:00+00:00",
        "--count",
        "2",
        "--json",
    )
    assert code == 0
    assert json.loads(out) == {
        "description": "At 01:00, every day",
        "next": ["2026-03-29T01:00:00+01:00", "2026-03-30T01:00:00+02:00"],
    }


def test_calendar_schedule_json_and_words() -> None:
    code, out, _ = run(
        '{"type": "weekly", "days": ["MON", "THU"], "time": "09:30"}',
        "--tz",
        "UTC",
        "--after",
        "2026-11-25T00:00:00+00:00",
        "--count",
        "3",
    )
    assert code == 0
    assert out.splitlines() == [
        "At 09:30, on Monday and Thursday (UTC)",
        "  2026-11-26T09:30:00+00:00",
        "  2026-11-30T09:30:00+00:00",
        "  2026-12-03T09:30:00+00:00",
    ]


def test_invalid_cron_is_refused_with_exit_2() -> None:
    code, _, err = run("0/120 * * * * ?")
    assert code == 2
    assert "Increment > 60" in err


def test_unknown_zone_is_refused() -> None:
    code, _, err = run("0 0 1 * * ?", "--tz", "Mars/Olympus")
    assert code == 2
    assert "Mars/Olympus" in err


@pytest.mark.parametrize(
    ("zone", "after", "first"),
    [
        # 02:30 is skipped on these nights (02:00 becomes 03:00): it stands for the jump, as
        # it does in a schedule, so 03:15 that very day still comes after it.
        ("America/New_York", "2026-03-08T02:30", "2026-03-08T03:15:00-04:00"),
        ("Europe/Berlin", "2026-03-29T02:30", "2026-03-29T03:15:00+02:00"),
        # 01:30 comes twice when 02:00 becomes 01:00: the first one is meant.
        ("America/New_York", "2026-11-01T01:30", "2026-11-01T03:15:00-05:00"),
    ],
)
def test_a_naive_after_is_read_as_the_schedules_read_wall_times(
    zone: str, after: str, first: str
) -> None:
    code, out, _ = run("0 15 1,3 * * ?", "--tz", zone, "--after", after, "--count", "1", "--json")
    assert code == 0
    assert json.loads(out)["next"] == [first]


@pytest.mark.parametrize(
    "after", ["0001-01-01T00:00+00:00", "9999-12-31T23:59:59+00:00", "1969-12-31T23:00"]
)
def test_an_after_outside_the_schedules_years_is_refused(after: str) -> None:
    code, _, err = run("0 1 * * *", "--tz", "Pacific/Kiritimati", "--after", after)
    assert code == 2
    assert "between the years 1970 and 2099" in err
