"""Rejected rows of a run: the first ones kept for the summary, all of them spilled to a
temporary file, so a file with a million bad rows costs disk, not memory."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator

from usersync.reader import RowError

SUMMARY_LIMIT = 100


class RejectLog:
    def __init__(self, summary_limit: int = SUMMARY_LIMIT) -> None:
        self._limit = summary_limit
        self.first: list[RowError] = []
        self.rows = 0  # rejected rows (a row with three bad cells counts once)
        # closed by close() / __exit__: the log outlives any one with-block of its owner
        self._spill = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._spill)

    def add(self, rejections: list[RowError]) -> None:
        self.rows += 1
        for rejection in rejections:
            if len(self.first) < self._limit:
                self.first.append(rejection)
            self._writer.writerow(
                [
                    rejection.line,
                    "" if rejection.column is None else "c" + rejection.column,
                    "" if rejection.value is None else "v" + rejection.value,
                    rejection.message,
                ]
            )

    def clear(self) -> None:
        """Forget every rejection (the run starts reading again)."""
        self.first.clear()
        self.rows = 0
        self._spill.seek(0)
        self._spill.truncate()

    def __iter__(self) -> Iterator[RowError]:
        """Every rejection, in file order."""
        self._spill.flush()
        self._spill.seek(0)
        for line, column, value, message in csv.reader(self._spill):
            yield RowError(
                int(line), column[1:] if column else None, value[1:] if value else None, message
            )
        self._spill.seek(0, 2)

    def close(self) -> None:
        self._spill.close()

    def __enter__(self) -> RejectLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
