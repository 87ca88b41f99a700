"""`usersync export` end to end, against both stores: a file imported from the real sshd is
exported, and the CSV export imported back into another workspace gives the same records."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli import key_args, store_env, usersync
from tests.servers.sshd import SftpFolder

pytestmark = pytest.mark.integration

# Every type, a value that needs quoting, a negative number, and an empty cell (absent).
PEOPLE = (
    "userId,name,age,score,vip,signup,seen\n"
    'u1,"Ann, ""the boss""",-5,2.5,yes,2026-01-02,2026-03-04T05:06:07Z\n'
    'u2,"Bo\nBob",37,,no,2025-12-31,2026-03-04T05:06:07+02:00\n'
    "u3,=1+1,0,1e21,true,,\n"
    "u4,Zoë,,-0.75,,2024-02-29,2026-11-27T00:00:00Z\n"
)
TYPES = {
    "age": "integer",
    "score": "number",
    "vip": "boolean",
    "signup": "date",
    "seen": "datetime",
}


def mapping(columns: list[str]) -> list[str]:
    """--user-id and a --map (with its --type) for each column but the first."""
    args = ["--user-id", columns[0]]
    for column in columns[1:]:
        args += ["--map", f"{column}={column}"]
        if column in TYPES:
            args += ["--type", f"{column}={TYPES[column]}"]
    return args


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    return store_env(tmp_path, db_url)


def imported(env: dict[str, str], sftp: SftpFolder, name: str, data: str, *args: str) -> None:
    sftp.put(name, data.encode())
    columns = next(csv.reader(io.StringIO(data)))
    result = usersync(env, "import", sftp.url(name), *key_args(sftp), *mapping(columns), *args)
    assert result.exit_code == 0, result.stderr


def exported_jsonl(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    result = usersync(env, "export", "--format", "jsonl", *args)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_csv_export_imports_back_to_the_same_records(
    sftp: SftpFolder, env: dict[str, str], tmp_path: Path
) -> None:
    imported(env, sftp, "userdata_people.csv", PEOPLE)
    out = tmp_path / "users.csv"

    written = usersync(env, "export", "--output", str(out))
    assert written.exit_code == 0, written.stderr
    assert written.stdout == ""
    assert "Wrote 4 users, 6 properties to " in written.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"  # personal data: the owner's only
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "userId,age,name,score,seen,signup,vip"
    assert ',"Ann, ""the boss""",' in text
    assert "\nu3,0,=1+1," in text  # as stored: no formula escaping
    assert usersync(env, "workspace", "create", "copy").exit_code == 0
    imported(env, sftp, "userdata_export.csv", text, "--workspace", "copy")

    original = exported_jsonl(env)
    copy = exported_jsonl(env, "--workspace", "copy")
    assert [u["user_id"] for u in original] == ["u1", "u2", "u3", "u4"]
    assert [u["properties"] for u in copy] == [u["properties"] for u in original]
    assert original[0]["properties"] == {
        "name": 'Ann, "the boss"',
        "age": -5,
        "score": 2.5,
        "vip": True,
        "signup": "2026-01-02",
        "seen": "2026-03-04T05:06:07Z",
    }
    assert original[3]["properties"].keys() == {"name", "score", "signup", "seen"}


def test_each_json_line_is_the_users_record(sftp: SftpFolder, env: dict[str, str]) -> None:
    imported(env, sftp, "userdata_people.csv", PEOPLE)

    lines = exported_jsonl(env)

    assert len(lines) == 4
    for line in lines:
        shown = usersync(env, "user", line["user_id"], "--json")
        assert shown.json() == line


def test_a_workspace_without_users_exports_a_header_and_no_lines(env: dict[str, str]) -> None:
    csv_out = usersync(env, "export")
    jsonl_out = usersync(env, "export", "--format", "jsonl")

    assert (csv_out.exit_code, csv_out.stdout) == (0, "userId\n")
    assert (jsonl_out.exit_code, jsonl_out.stdout) == (0, "")


def test_an_output_that_cannot_be_written_is_a_usage_error_and_the_old_file_stays(
    env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "no_such_folder" / "users.csv"
    old = tmp_path / "users.csv"
    old.write_text("the previous export\n")

    refused = usersync(env, "export", "--output", str(missing))
    unknown = usersync(env, "export", "--output", str(old), "--workspace", "nope")

    assert refused.exit_code == 2
    assert f"--output {missing}: there is no folder {missing.parent}" in refused.stderr
    assert unknown.exit_code == 2
    assert "there is no workspace named 'nope'" in unknown.stderr
    assert old.read_text() == "the previous export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
