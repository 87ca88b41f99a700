"""resolve_zone: IANA names to ZoneInfo, with a suggestion for a misspelt one."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from usersync.errors import UsageError
from usersync.schedule import resolve_zone


def test_known_names_resolve() -> None:
    assert resolve_zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert resolve_zone(" Australia/Sydney ").key == "Australia/Sydney"


def test_no_name_gives_the_default() -> None:
    assert resolve_zone(None).key == "UTC"
    assert resolve_zone("", default="America/New_York").key == "America/New_York"


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("Europe/Berln", "did you mean 'Europe/Berlin'?"),
        ("europe/berlin", "did you mean 'Europe/Berlin'?"),
        ("Mars/Olympus_Mons", "such as 'Europe/Berlin'"),
        ("Europe", "did you mean 'Europe/"),
        ("localtime", "such as 'Europe/Berlin'"),
        ("../../etc/passwd", "such as 'Europe/Berlin'"),
        ("/etc/localtime", "such as 'Europe/Berlin'"),
    ],
)
def test_unknown_names_are_refused_with_a_suggestion(name: str, hint: str) -> None:
    with pytest.raises(UsageError) as refused:
        resolve_zone(name)
    assert refused.value.message.startswith(f"timezone: unknown time zone {name.strip()!r}")
    assert hint in refused.value.message


def test_a_bad_default_is_refused_too() -> None:
    with pytest.raises(UsageError, match="unknown time zone 'Nowhere'"):
        resolve_zone(None, default="Nowhere")
