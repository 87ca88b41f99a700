"""What the command line and the REST API report alike: an error's code, and a run's rejected
rows as CSV (`usersync errors RUN` and GET /api/runs/{id}/errors.csv write the same file)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from usersync.errors import UsersyncError
from usersync.store.runs import RowErrorLike

ERRORS_CSV_COLUMNS = ("line", "column", "value", "message")
CSV_FLUSH_ROWS = 500  # rows per chunk of errors_csv


def error_code(error: UsersyncError) -> str:
    """`HostKeyNotConfirmed` -> "host_key_not_confirmed": the code of --json and the API."""
    name = type(error).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will show as text, never run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def errors_csv(errors: Iterable[RowErrorLike]) -> Iterator[str]:
    """The rejected rows as CSV under a header, a chunk of CSV_FLUSH_ROWS rows at a time.
    Cells a spreadsheet would run as a formula (=, +, -, @ first) are escaped."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ERRORS_CSV_COLUMNS)
    for count, error in enumerate(errors, start=1):
        writer.writerow(
            [
                error.line,
                spreadsheet_safe(error.column or ""),
                spreadsheet_safe(error.value or ""),
                spreadsheet_safe(error.message),
            ]
        )
        if count % CSV_FLUSH_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
