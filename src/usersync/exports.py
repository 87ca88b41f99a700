"""Every user of a workspace, written out as a file: CSV, a userdata file that imports back to
the same records, or JSON Lines, each user's document (as `usersync user --json` prints it)
on a line of its own. `usersync export` and GET /api/users.csv and /api/users.jsonl write
the same files, a page of users at a time: memory stays flat however many users there are.

The pages are read one after another, each on its own, so that a long export holds up no
import: a user that an import changes meanwhile is written as its page found it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from usersync.store import UserRecord, UserStore, properties

USER_ID_COLUMN = "userId"
FLUSH_ROWS = 1000  # users per chunk written


@dataclass(frozen=True)
class ExportFormat:
    name: str
    media_type: str
    description: str


FORMATS = {
    "csv": ExportFormat("csv", "text/csv; charset=utf-8", "a userdata file"),
    "jsonl": ExportFormat("jsonl", "application/x-ndjson", "JSON Lines"),
}


@dataclass
class Export:
    """What an export writes: its chunks of text, in order; how many properties the CSV
    gives a column (all of the workspace's catalog); and, once the chunks are all taken, how
    many users they held."""

    chunks: Iterator[str]
    properties: int
    users: int = 0


def user_document(record: UserRecord) -> dict[str, Any]:
    """A user as `usersync user --json` prints it and each line of the JSON Lines gives it."""
    return {
        "user_id": record.user_id,
        "properties": record.properties,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


def export_users(engine: Engine, workspace_id: int, fmt: str) -> Export:
    """The workspace's users, in userId order, as `fmt` (a key of FORMATS)."""
    names = sorted(properties.types(engine, workspace_id))
    export = Export(iter(()), len(names))

    def counted() -> Iterator[UserRecord]:
        for record in UserStore(engine).iter_users(workspace_id):
            export.users += 1
            yield record

    export.chunks = users_jsonl(counted()) if fmt == "jsonl" else users_csv(names, counted())
    return export


def users_csv(names: Sequence[str], records: Iterable[UserRecord]) -> Iterator[str]:
    """A header (the userId column, then `names`) and a row per user. Values are written as
    they are stored, without a spreadsheet's formula escaping (a number such as -5 stays -5),
    so that importing the file, each column mapped to its property with its type, gives the
    same records: numbers as JSON writes them, booleans as true/false, dates and times in
    ISO 8601, an absent property as an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([id_column(names), *names])
    for count, record in enumerate(records, start=1):
        values = record.properties
        writer.writerow([record.user_id, *(_cell(values.get(name)) for name in names)])
        if count % FLUSH_ROWS == 0:
            yield _drained(buffer)
    yield _drained(buffer)


def id_column(names: Sequence[str]) -> str:
    """`userId`, unless a property has that name: then the first of userId_1, userId_2...
    that none has."""
    taken = set(names)
    candidates = (USER_ID_COLUMN, *(f"{USER_ID_COLUMN}_{n}" for n in range(1, len(taken) + 2)))
    return next(name for name in candidates if name not in taken)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return str(value)


def users_jsonl(records: Iterable[UserRecord]) -> Iterator[str]:
    lines: list[str] = []
    for record in records:
        lines.append(json.dumps(user_document(record), ensure_ascii=False) + "\n")
        if len(lines) == FLUSH_ROWS:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)


def _drained(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
