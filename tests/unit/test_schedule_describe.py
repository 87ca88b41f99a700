"""Schedules in words: our own for the calendar kinds, cron_descriptor (checked) for cron."""

from __future__ import annotations

from typing import Any

import pytest

from usersync.schedule import describe as describe_module
from usersync.schedule import parse_schedule


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"type": "once"}, "Once, right away"),
        ({"type": "once", "at": "2026-12-01T09:00"}, "Once, at 09:00 on Tuesday 1 December 2026"),
        ({"type": "daily", "time": "01:00"}, "At 01:00, every day"),
        ({"type": "daily", "time": "01:00:30"}, "At 01:00:30, every day"),
        (
            {"type": "weekly", "days": ["MON", "THU"], "time": "09:30"},
            "At 09:30, on Monday and Thursday",
        ),
        (
            {"type": "weekly", "days": ["FRI", "MON", "WED"], "time": "18:00"},
            "At 18:00, on Monday, Wednesday and Friday",
        ),
        (
            {"type": "weekly", "days": ["SAT", "MON", "TUE", "SUN", "THU"], "time": "07:00"},
            "At 07:00, on Thursday and Saturday through Tuesday",
        ),
        (
            {"type": "monthly", "day": 31, "time": "01:00"},
            "At 01:00, on day 31 of the month (the last day in shorter months)",
        ),
        ({"type": "monthly", "day": 15, "time": "01:00"}, "At 01:00, on day 15 of the month"),
    ],
)
def test_calendar_schedules_in_words(spec: dict[str, Any], words: str) -> None:
    assert parse_schedule(spec).describe() == words


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 0 1 * * ?", "At 01:00, every day"),
        # Quartz counts days of the week from Sunday = 1.
        ("0 0 0 ? * 1", "At 00:00, only on Sunday"),
        ("0 0 0 ? * 7", "At 00:00, only on Saturday"),
        ("0 30 9 ? * 2,5", "At 09:30, only on Monday and Thursday"),
        ("0 0 0 ? * 2-6", "At 00:00, Monday through Friday"),
        ("0 0 0 ? * MON-FRI", "At 00:00, Monday through Friday"),
        ("0 15 10 ? * 6#3", "At 10:15, on the third Friday of the month"),
        ("0 0 0 ? * 2L", "At 00:00, on the last Monday of the month"),
        ("0 0 12 LW * ?", "At 12:00, on the last weekday of the month"),
        ("0 0 0 15W * ?", "At 00:00, on the weekday nearest day 15 of the month"),
        ("0 0 0 L-3 * ?", "At 00:00, 3 days before the last day of the month"),
        ("0 0 0 29 2 ? 2096", "At 00:00, on day 29 of the month, only in February, only in 2096"),
        ("0/5 * * * * ?", "Every 5 seconds"),
        # Unix form: 0 and 7 are Sunday, 1 Monday.
        ("0 0 * * 0", "At 00:00, only on Sunday"),
        ("0 0 * * 7", "At 00:00, only on Sunday"),
        ("30 15 * * 1-5", "At 15:30, Monday through Friday"),
        ("*/15 * * * *", "Every 15 minutes"),
    ],
)
def test_cron_in_words_from_cron_descriptor(expression: str, words: str) -> None:
    assert parse_schedule(expression).describe() == words


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        # cron_descriptor refuses L alone in day-of-week; Quartz reads it as Saturday.
        ("0 0 0 ? * L", "At 00:00, on Saturday"),
        # ...reads backwards (wrapping) ranges literally.
        ("0 0 0 ? * FRI-MON", "At 00:00, on Friday through Monday"),
        # ...words a step that names one value (a step runs to the field's end) as a repeat.
        ("0 0 12 ? * 7/2", "At 12:00, on Saturday"),
        ("0 0 12 1 12/2 ?", "At 12:00, on day 1 of the month, in December"),
        ("0 0 12 31/2 * ?", "At 12:00, on day 31 of the month"),
        # ...reads ranges that start where they end literally.
        ("0 0 12 ? * 3-3", "At 12:00, on Tuesday"),
        ("0 12 * * 0-7", "At 12:00, every day"),
        # ...says "or" for Unix cron's two day fields, even when a `*` makes both needed.
        ("0 12 */10 * 5", "At 12:00, on days 1, 11, 21 and 31 of the month, if also on Friday"),
        ("0 12 15 * 1-5", "At 12:00, on day 15 of the month, or on Monday through Friday"),
        ("0 0 22-1 * * ?", "At minute 0, hours 0, 1, 22 and 23, every day"),
        (
            "0 0 0 L-2W * ?",
            "At 00:00, on the weekday nearest 2 days before the last day of the month",
        ),
        ("0 0 0 L-1 * ?", "At 00:00, 1 day before the last day of the month"),
    ],
)
def test_cron_forms_cron_descriptor_gets_wrong_use_our_words(expression: str, words: str) -> None:
    assert parse_schedule(expression).describe() == words


class _Broken:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise ValueError("cron_descriptor cannot read this")


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 15 10 ? * 6#3", "At 10:15, on the third Friday of the month"),
        (
            "*/20 0-5 * ? JAN,JUL * 2030",
            "At seconds 0, 20 and 40, minutes 0-5, every hour, every day,"
            " in January and July, in 2030",
        ),
        ("0 0,30 8 1,15 * ?", "At minutes 0 and 30, hour 8, on days 1 and 15 of the month"),
        ("0 0 12 ? * 1#1", "At 12:00, on the first Sunday of the month"),
        ("0 1 1 * MON", "At 01:00, on day 1 of the month, or on Monday"),
        ("0 0 */10 * 1", "At 00:00, on days 1, 11, 21 and 31 of the month, if also on Monday"),
    ],
)
def test_our_words_when_cron_descriptor_fails(
    monkeypatch: pytest.MonkeyPatch, expression: str, words: str
) -> None:
    monkeypatch.setattr(describe_module, "ExpressionDescriptor", _Broken)
    assert parse_schedule(expression).describe() == words
