"""The one-line summary `usersync import` prints: counts with their nouns in agreement."""

from __future__ import annotations

import pytest

from usersync.cli_import import _print_summary
from usersync.enums import RunStatus
from usersync.importer import RunResult


@pytest.mark.parametrize(
    ("counts", "dry_run", "expected"),
    [
        (
            (12, 1, 0, 1),
            False,
            "12 rows read, 1 user was created, 0 were updated, 1 row rejected.",
        ),
        (
            (2501, 2000, 1, 0),
            False,
            "2,501 rows read, 2,000 users were created, 1 was updated, 0 rows rejected.",
        ),
        (
            (1, 1, 0, 0),
            True,
            "1 row read, 1 user would be created, 0 would be updated, 0 rows rejected.",
        ),
    ],
)
def test_the_summary_says_one_row_and_many_rows(
    capsys: pytest.CaptureFixture[str],
    counts: tuple[int, int, int, int],
    dry_run: bool,
    expected: str,
) -> None:
    read, created, updated, rejected = counts
    result = RunResult(
        status=RunStatus.PARTIAL,
        rows_read=read,
        users_created=created,
        users_updated=updated,
        rows_rejected=rejected,
        seconds=0.5,
    )
    _print_summary(7, result, dry_run)
    assert capsys.readouterr().out == f"Run 7 partial in 0.5 s: {expected}\n"
