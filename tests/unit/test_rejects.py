"""The log of a run's rejected rows: all of them back in order, the first ones at hand."""

from __future__ import annotations

from usersync import rejects
from usersync.reader import RowError
from usersync.rejects import RejectLog


def bad_row(line: int) -> list[RowError]:
    return [
        RowError(line, "age", f"x{line}", f"'x{line}' is not a whole number"),
        RowError(line, None, None, "the row has 3 fields; the header has 2"),
    ]


def test_every_rejection_comes_back_in_order_across_blocks() -> None:
    lines = range(2, 2 + rejects._BLOCK * 2 + 7)  # two full blocks and some left to write
    with RejectLog(summary_limit=5) as log:
        for line in lines:
            log.add(bad_row(line))
        assert log.rows == len(lines)
        assert log.first == [*bad_row(2), *bad_row(3), bad_row(4)[0]]
        expected = [(e.line, e.column, e.value, e.message) for line in lines for e in bad_row(line)]
        assert list(log) == expected
        assert list(log) == expected  # read again: the same


def test_values_any_text_holds_come_back_as_they_were() -> None:
    odd = ["", "a,b", 'say "hi"', "two\nlines", "\r", "\x00", "ünï", "\udcff", "x" * 100_000]
    with RejectLog() as log:
        for value in odd:
            log.add([RowError(7, value, value, value or "empty")])
        assert list(log) == [(7, value, value, value or "empty") for value in odd]


def test_adding_after_an_unfinished_read_appends() -> None:
    with RejectLog() as log:
        for line in range(2, 2 + rejects._BLOCK + 1):
            log.add(bad_row(line))
        reading = iter(log)
        next(reading)  # left unfinished
        log.add(bad_row(10_000))
        assert list(log)[-2:] == [
            (10_000, "age", "x10000", "'x10000' is not a whole number"),
            (10_000, None, None, "the row has 3 fields; the header has 2"),
        ]
        assert len(list(log)) == 2 * (rejects._BLOCK + 2)


def test_clear_forgets_everything() -> None:
    with RejectLog() as log:
        for line in range(2, 2 + rejects._BLOCK + 3):
            log.add(bad_row(line))
        log.clear()
        assert (log.rows, log.first, list(log)) == (0, [], [])
        log.add(bad_row(9))
        assert list(log) == [(e.line, e.column, e.value, e.message) for e in bad_row(9)]
        assert log.first == bad_row(9)
