"""Property test: our cron evaluator against croniter on the syntax both understand.

Random 5-field Unix expressions (numbers, names, ranges, lists, steps, `*`; no L, W, # or ?;
never both day fields restricted, where Vixie cron and croniter disagree) must give the same
next fire times in UTC as croniter, which is only a test dependency.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from usersync.schedule import MAX_YEAR, parse_schedule

UTC_ZONE = ZoneInfo("UTC")
COUNT = 5
MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


@st.composite
def cron_field(draw: st.DrawFn, low: int, high: int, names: list[str] | None = None) -> str:
    def value(number: int) -> str:
        use_name = names is not None and number - low < len(names) and draw(st.booleans())
        return names[number - low] if names is not None and use_name else str(number)

    def number() -> int:
        return draw(st.integers(low, high))

    def span() -> tuple[int, int]:
        first, second = number(), number()
        return min(first, second), max(first, second)

    def step() -> int:
        return draw(st.integers(1, min(high - low, 59)))

    kind = draw(st.sampled_from(["*", "n", "a-b", "list", "*/n", "a/n", "a-b/n"]))
    if kind == "*":
        return "*"
    if kind == "n":
        return value(number())
    if kind == "a-b":
        start, end = span()
        # croniter reads a-a as '*' and a-a/n as a/n; Vixie cron and we read both as a.
        return value(start) if start == end else f"{value(start)}-{value(end)}"
    if kind == "list":
        items = []
        for _ in range(draw(st.integers(2, 4))):
            start, end = span()
            items.append(value(start) if start == end else f"{value(start)}-{value(end)}")
        return ",".join(items)
    if kind == "*/n":
        return f"*/{step()}"
    if kind == "a/n":
        # croniter reads 7/n in day-of-week as 0/n, every day; we read it as Sunday alone.
        return f"{draw(st.integers(low, min(high, 6 if names is DAY_NAMES else high)))}/{step()}"
    start, end = span()
    if start == end:
        return value(start)
    return f"{start}-{end}/{step()}"


@st.composite
def unix_expression(draw: st.DrawFn) -> str:
    restricted = draw(st.sampled_from(["neither", "day-of-month", "day-of-week"]))
    day_of_month = draw(cron_field(1, 31)) if restricted == "day-of-month" else "*"
    day_of_week = draw(cron_field(0, 7, DAY_NAMES)) if restricted == "day-of-week" else "*"
    return " ".join(
        [
            draw(cron_field(0, 59)),
            draw(cron_field(0, 23)),
            day_of_month,
            draw(cron_field(1, 12, MONTH_NAMES)),
            day_of_week,
        ]
    )


starts = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31)).map(
    lambda moment: moment.replace(tzinfo=UTC)
)


@settings(max_examples=200, deadline=None, database=None)
@given(expression=unix_expression(), start=starts)
def test_next_times_match_croniter(expression: str, start: datetime) -> None:
    ours = parse_schedule(expression).next_times(start, COUNT, UTC_ZONE)
    oracle = croniter(expression, start)
    try:
        theirs = [oracle.get_next(datetime) for _ in range(COUNT)]
    except CroniterBadDateError:
        # croniter gives up after decades without a match (31 in Feb/Apr only, say).
        assert ours == []
        return
    # Ours stop at the end of 2099, as Quartz's year field does.
    assert [t.astimezone(UTC) for t in ours] == [t for t in theirs if t.year <= MAX_YEAR]
