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
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine

from usersync.store import UserRecord, UserStore, properties
from usersync.store.users import StoredUser

T = TypeVar("T")

USER_ID_COLUMN = "userId"
FLUSH_ROWS = 1000  # users per chunk written


@dataclass(frozen=True)
class ExportFormat:
    media_type: str
    description: str


FORMATS = {
    "csv": ExportFormat("text/csv; charset=utf-8", "a userdata file"),
    "jsonl": ExportFormat("application/x-ndjson", "JSON Lines"),
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
    catalog = properties.types(engine, workspace_id)
    names = sorted(catalog)
    booleans = {name for name, kind in catalog.items() if kind == "boolean"}
    export = Export(iter(()), len(names))
    store = UserStore(engine)

    def counted(users: Iterable[T]) -> Iterator[T]:
        for user in users:
            export.users += 1
            yield user

    if fmt == "jsonl":
        export.chunks = users_jsonl(counted(store.iter_users_json(workspace_id)))
    else:
        rows = counted(store.iter_properties_json(workspace_id))
        export.chunks = users_csv(names, rows, booleans)
    return export


def users_csv(
    names: Sequence[str], users: Iterable[tuple[str, str]], booleans: Collection[str] = ()
) -> Iterator[str]:
    """A header (the userId column, then `names`) and a row per user of `users` (user id,
    properties' JSON text). Values are written as they are stored, without a spreadsheet's
    formula escaping (a number such as -5 stays -5), so that importing the file, each column
    mapped to its property with its type, gives the same records: numbers as JSON writes
    them, booleans (in the properties `booleans`, the only ones that hold them) as
    true/false, dates and times in ISO 8601, an absent property as an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # None as "", numbers as repr() has them
    writer.writerow([id_column(names), *names])
    flags = [(index, name) for index, name in enumerate(names, start=1) if name in booleans]
    for count, (user_id, properties_json) in enumerate(users, start=1):
        values = json.loads(properties_json)
        row = [user_id, *map(values.get, names)]
        for index, name in flags:
            value = values.get(name)
            if value is not None:
                row[index] = "true" if value else "false"
        writer.writerow(row)
        if count % FLUSH_ROWS == 0:
            yield _drained(buffer)
    yield _drained(buffer)


def id_column(names: Sequence[str]) -> str:
    """`userId`, unless a property has that name: then the first of userId_1, userId_2...
    that none has."""
    taken = set(names)
    candidates = (USER_ID_COLUMN, *(f"{USER_ID_COLUMN}_{n}" for n in range(1, len(taken) + 2)))
    return next(name for name in candidates if name not in taken)


def users_jsonl(users: Iterable[StoredUser]) -> Iterator[str]:
    """Each user's `user_document` on a line, its properties passed on as the store gave
    them (JSON already)."""
    lines: list[str] = []
    for user in users:
        properties_json = user.properties_json
        if "\n" in properties_json:  # JSON written over several lines: made one
            properties_json = json.dumps(json.loads(properties_json), ensure_ascii=False)
        lines.append(
            f'{{"user_id": {json.dumps(user.user_id, ensure_ascii=False)}, '
            f'"properties": {properties_json}, '
            f'"created_at": "{user.created_at.isoformat()}", '
            f'"updated_at": "{user.updated_at.isoformat()}"}}\n'
        )
        if len(lines) == FLUSH_ROWS:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)


def _drained(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
