"""The users' export files: the CSV's header and cells, and JSON Lines."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from usersync import exports
from usersync.store.users import StoredUser

WHEN = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def record(user_id: str, **properties: Any) -> tuple[str, str]:
    return user_id, json.dumps(properties)


def rows(names: list[str], records: list[tuple[str, str]]) -> list[list[str]]:
    text = "".join(exports.users_csv(names, records, booleans={"vip"}))
    return list(csv.reader(io.StringIO(text)))


def test_each_value_is_written_as_an_import_reads_it_back() -> None:
    names = ["age", "n", "note", "score", "vip"]
    found = rows(
        names,
        [
            record("u1", age=-5, n=0, note='=SUM(A1), "quoted"\nnext line', score=2.5, vip=True),
            record("u2", score=1e21, vip=False),
        ],
    )

    assert found == [
        ["userId", *names],
        ["u1", "-5", "0", '=SUM(A1), "quoted"\nnext line', "2.5", "true"],
        ["u2", "", "", "", "1e+21", "false"],
    ]


def test_the_user_id_column_takes_another_name_when_a_property_has_its_own() -> None:
    assert exports.id_column(["age"]) == "userId"
    assert exports.id_column(["userId"]) == "userId_1"
    assert exports.id_column(["userId", "userId_1"]) == "userId_2"
    assert rows(["userId"], [record("u1", userId="x")]) == [["userId_1", "userId"], ["u1", "x"]]


def test_big_exports_come_in_chunks_of_whole_users(monkeypatch: Any) -> None:
    monkeypatch.setattr(exports, "FLUSH_ROWS", 2)
    records = [record(f"u{i}", note="a\nb") for i in range(5)]

    chunks = list(exports.users_csv(["note"], records))

    assert len(chunks) == 3
    assert all(chunk.endswith('"a\nb"\n') for chunk in chunks)


def test_a_json_line_is_the_users_document() -> None:
    stored = StoredUser("Zoë", '{"city": "Zürich", "n": 1e21}', WHEN, WHEN)

    line = json.loads("".join(exports.users_jsonl([stored])))

    assert line == {
        "user_id": "Zoë",
        "properties": {"city": "Zürich", "n": 1e21},
        "created_at": "2026-11-27T12:00:00+00:00",
        "updated_at": "2026-11-27T12:00:00+00:00",
    }


def test_properties_stored_over_several_lines_still_make_one_line() -> None:
    stored = StoredUser("u1", '{\n  "note": "a\\nb"\n}', WHEN, WHEN)

    text = "".join(exports.users_jsonl([stored]))

    assert text.count("\n") == 1
    assert json.loads(text)["properties"] == {"note": "a\nb"}
