"""`usersync import` and `usersync user` end to end: a real sshd serves the files, and every
test runs against both stores, SQLite and a real PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import signal
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
from sqlalchemy.engine import make_url

from tests.cli import (
    Result,
    key_args,
    start_usersync,
    stop_when,
    store_env,
    usersync,
    wait_for_progress,
)
from tests.servers.netpath import CuttablePath
from tests.servers.sshd import SftpFolder, SshServer
from tests.worker_procs import wait_for
from usersync import db, runqueue, service
from usersync.config import load_settings
from usersync.enums import RunStatus
from usersync.importer import ImportSpec
from usersync.importer import run_import as run_import_in_process
from usersync.mapping import ColumnMapping, PropertyType
from usersync.rejects import RejectLog
from usersync.sources.base import Source
from usersync.sources.connect import Credentials, open_source
from usersync.sources.hostkeys import HostKeyPolicy
from usersync.sources.urls import parse_remote_url
from usersync.store import UserStore, workspaces

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    return store_env(tmp_path, db_url)


def run_import(env: dict[str, str], sftp: SftpFolder, name: str, *args: str) -> Result:
    return usersync(env, "import", sftp.url(name), *key_args(sftp), "--json", *args)


def user(env: dict[str, str], user_id: str) -> dict[str, Any] | None:
    result = usersync(env, "user", user_id, "--json")
    if result.exit_code != 0:
        return None
    properties: dict[str, Any] = result.json()["properties"]
    return properties


def all_users(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    result = usersync(env, "users", "--json", "--limit", "1000")
    assert result.exit_code == 0, result.stderr
    return {u["user_id"]: u["properties"] for u in result.json()["items"]}


def test_skip_unchanged_leaves_the_users_a_file_does_not_change_as_they_were(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    seed(env, sftp)
    before = usersync(env, "user", "u1", "--json").json()
    sftp.put("userdata_b.csv", b"userId,email,plan\nu1,ann@old.example,gold\nu2,bob@new.example,\n")

    result = run_import(env, sftp, "userdata_b.csv", *MAP_EMAIL_AND_PLAN, "--skip-unchanged")
    summary = run_import(env, sftp, "userdata_b.csv", *MAP_EMAIL_AND_PLAN, "--skip-unchanged")
    table = usersync(
        env,
        "import",
        sftp.url("userdata_b.csv"),
        *key_args(sftp),
        *MAP_EMAIL_AND_PLAN,
        "--skip-unchanged",
    )
    listed = usersync(env, "runs", "--limit", "2").stdout.splitlines()

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert (doc["users_created"], doc["users_updated"], doc["users_unchanged"]) == (0, 1, 1)
    assert usersync(env, "user", "u1", "--json").json() == before
    assert user(env, "u2") == {"name": "Bob", "email": "bob@new.example", "plan": "silver"}
    assert summary.json()["users_unchanged"] == 2
    assert "0 were updated, 2 were unchanged, 0 rows rejected." in table.stdout
    assert listed[0].split()[3:8] == ["READ", "CREATED", "UPDATED", "UNCHANGED", "REJECTED"]
    # the newest run: 2 rows read, 0 created, 0 updated, 2 unchanged, 0 rejected
    assert listed[1].split()[5:10] == ["2", "0", "0", "2", "0"]


MAP_EMAIL_AND_PLAN = ("--user-id", "userId", "--map", "email=email", "--map", "plan=plan")
SEED = b"userId,name,email,plan\nu1,Ann,ann@old.example,gold\nu2,Bob,bob@old.example,silver\n"


def seed(env: dict[str, str], sftp: SftpFolder) -> None:
    sftp.put("userdata_seed.csv", SEED)
    result = run_import(
        env,
        sftp,
        "userdata_seed.csv",
        "--user-id",
        "userId",
        "--map",
        "name=name",
        "--map",
        "email=email",
        "--map",
        "plan=plan",
    )
    assert result.exit_code == 0, result.stderr


def test_import_creates_users_and_reports_counts(sftp: SftpFolder, env: dict[str, str]) -> None:
    sftp.put("userdata_a.csv", b"userId,name,age\nu1,Ann,41\nu2,Bob,37\n")

    result = run_import(
        env,
        sftp,
        "userdata_a.csv",
        "--user-id",
        "userId",
        "--map",
        "name=name",
        "--map",
        "age=age",
        "--type",
        "age=integer",
    )

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert set(doc) >= {
        "run_id",
        "status",
        "rows_read",
        "users_created",
        "users_updated",
        "rows_rejected",
        "errors",
    }
    assert (
        doc["status"],
        doc["rows_read"],
        doc["users_created"],
        doc["users_updated"],
        doc["rows_rejected"],
        doc["errors"],
    ) == ("succeeded", 2, 2, 0, 0, [])
    record = usersync(env, "user", "u1", "--json").json()
    assert record["user_id"] == "u1"
    assert record["properties"] == {"name": "Ann", "age": 41}
    assert record["created_at"]
    assert record["updated_at"]


def test_update_mode_changes_only_mapped_non_empty_properties(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    seed(env, sftp)
    sftp.put("userdata_b.csv", b"userId,email,plan\nu1,ann@new.example,\nu3,cy@new.example,free\n")

    result = run_import(
        env,
        sftp,
        "userdata_b.csv",
        *MAP_EMAIL_AND_PLAN,
    )

    assert result.exit_code == 0, result.stderr
    assert (result.json()["users_created"], result.json()["users_updated"]) == (1, 1)
    assert all_users(env) == {
        "u1": {"name": "Ann", "email": "ann@new.example", "plan": "gold"},
        "u2": {"name": "Bob", "email": "bob@old.example", "plan": "silver"},
        "u3": {"email": "cy@new.example", "plan": "free"},
    }


def test_update_mode_with_empty_cells_clear(sftp: SftpFolder, env: dict[str, str]) -> None:
    seed(env, sftp)
    sftp.put("userdata_b.csv", b"userId,email,plan\nu1,ann@new.example,\n")
    result = run_import(
        env,
        sftp,
        "userdata_b.csv",
        *MAP_EMAIL_AND_PLAN,
        "--empty-cells",
        "clear",
    )
    assert result.exit_code == 0, result.stderr
    assert user(env, "u1") == {"name": "Ann", "email": "ann@new.example"}


def test_replace_mode_makes_the_record_exactly_the_mapped_values(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    seed(env, sftp)
    sftp.put("userdata_b.csv", b"userId,email,plan,name\nu1,ann@new.example,,Annie\n")

    result = run_import(
        env,
        sftp,
        "userdata_b.csv",
        *MAP_EMAIL_AND_PLAN,
        "--conflict",
        "replace",
    )

    assert result.exit_code == 0, result.stderr
    # name is not mapped and plan is empty: both become absent
    assert user(env, "u1") == {"email": "ann@new.example"}
    assert user(env, "u2") == {"name": "Bob", "email": "bob@old.example", "plan": "silver"}


def test_every_type_converts_and_bad_values_reject_their_row(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    sftp.put(
        "userdata_types.csv",
        b"id,n,i,b,d,t\n"
        b"ok,2.5,7,Yes,2026-02-28,2026-06-01T12:00:00\n"
        b"badn,abc,1,true,2026-01-01,2026-01-01T00:00:00\n"
        b"badi,1,1.5,true,2026-01-01,2026-01-01T00:00:00\n"
        b"badb,1,1,maybe,2026-01-01,2026-01-01T00:00:00\n"
        b"badd,1,1,true,2026-02-30,2026-01-01T00:00:00\n"
        b"badt,1,1,true,2026-01-01,noon\n",
    )
    result = run_import(
        env,
        sftp,
        "userdata_types.csv",
        "--user-id",
        "id",
        "--map",
        "n=n",
        "--map",
        "i=i",
        "--map",
        "b=b",
        "--map",
        "d=d",
        "--map",
        "t=t",
        "--type",
        "n=number",
        "--type",
        "i=integer",
        "--type",
        "b=boolean",
        "--type",
        "d=date",
        "--type",
        "t=datetime",
        "--tz",
        "Europe/Berlin",
    )
    assert result.exit_code == 1, result.stderr
    doc = result.json()
    assert (doc["status"], doc["users_created"], doc["rows_rejected"]) == ("partial", 1, 5)
    assert [(e["line"], e["column"], e["value"]) for e in doc["errors"]] == [
        (3, "n", "abc"),
        (4, "i", "1.5"),
        (5, "b", "maybe"),
        (6, "d", "2026-02-30"),
        (7, "t", "noon"),
    ]
    assert user(env, "ok") == {
        "n": 2.5,
        "i": 7,
        "b": True,
        "d": "2026-02-28",
        "t": "2026-06-01T10:00:00Z",
    }


def test_bom_crlf_and_quoted_newlines_keep_line_numbers_right(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    body = (
        "\ufeffuserId,note,age\r\n"
        'u1,"first\r\nsecond\r\nthird",1\r\n'
        "u2,plain,notanumber\r\n"
        "\r\n"
        'u3,"x",3,extra\r\n'
        "u4,last,4"
    ).encode()
    sftp.put("userdata_a.csv", body)
    result = run_import(
        env,
        sftp,
        "userdata_a.csv",
        "--user-id",
        "userId",
        "--map",
        "note=note",
        "--map",
        "age=age",
        "--type",
        "age=integer",
    )
    doc = result.json()
    assert result.exit_code == 1, result.stderr
    assert [(e["line"], e["column"]) for e in doc["errors"]] == [(5, "age"), (7, None)]
    assert "fields" in doc["errors"][1]["message"]
    assert user(env, "u1") == {"note": "first\r\nsecond\r\nthird", "age": 1}
    assert user(env, "u4") == {"note": "last", "age": 4}


def test_backslashes_tabs_and_line_breaks_in_ids_and_values_arrive_as_written(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    # On PostgreSQL the rows reach COPY as blocks of text in which these are escaped.
    rows = {
        "back\\slash": "C:\\dir\\file",
        "tab\tid": "a\tb",
        "line\nbreak": "one\r\ntwo",
        "\\.": "\\.",
        "ünï 🎉": 'say "hi"\\n',
    }
    body = "userId,note\n" + "".join(
        '"{}","{}"\n'.format(*(text.replace('"', '""') for text in row)) for row in rows.items()
    )
    sftp.put("userdata_odd.csv", body.encode())
    result = run_import(env, sftp, "userdata_odd.csv", "--user-id", "userId", "--map", "note=note")
    assert result.exit_code == 0, result.stderr
    assert result.json()["users_created"] == len(rows)
    for user_id, note in rows.items():
        assert user(env, user_id) == {"note": note}, user_id


def test_duplicate_user_ids_apply_in_file_order(sftp: SftpFolder, env: dict[str, str]) -> None:
    sftp.put("userdata_a.csv", b"userId,a,b\nu1,1,\nu1,,2\nu1,3,\n")
    result = run_import(
        env, sftp, "userdata_a.csv", "--user-id", "userId", "--map", "a=a", "--map", "b=b"
    )
    assert result.exit_code == 0, result.stderr
    assert (result.json()["rows_read"], result.json()["users_created"]) == (3, 1)
    assert user(env, "u1") == {"a": "3", "b": "2"}


def test_header_only_file_succeeds_with_nothing_to_do(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    sftp.put("userdata_a.csv", b"userId,name\r\n")
    result = run_import(env, sftp, "userdata_a.csv", "--user-id", "userId", "--map", "name=name")
    assert result.exit_code == 0, result.stderr
    assert (result.json()["status"], result.json()["rows_read"]) == ("succeeded", 0)


def test_empty_file_fails_the_run(sftp: SftpFolder, env: dict[str, str]) -> None:
    sftp.put("userdata_a.csv", b"")
    result = run_import(env, sftp, "userdata_a.csv", "--user-id", "userId")
    assert result.exit_code in (4, 5)
    assert result.json()["status"] == "failed"
    assert "empty" in result.stderr


@pytest.mark.parametrize(
    ("header", "message"),
    [(b"userId,name,name\n", "name"), (b"userId,,email\n", "empty column names at positions 2")],
)
def test_duplicate_or_empty_headers_fail_before_anything_is_written(
    sftp: SftpFolder, env: dict[str, str], header: bytes, message: str
) -> None:
    seed(env, sftp)
    sftp.put("userdata_a.csv", header + b"u1,a,b\n")
    result = run_import(env, sftp, "userdata_a.csv", "--user-id", "userId")
    assert result.exit_code in (4, 5)
    assert result.json()["status"] == "failed"
    assert message in result.stderr
    assert user(env, "u1") == {"name": "Ann", "email": "ann@old.example", "plan": "gold"}


def import_cities(env: dict[str, str], sftp: SftpFolder, *args: str) -> Result:
    """Import userdata_a.csv: its userId column, and its city column as the city."""
    return run_import(
        env, sftp, "userdata_a.csv", "--user-id", "userId", "--map", "city=city", *args
    )


def test_named_encoding_and_delimiter(sftp: SftpFolder, env: dict[str, str]) -> None:
    sftp.put("userdata_a.csv", "userId;city\nu1;Málaga\nu2;Zürich\n".encode("latin-1"))
    result = import_cities(env, sftp, "--encoding", "latin-1", "--delimiter", ";")
    assert result.exit_code == 0, result.stderr
    assert user(env, "u1") == {"city": "Málaga"}


def test_undecodable_bytes_are_a_row_error_naming_the_line(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    sftp.put("userdata_a.csv", "userId,city\nu1,Málaga\nu2,Zürich\n".encode("latin-1"))
    result = import_cities(env, sftp)
    assert result.exit_code == 1
    assert [e["line"] for e in result.json()["errors"]] == [2, 3]
    assert "--encoding" in result.json()["errors"][0]["message"]


def test_a_nul_character_rejects_its_row_and_the_rest_applies(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    # PostgreSQL cannot store a NUL in text: it must not fail the run there, nor pass on SQLite.
    sftp.put("userdata_a.csv", b"userId,city\nu1,Oslo\nu2,Os\x00lo\nu\x003,Rome\nu4,Bonn\n")
    result = import_cities(env, sftp)
    assert result.exit_code == 1, result.stderr
    assert result.json()["status"] == "partial"
    assert [(e["line"], e["column"], e["value"]) for e in result.json()["errors"]] == [
        (3, "city", "Os\\x00lo"),
        (4, "userId", "u\\x003"),
    ]
    assert all_users(env) == {"u1": {"city": "Oslo"}, "u4": {"city": "Bonn"}}


def test_a_user_id_too_long_to_index_rejects_its_row_and_the_rest_applies(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    # 2,100 random hex characters: PostgreSQL's key index refused the whole run.
    long_id = secrets.token_hex(1050)
    sftp.put("userdata_a.csv", f"userId,city\nu1,Oslo\n{long_id},Rome\nu3,Bonn\n".encode())
    result = import_cities(env, sftp)
    assert result.exit_code == 1, result.stderr
    [error] = result.json()["errors"]
    assert (error["line"], error["column"]) == (3, "userId")
    assert "2,100 characters long; at most 512" in error["message"]
    assert all_users(env) == {"u1": {"city": "Oslo"}, "u3": {"city": "Bonn"}}


def test_a_workspace_that_does_not_exist_is_refused_not_made(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    sftp.put("userdata_a.csv", b"userId,city\nu1,Oslo\n")
    for command in (
        ["import", sftp.url("userdata_a.csv"), *key_args(sftp), "--user-id", "userId"],
        ["users"],
        ["user", "u1"],
    ):
        result = usersync(env, *command, "--workspace", "acme-prd")
        assert result.exit_code == 2, result.stderr
        assert (
            "there is no workspace named 'acme-prd'; create it first: "
            "usersync workspace create acme-prd"
        ) in result.stderr
    listed = usersync(env, "workspace", "list", "--json")
    assert "acme-prd" not in [w["name"] for w in listed.json()["items"]]


def test_dry_run_reports_without_writing(sftp: SftpFolder, env: dict[str, str]) -> None:
    seed(env, sftp)
    sftp.put("userdata_b.csv", b"userId,plan\nu1,free\nu9,free\n")
    result = run_import(
        env, sftp, "userdata_b.csv", "--user-id", "userId", "--map", "plan=plan", "--dry-run"
    )
    assert result.exit_code == 0, result.stderr
    assert (result.json()["users_created"], result.json()["users_updated"]) == (1, 1)
    assert result.json()["dry_run"] is True
    assert user(env, "u1") == {"name": "Ann", "email": "ann@old.example", "plan": "gold"}
    assert user(env, "u9") is None


def test_max_rejected_fails_the_run_and_applies_nothing(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    seed(env, sftp)
    sftp.put("userdata_b.csv", b"userId,plan\nu1,free\n,x\n,y\nu9,free\n")
    result = run_import(
        env,
        sftp,
        "userdata_b.csv",
        "--user-id",
        "userId",
        "--map",
        "plan=plan",
        "--max-rejected",
        "1",
    )
    assert result.exit_code == 5
    assert result.json()["status"] == "failed"
    assert "more than 1 rows were rejected" in result.stderr
    assert user(env, "u1") == {"name": "Ann", "email": "ann@old.example", "plan": "gold"}
    assert user(env, "u9") is None


def test_a_file_that_breaks_the_rules_is_exit_4(sftp: SftpFolder, env: dict[str, str]) -> None:
    sftp.put("users.csv", b"userId\nu1\n")
    result = run_import(env, sftp, "users.csv", "--user-id", "userId")
    assert result.exit_code == 4
    doc = result.json()
    assert doc["status"] == "failed"
    assert doc["error"] == {"code": "not_eligible", "message": doc["message"]}
    assert "must begin with 'userdata_'" in doc["message"]


def test_an_unknown_mapped_column_fails_naming_it(sftp: SftpFolder, env: dict[str, str]) -> None:
    sftp.put("userdata_a.csv", b"userId,name\nu1,Ann\n")
    result = run_import(env, sftp, "userdata_a.csv", "--user-id", "userId", "--map", "mail=email")
    assert result.exit_code == 5
    assert "no column 'email'" in result.stderr
    assert result.json()["error"]["code"] == "mapping_error"
    unpaired = run_import(env, sftp, "userdata_a.csv", "--user-id", "userId", "--map", "email")
    assert unpaired.exit_code == 2
    assert "--map takes PROPERTY=COLUMN, got 'email'" in unpaired.stderr


def test_error_report_is_a_csv_of_every_rejected_row(
    sftp: SftpFolder, env: dict[str, str], tmp_path: Path
) -> None:
    rows = b"".join(b",=cmd\n" for _ in range(150))
    sftp.put("userdata_a.csv", b"userId,x\n" + rows + b"u1,ok\n")
    result = run_import(env, sftp, "userdata_a.csv", "--user-id", "userId", "--map", "x=x")
    doc = result.json()
    assert (doc["rows_rejected"], len(doc["errors"])) == (150, 100)

    report = tmp_path / "errors.csv"
    exported = usersync(env, "errors", str(doc["run_id"]), "--output", str(report))
    assert exported.exit_code == 0, exported.stderr
    with report.open(newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["line", "column", "value", "message"]
    assert len(table) == 151
    assert table[1][:2] == ["2", "userId"]


def test_only_the_newest_imports_keep_their_rejected_rows(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    env = {**env, "USERSYNC_KEEP_REJECTED_RUNS": "2"}
    sftp.put("userdata_a.csv", b"userId,age\nu1,42\nu2,abc\n")
    mapping = ("--user-id", "userId", "--map", "age=age", "--type", "age=integer")
    first, second, third = (
        run_import(env, sftp, "userdata_a.csv", *mapping).json()["run_id"] for _ in range(3)
    )

    gone = usersync(env, "errors", str(first))
    listed = usersync(env, "runs").stdout.splitlines()

    assert gone.exit_code == 2
    assert f"the rejected rows of run {first} were deleted on" in gone.stderr
    assert "USERSYNC_KEEP_REJECTED_RUNS" in gone.stderr
    assert [line.split()[0] for line in listed if "(report deleted)" in line] == [str(first)]
    for kept in (second, third):
        report = usersync(env, "errors", str(kept))
        assert report.exit_code == 0, report.stderr
        assert report.stdout.splitlines()[1].startswith("3,age,abc,")


def test_runs_lists_the_imports_newest_first_a_page_at_a_time(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    seed(env, sftp)
    sftp.put("userdata_a.csv", b"userId,age\nu1,42\nu2,abc\n")
    mapping = ("--user-id", "userId", "--map", "age=age", "--type", "age=integer")
    newest = run_import(env, sftp, "userdata_a.csv", *mapping).json()["run_id"]

    page = usersync(env, "runs", "--limit", "1", "--json")
    rest = usersync(env, "runs", "--before", str(page.json()["next"]), "--json")
    shown = usersync(env, "runs")
    partial = usersync(env, "runs", "--status", "partial", "--json")
    failed = usersync(env, "runs", "--status", "failed")

    [run] = page.json()["items"]
    assert (run["id"], run["status"], run["path"]) == (
        newest,
        "partial",
        sftp.path("userdata_a.csv"),
    )
    assert (run["rows_read"], run["users_updated"], run["rows_rejected"]) == (2, 1, 1)
    assert run["errors_deleted_at"] is None
    assert [(r["status"], r["users_created"]) for r in rest.json()["items"]] == [("succeeded", 2)]
    assert rest.json()["next"] is None
    assert [r["id"] for r in partial.json()["items"]] == [newest]
    assert failed.stdout == "No failed runs.\n"
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines()[0].split() == [
        "RUN",
        "STATUS",
        "STARTED",
        "READ",
        "CREATED",
        "UPDATED",
        "REJECTED",
        "FILE",
    ]
    assert shown.stdout.splitlines()[1].split()[:2] == [str(newest), "partial"]


def test_user_that_does_not_exist(env: dict[str, str]) -> None:
    result = usersync(env, "user", "nobody", "--json")
    assert result.exit_code == 1
    assert "no user 'nobody'" in result.stderr
    assert result.json() == {
        "error": {"code": "user_not_found", "message": "no user 'nobody' in workspace 'default'"}
    }


def test_a_user_is_deleted_from_the_command_line_once(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    seed(env, sftp)
    before = all_users(env)
    gone = sorted(before)[0]

    deleted = usersync(env, "user", gone, "--delete", "--json")
    again = usersync(env, "user", gone, "--delete")

    assert deleted.exit_code == 0, deleted.stderr
    assert deleted.json() == {"deleted": gone}
    assert again.exit_code == 1
    assert f"no user {gone!r}" in again.stderr
    assert all_users(env) == {k: v for k, v in before.items() if k != gone}


def test_server_killed_mid_transfer_leaves_the_store_unchanged(
    fresh_sshd: SshServer, env: dict[str, str], tmp_path: Path
) -> None:
    fresh_sshd.put("/userdata_seed.csv", SEED)
    seeded = usersync(
        env,
        "import",
        fresh_sshd.url("/userdata_seed.csv"),
        *key_args(fresh_sshd),
        "--user-id",
        "userId",
        "--map",
        "plan=plan",
        "--json",
    )
    assert seeded.exit_code == 0, seeded.stderr
    before = all_users(env)
    fresh_sshd.put("/userdata_big.csv", plan_file(rows=600_000, users=600_000))

    proc = start_import(fresh_sshd.url("/userdata_big.csv"), fresh_sshd, env)
    wait_for_progress(proc, "rows")  # it has begun the transfer
    fresh_sshd.kill()
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 3, err
    assert json.loads(out)["status"] == "failed"
    assert "connection was lost" in err or "did not answer" in err
    assert all_users(env) == before


def test_a_database_server_lost_mid_import_fails_the_run_at_once_and_applies_nothing(
    pg_url: str, sftp: SftpFolder, tmp_path: Path
) -> None:
    port = make_url(pg_url).port
    assert port is not None
    with CuttablePath(port) as path:
        env = {
            "USERSYNC_DATA_DIR": str(tmp_path / "data"),
            "USERSYNC_DB": path.database_url(pg_url),
        }
        seed(env, sftp)
        before = all_users(env)
        sftp.put("userdata_big.csv", plan_file(rows=600_000, users=600_000))
        proc = start_import(sftp.url("userdata_big.csv"), sftp, env)
        wait_for_progress(proc, "rows")  # its changes stream into the database
        path.cut()  # the database's host is gone: no answer, no reset
        out, err = proc.communicate(timeout=60)
        path.mend()

        assert proc.returncode == 5, err
        assert json.loads(out)["status"] == "failed"
        assert "the database failed while applying the changes" in err
        assert "nothing was applied" in err
        assert "run 2 could not be recorded, and shows as running until its lease runs out: " in err
        assert "cannot use the database" in err
        assert "Traceback" not in err
        assert "error ignored" not in err
        assert all_users(env) == before


def plan_file(*, rows: int, users: int) -> bytes:
    """A userdata file of `rows` rows over `users` distinct userIds, mapping only a plan."""
    big = io.BytesIO()
    big.write(b"userId,plan\n")
    for i in range(rows):
        big.write(b"u%d,platinum\n" % (i % users))
    return big.getvalue()


def start_import(url: str, server: SftpFolder | SshServer, env: dict[str, str]) -> Any:
    """`usersync import` of `url` in a process of its own, reporting progress on stderr."""
    mapping = ("--user-id", "userId", "--map", "plan=plan")
    return start_usersync(env, "import", url, *key_args(server), *mapping, "--json", "--progress")


def stopped_as_it_applies(sftp: SftpFolder, env: dict[str, str], sig: int) -> tuple[int, str]:
    """A big import sent `sig` once it applies its rows: its exit code and stderr."""
    sftp.put("userdata_big.csv", plan_file(rows=400_000, users=200_000))
    proc = start_import(sftp.url("userdata_big.csv"), sftp, env)
    return stop_when(proc, "applying", sig)  # the last batches may still be being staged


def test_import_killed_mid_apply_leaves_the_store_unchanged_and_its_run_ends_failed(
    sftp: SftpFolder, env: dict[str, str], db_url: str
) -> None:
    seed(env, sftp)
    before = all_users(env)
    env = {**env, "USERSYNC_WORKER_LEASE": "3"}

    stopped_as_it_applies(sftp, env, signal.SIGKILL)

    assert all_users(env) == before
    engine = db.create_engine_for(db_url)
    try:
        # Its lease runs out, and whichever worker looks next (here: the test) ends it.
        recovered = wait_for(
            "the killed import's lease to run out",
            lambda: runqueue.recover(engine, max_attempts=3) or None,
            timeout=30,
        )
    finally:
        engine.dispose()
    [killed] = usersync(env, "runs", "--json").json()["items"][:1]
    assert recovered == [killed["id"]]
    assert killed["status"] == "failed"
    assert "stopped answering; nothing was applied" in killed["message"]


def test_an_import_stops_when_its_run_is_cancelled_while_it_reads(
    sftp: SftpFolder, env: dict[str, str], db_url: str
) -> None:
    seed(env, sftp)
    before = all_users(env)
    env = {**env, "USERSYNC_WORKER_LEASE": "3"}  # a beat a second
    sftp.put("userdata_big.csv", plan_file(rows=1_500_000, users=1_500_000))
    proc = start_import(sftp.url("userdata_big.csv"), sftp, env)
    wait_for_progress(proc, "rows")
    # Held while it reads, so that the cancel comes before the apply, whatever the machine's
    # speed (on SQLite a cancel during the apply waits for its write lock: too late).
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        [running] = usersync(env, "runs", "--json").json()["items"][:1]
        cancelled = usersync(env, "cancel", str(running["id"]))
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=60)

    assert running["status"] == "running"
    assert cancelled.exit_code == 0, cancelled.stderr
    assert proc.returncode == 5, err
    assert f"cancelled while it ran (run {running['id']}): nothing was applied" in err
    assert json.loads(out)["status"] == "failed"
    assert all_users(env) == before
    [ended] = usersync(env, "runs", "--json").json()["items"][:1]
    assert (ended["id"], ended["status"]) == (running["id"], "failed")
    assert ended["bytes_read"] > 0  # how far it read


@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [(signal.SIGINT, 130, "usersync: interrupted"), (signal.SIGTERM, 143, "stopped (SIGTERM)")],
)
def test_ctrl_c_or_sigterm_as_the_import_applies_leaves_the_store_unchanged_and_ends_the_run(
    sftp: SftpFolder, env: dict[str, str], sig: int, code: int, said: str
) -> None:
    seed(env, sftp)
    before = all_users(env)

    returncode, stderr = stopped_as_it_applies(sftp, env, sig)

    assert returncode == code, stderr  # not a crash of a thread still writing
    assert said in stderr
    assert all_users(env) == before
    [stopped] = usersync(env, "runs", "--json").json()["items"][:1]
    assert stopped["status"] == "failed"  # not "running" until a worker comes by
    assert stopped["message"] == (
        "interrupted (Ctrl-C or SIGTERM) while it ran; nothing was applied"
    )


def test_cancelling_the_run_of_a_killed_import_ends_it_at_once(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    env = {**env, "USERSYNC_WORKER_LEASE": "3"}
    stopped_as_it_applies(sftp, env, signal.SIGKILL)
    [killed] = usersync(env, "runs", "--json").json()["items"][:1]
    assert killed["status"] == "running"

    early = usersync(env, "cancel", str(killed["id"]), "--json")  # its lease still runs
    ended = wait_for(
        "the killed import's lease to run out",
        lambda: (
            (usersync(env, "cancel", str(killed["id"]), "--json").json()["status"] == "failed")
            or None
        ),
        timeout=30,
    )

    assert early.json()["status"] == "running"
    assert ended
    [run] = usersync(env, "runs", "--json").json()["items"][:1]
    assert run["message"] == (
        "cancelled after the process running it had stopped answering; nothing was applied"
    )


def test_the_default_database_is_created_in_a_new_data_folder(
    sftp: SftpFolder, tmp_path: Path
) -> None:
    env = {"USERSYNC_DATA_DIR": str(tmp_path / "new" / "data")}
    sftp.put("userdata_a.csv", b"userId,name\nu1,Ann\n")
    result = usersync(
        env,
        "import",
        sftp.url("userdata_a.csv"),
        *key_args(sftp),
        "--user-id",
        "userId",
        "--map",
        "name=name",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "new" / "data" / "usersync.db").is_file()
    # The store, the secret key and known_hosts live there: its owner's only.
    assert oct((tmp_path / "new" / "data").stat().st_mode & 0o777) == "0o700"
    assert usersync(env, "user", "u1", "--json").json()["properties"] == {"name": "Ann"}


class _RewrittenOnceOpened:
    """A real source whose file is rewritten, at the same size, as soon as it is opened."""

    def __init__(self, source: Source, rewrite: Callable[[], object]) -> None:
        self._source = source
        self._rewrite = rewrite

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def open(self, path: str) -> BinaryIO:
        stream = self._source.open(path)
        self._rewrite()
        return stream


def test_a_file_rewritten_at_the_same_size_while_it_is_read_applies_nothing(
    sftp: SftpFolder, db_url: str, tmp_path: Path
) -> None:
    name = "userdata_rewritten.csv"
    sftp.put(name, b"userId,name\nu1,Ann\n", mtime=1_700_000_000)
    location = parse_remote_url(sftp.url(name))
    engine = db.create_engine_for(db_url)
    db.migrate(engine)
    policy = HostKeyPolicy(known_hosts=(sftp.known_hosts_path,))
    credentials = Credentials(key_path=str(sftp.client_key_path))
    settings = load_settings({"USERSYNC_DATA_DIR": str(tmp_path / "data")})
    try:
        real = open_source(location, credentials, policy, settings)
        rewritten = _RewrittenOnceOpened(
            real, lambda: sftp.put(name, b"userId,name\nu1,Bob\n", mtime=1_700_000_100)
        )
        with closing(real), RejectLog() as rejects:
            result = run_import_in_process(
                cast(Source, rewritten),
                ImportSpec(path=location.path, mapping=ColumnMapping("userId", {"name": "name"})),
                UserStore(engine),
                workspaces.get_or_create(engine, "default"),
                rejects,
            )
        stored = UserStore(engine).list_users(workspaces.get_or_create(engine, "default"))
    finally:
        engine.dispose()

    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "changed while it was read" in result.error.message
    assert "modified again at 2023-11-14 22:15:00" in result.error.message
    assert result.bytes_read == len(b"userId,name\nu1,Bob\n")  # a failed run says it too
    assert stored == []


def test_an_import_interrupted_after_its_file_was_applied_is_recorded_as_applied(
    sftp: SftpFolder, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sftp.put("userdata_a.csv", b"id,age\nu1,42\nu2,abc\n")
    settings = load_settings(env)
    record = service.record_outcome
    calls: list[object] = []

    def interrupted(*args: Any, **kwargs: Any) -> bool:
        calls.append(kwargs.get("note"))
        if len(calls) == 1:  # Ctrl-C, as the outcome is being recorded
            raise KeyboardInterrupt
        return bool(record(*args, **kwargs))

    monkeypatch.setattr(service, "record_outcome", interrupted)
    with service.open_database(settings) as engine, pytest.raises(KeyboardInterrupt):
        service.import_remote_file(
            settings,
            engine,
            parse_remote_url(sftp.url("userdata_a.csv")),
            Credentials(key_path=str(sftp.client_key_path)),
            HostKeyPolicy(known_hosts=(sftp.known_hosts_path,)),
            ImportSpec(
                path=sftp.path("userdata_a.csv"),
                mapping=ColumnMapping("id", {"age": "age"}, {"age": PropertyType.INTEGER}),
            ),
        )
    monkeypatch.undo()

    assert len(calls) == 2  # the interrupted recording, then the run's own
    [run] = usersync(env, "runs", "--json").json()["items"][:1]
    assert (run["status"], run["users_created"], run["rows_rejected"]) == ("partial", 1, 1)
    assert run["message"] == (
        "interrupted (Ctrl-C or SIGTERM) after the file was applied, while the run was being "
        "recorded: its counts stand, but its rejected rows may be missing"
    )
    assert user(env, "u1") == {"age": 42}
