"""The REST API through HTTP: connections, syncs, runs, users and properties, on SQLite and on
the real PostgreSQL server (one app per database, a fresh workspace per test). Connections
here point at a port where nothing listens: the tests that reach a real sshd are in
test_api_sftp.py."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.apiclient import (
    PUBLIC_KEY,
    WEBHOOK_SECRET,
    Api,
    Recorder,
    RunningApp,
    connection_body,
    error_of,
    new_workspace,
    ok,
    sync_body,
)
from usersync.schema import runs as runs_table
from usersync.schema import utcnow
from usersync.store import ConflictMode, UserStore, properties, runs

pytestmark = pytest.mark.integration


def create_connection(api: Api, **overrides: Any) -> dict[str, Any]:
    created: dict[str, Any] = ok(
        api.post("/api/connections", json=connection_body(**overrides)), 201
    )
    return created


def create_sync(api: Api, **overrides: Any) -> dict[str, Any]:
    connection_id = overrides.pop("connection_id", None) or create_connection(api)["id"]
    created: dict[str, Any] = ok(
        api.post("/api/syncs", json=sync_body(connection_id, **overrides)), 201
    )
    return created


# --- connections --------------------------------------------------------------------------

PIN = "SHA256:" + "b" * 43  # a fingerprint of the right form


def test_create_connection_answers_201_with_the_connection_and_whether_secrets_are_set(
    api: Api,
) -> None:
    response = api.post("/api/connections", json=connection_body(name="Acme SFTP"))
    created = ok(response, 201)

    assert created == {
        "id": created["id"],
        "name": "Acme SFTP",
        "kind": "sftp",
        "host": "127.0.0.1",
        "port": 9,
        "username": "importer",
        "host_key_fingerprint": None,
        "options": {},
        "has_password": True,
        "has_private_key": True,
        "public_key": PUBLIC_KEY,
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
    }
    assert ok(api.get(f"/api/connections/{created['id']}")) == created
    assert ok(api.get("/api/connections")) == {"items": [created], "next": None}
    assert response.headers["location"].endswith(f"/api/connections/{created['id']}")


def test_connection_list_pages_with_a_cursor(api: Api) -> None:
    ids = [create_connection(api)["id"] for _ in range(5)]

    first = ok(api.get("/api/connections", params={"limit": 2}))
    second = ok(api.get("/api/connections", params={"limit": 2, "after": first["next"]}))
    third = ok(api.get("/api/connections", params={"limit": 2, "after": second["next"]}))

    assert [c["id"] for c in first["items"]] == ids[:2]
    assert [c["id"] for c in second["items"]] == ids[2:4]
    assert [c["id"] for c in third["items"]] == ids[4:]
    assert third["next"] is None


def test_patch_confirms_the_host_key_and_moving_the_connection_forgets_it(api: Api) -> None:
    connection = create_connection(api)
    url = f"/api/connections/{connection['id']}"

    confirmed = ok(
        api.patch(url, json={"host_key_fingerprint": "SHA256:abcDEF123+/xyz" + "0" * 29 + "="})
    )
    renamed = ok(api.patch(url, json={"name": "renamed"}))
    moved = ok(api.patch(url, json={"port": 2222}))

    assert confirmed["host_key_fingerprint"] == "SHA256:abcDEF123+/xyz" + "0" * 29
    assert renamed["host_key_fingerprint"] == "SHA256:abcDEF123+/xyz" + "0" * 29
    assert renamed["name"] == "renamed"
    assert moved["port"] == 2222
    assert moved["host_key_fingerprint"] is None


def test_patch_removes_a_secret_given_as_null_and_keeps_those_left_out(api: Api) -> None:
    connection = create_connection(api)
    url = f"/api/connections/{connection['id']}"

    without_key = ok(api.patch(url, json={"private_key": None}))
    error = error_of(api.patch(url, json={"password": ""}), 422)

    assert without_key["has_password"] is True
    assert without_key["has_private_key"] is False
    assert "password or a private key" in error["message"]


def test_patch_refuses_null_for_a_field_that_cannot_be_empty(api: Api) -> None:
    connection = create_connection(api)

    error = error_of(api.patch(f"/api/connections/{connection['id']}", json={"name": None}), 422)

    assert error["code"] == "invalid_request"
    assert error["message"].startswith("name:")


def test_connection_needs_a_password_or_a_key(api: Api) -> None:
    body = connection_body(password=None, private_key=None)

    error = error_of(api.post("/api/connections", json=body), 422)

    assert "password or a private key" in error["message"]


def test_connection_names_are_unique_in_a_workspace(api: Api) -> None:
    create_connection(api, name="same")

    error = error_of(api.post("/api/connections", json=connection_body(name="same")), 409)

    assert "already a connection named 'same'" in error["message"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"kind": "ftp"}, "private_key: ftp connections log in with a password"),
        (
            {
                "kind": "s3",
                "private_key": None,
                "key_passphrase": None,
                "host_key_fingerprint": PIN,
            },
            "host_key_fingerprint: s3 connections have no SSH host key",
        ),
        ({"host_key_fingerprint": "notafingerprint"}, "is not a SHA256 host key fingerprint"),
    ],
)
def test_what_only_an_sftp_connection_has_is_refused_on_other_kinds(
    api: Api, body: dict[str, Any], expected: str
) -> None:
    error = error_of(api.post("/api/connections", json=connection_body(**body)), 422)

    assert expected in error["message"]


def test_changing_the_kind_is_checked_like_a_new_connection(api: Api) -> None:
    sftp = create_connection(api, host_key_fingerprint=PIN)
    url = f"/api/connections/{sftp['id']}"

    refused = error_of(api.patch(url, json={"kind": "ftp"}), 422)
    ftp = ok(api.patch(url, json={"kind": "ftp", "private_key": None, "key_passphrase": None}))

    assert "private_key: ftp connections log in with a password" in refused["message"]
    assert ftp["kind"] == "ftp"
    assert ftp["host_key_fingerprint"] is None  # another kind of server: no SSH host key
    assert ftp["has_password"] is True


def test_deleting_a_connection_that_a_sync_uses_is_refused(api: Api) -> None:
    sync = create_sync(api)
    url = f"/api/connections/{sync['connection_id']}"

    refused = error_of(api.delete(url), 409)
    assert api.delete(f"/api/syncs/{sync['id']}").status_code == 204
    deleted = api.delete(url)

    assert f"used by sync {sync['id']}" in refused["message"]
    assert deleted.status_code == 204
    assert error_of(api.get(url), 404)["code"] == "connection_not_found"


@pytest.mark.parametrize(
    "endpoint",
    ["folders?path=/", "files?path=/in", "preview?path=/in/userdata_a.csv"],
)
def test_nothing_is_listed_or_read_until_the_host_key_is_confirmed(api: Api, endpoint: str) -> None:
    connection = create_connection(api)

    error = error_of(api.get(f"/api/connections/{connection['id']}/{endpoint}"), 409)

    assert error["code"] == "host_key_not_confirmed"
    assert "confirm it" in error["message"]


def test_a_connection_test_that_cannot_connect_says_why(api: Api) -> None:
    connection = create_connection(api)

    outcome = ok(api.post(f"/api/connections/{connection['id']}/test"))

    assert outcome["ok"] is False
    assert outcome["host_key_fingerprint"] is None
    assert "127.0.0.1" in outcome["message"]


def test_browsing_a_confirmed_connection_whose_server_is_down_is_a_bad_gateway(api: Api) -> None:
    connection = create_connection(
        api, host_key_fingerprint="SHA256:" + "a" * 43, private_key=None, key_passphrase=None
    )

    error = error_of(api.get(f"/api/connections/{connection['id']}/folders"), 502)

    assert error["code"] == "connect_failed"


# --- syncs --------------------------------------------------------------------------------


def test_create_sync_fills_in_the_defaults(api: Api) -> None:
    connection = create_connection(api)

    response = api.post("/api/syncs", json=sync_body(connection["id"]))
    sync = ok(response, 201)

    assert response.headers["location"].endswith(f"/api/syncs/{sync['id']}")
    assert sync == {
        **sync,
        "connection_id": connection["id"],
        "folder": "/in",
        "file": "userdata_a.csv",
        "path": "/in/userdata_a.csv",
        "file_choice": "exact",
        "mapping": {
            "user_id": "userId",
            "properties": {"email": "email", "age": "age"},
            "types": {},
        },
        "conflict": "update",
        "empty_cells": "ignore",
        "schedule": {"type": "once"},
        "timezone": "UTC",
        "enabled": False,
        "next_run_at": None,
        "skip_unchanged_users": False,
        "after_import": "leave",
        "has_webhook_secret": False,
    }
    assert ok(api.get(f"/api/syncs/{sync['id']}")) == sync
    assert ok(api.get("/api/syncs")) == {"items": [sync], "next": None}


def test_sync_settings_round_trip_and_the_webhook_secret_stays_hidden(api: Api) -> None:
    sync = create_sync(
        api,
        name="nightly",
        conflict="replace",
        encoding="latin-1",
        delimiter="tab",
        max_rejected=10,
        schedule={"type": "weekly", "days": ["MON", "THU"], "time": "09:30"},
        timezone="Europe/Berlin",
        webhook_url="https://hooks.example/usersync",
        webhook_secret=WEBHOOK_SECRET,
        mapping={"user_id": "userId", "properties": {"age": "age"}, "types": {"age": "integer"}},
        skip_unchanged_users=True,
    )

    assert sync["name"] == "nightly"
    assert sync["conflict"] == "replace"
    assert sync["delimiter"] == "\t"
    assert sync["timezone"] == "Europe/Berlin"
    assert sync["schedule_description"].startswith("At 09:30")
    assert sync["webhook_on"] == "failure"
    assert sync["has_webhook_secret"] is True
    assert sync["mapping"]["types"] == {"age": "integer"}
    assert "webhook_secret" not in sync
    assert sync["skip_unchanged_users"] is True
    unhooked = api.patch(f"/api/syncs/{sync['id']}", json={"webhook_url": None}).json()
    assert (unhooked["webhook_url"], unhooked["has_webhook_secret"]) == (None, False)
    assert unhooked["skip_unchanged_users"] is True
    writes_all = api.patch(f"/api/syncs/{sync['id']}", json={"skip_unchanged_users": False})
    assert writes_all.json()["skip_unchanged_users"] is False


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ({"type": "cron", "expression": "0/120 * * * * ?"}, "larger than the field allows"),
        ({"type": "cron", "expression": "0 0 0 32W * ?"}, "32W"),
        ({"type": "daily", "time": "25:00"}, "time"),
        ({"type": "hourly"}, "is not a schedule type"),
        ("not a cron", "cron"),
        # A sync switched on must fire again: the wizard refuses a time that has passed too.
        ({"type": "once", "at": "2020-01-01T09:00"}, "has no fire time after now"),
        ({"type": "cron", "expression": "0 0 0 1 1 ? 2020"}, "has no fire time after now"),
    ],
)
def test_a_bad_schedule_is_422_with_the_parsers_message(
    api: Api, schedule: Any, expected: str
) -> None:
    connection = create_connection(api)

    body = sync_body(connection["id"], schedule=schedule, enabled=True)
    error = error_of(api.post("/api/syncs", json=body), 422)

    assert expected in error["message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"enabled": "sometimes"}, "enabled"),
        ({"connection_id": "one"}, "connection_id"),
        ({"mapping": {"properties": {"email": "email"}}}, "mapping.user_id"),
        ({"conflict": "merge"}, "conflict"),
        ({"max_rejected": -1}, "max_rejected"),
        ({"unknown": 1}, "unknown"),
        ({"mapping": ["userId"]}, "mapping"),
        # No text holds a NUL character: PostgreSQL cannot store one, and no file has one.
        ({"encoding": "utf\u00008"}, "encoding"),
        ({"delimiter": "\u0000"}, "delimiter"),
        ({"mapping": {"user_id": "id\u0000", "properties": {}}}, "mapping.user_id"),
        ({"mapping": {"user_id": "id", "properties": {"a\u0000": "a"}}}, "mapping.properties"),
    ],
)
def test_a_body_of_the_wrong_shape_is_422_naming_the_field(
    api: Api, change: dict[str, Any], field: str
) -> None:
    connection = create_connection(api)

    error = error_of(api.post("/api/syncs", json={**sync_body(connection["id"]), **change}), 422)

    assert error["code"] == "invalid_request"
    assert error["message"].startswith(f"{field}:")
    assert [f["field"] for f in error["fields"]] == [field]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"host": "files\u0000.example.com"}, "host: must not contain a NUL character"),
        ({"username": "\u0000"}, "username: must not contain a NUL character"),
        ({"password": "pa\u0000ss"}, "password: must not contain a NUL character"),
        ({"private_key": "k" * 65_537}, "private_key: at most 65,536 characters; this has 65,537"),
    ],
)
def test_a_nul_character_or_a_secret_of_megabytes_in_a_connection_is_422(
    api: Api, body: dict[str, Any], expected: str
) -> None:
    error = error_of(api.post("/api/connections", json={**connection_body(), **body}), 422)

    assert [f["field"] for f in error["fields"]] == [expected.split(":")[0]]
    assert error["message"].startswith(expected)


@pytest.mark.parametrize("after", ["a\u0000b", "x" * 1001])
def test_a_users_cursor_with_a_nul_or_over_1000_characters_is_422(api: Api, after: str) -> None:
    error = error_of(api.get("/api/users", params={"after": after}), 422)

    assert error["message"].startswith("after:")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"folder": "in"}, "folder: give an absolute folder path"),
        ({"file": "data.csv"}, "must begin with 'userdata_'"),
        ({"file": None}, "file: name the file"),
        ({"connection_id": 2_000_000_000}, "connection_id: there is no connection"),
        ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
        (
            {
                "schedule": {"type": "daily", "time": "01:00", "timezone": "Europe/Berlin"},
                "timezone": "Asia/Tokyo",
            },
            "timezone: the sync says Asia/Tokyo and its schedule says Europe/Berlin",
        ),
        ({"encoding": "klingon"}, "unknown encoding"),
        ({"webhook_secret": "s3cret"}, "webhook_secret: the secret signs a webhook's calls"),
        ({"mapping": {"user_id": "id", "properties": {"bad name": "x"}}}, "bad name"),
        (
            {"mapping": {"user_id": "id", "properties": {"a": "x"}, "types": {"b": "integer"}}},
            "mapping.types",
        ),
    ],
)
def test_a_sync_that_cannot_work_is_422_saying_why(
    api: Api, change: dict[str, Any], expected: str
) -> None:
    connection = create_connection(api)

    error = error_of(api.post("/api/syncs", json={**sync_body(connection["id"]), **change}), 422)

    assert expected in error["message"]


def test_a_mapped_type_that_differs_from_the_catalog_is_refused(api: Api) -> None:
    ok(api.post("/api/properties", json={"name": "age", "type": "integer"}), 201)
    connection = create_connection(api)
    mapping = {"user_id": "userId", "properties": {"age": "age"}, "types": {"age": "string"}}

    error = error_of(api.post("/api/syncs", json=sync_body(connection["id"], mapping=mapping)), 422)

    assert "'age' is already an integer" in error["message"]


def test_patch_changes_only_what_it_names_and_checks_it(api: Api) -> None:
    sync = create_sync(api)
    url = f"/api/syncs/{sync['id']}"

    changed = ok(api.patch(url, json={"conflict": "replace", "name": "renamed"}))
    refused = error_of(
        api.patch(url, json={"schedule": {"type": "monthly", "day": 32, "time": "01:00"}}), 422
    )

    assert changed == {
        **sync,
        "conflict": "replace",
        "name": "renamed",
        "updated_at": changed["updated_at"],
    }
    assert "day" in refused["message"]
    assert ok(api.get(url)) == changed


def test_the_sync_on_toggle_sets_and_clears_the_next_run(api: Api) -> None:
    sync = create_sync(api, schedule={"type": "daily", "time": "01:00"})
    url = f"/api/syncs/{sync['id']}"

    on = ok(api.post(f"{url}/enable"))
    off = ok(api.post(f"{url}/disable"))

    assert on["enabled"] is True
    assert on["next_run_at"].endswith("T01:00:00+00:00")
    assert off["enabled"] is False
    assert off["next_run_at"] is None


def test_schedule_next_lists_fire_times_in_the_syncs_zone(api: Api) -> None:
    sync = create_sync(api, schedule={"type": "daily", "time": "02:30"}, timezone="Europe/Berlin")

    times = ok(
        api.get(
            f"/api/syncs/{sync['id']}/schedule/next",
            params={"count": 3, "after": "2026-03-28T12:00:00+00:00"},
        )
    )

    assert times == {
        "description": "At 02:30, every day",
        "timezone": "Europe/Berlin",
        # 29 March: 02:00 becomes 03:00, so 02:30 fires when the clock jumps.
        "next": [
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00",
        ],
    }
    default_count = ok(api.get(f"/api/syncs/{sync['id']}/schedule/next"))
    assert len(default_count["next"]) == 5


def test_run_now_queues_a_run_once(api: Api) -> None:
    sync = create_sync(api)

    started = ok(api.post(f"/api/syncs/{sync['id']}/run"), 202)
    again = ok(api.post(f"/api/syncs/{sync['id']}/run"), 202)
    dry = ok(api.post(f"/api/syncs/{sync['id']}/run", params={"dry_run": "true"}), 202)
    dry_again = ok(api.post(f"/api/syncs/{sync['id']}/run", params={"dry_run": "true"}), 202)
    run = ok(api.get(f"/api/runs/{started['run_id']}"))
    check = ok(api.get(f"/api/runs/{dry['run_id']}"))

    assert set(started) == {"run_id"}
    assert again == started
    assert run["status"] == "queued"
    assert run["sync_id"] == sync["id"]
    assert (run["trigger"], run["dry_run"]) == ("manual", False)
    assert dry_again == dry != started  # a dry run waits apart from the import
    assert (check["status"], check["trigger"], check["dry_run"]) == ("queued", "manual", True)


def test_a_queued_run_is_cancelled_once_and_an_ended_one_answers_409(api: Api) -> None:
    sync = create_sync(api)
    run_id = ok(api.post(f"/api/syncs/{sync['id']}/run"), 202)["run_id"]

    cancelled = ok(api.post(f"/api/runs/{run_id}/cancel"), 202)
    again = ok(api.post(f"/api/runs/{run_id}/cancel"), 202)
    ended_id = ok(api.post(f"/api/syncs/{sync['id']}/run"), 202)["run_id"]
    runs.finish_run(api.running.engine, ended_id, status="succeeded")
    refused = error_of(api.post(f"/api/runs/{ended_id}/cancel"), 409)

    assert (cancelled["id"], cancelled["status"]) == (run_id, "failed")
    assert cancelled["message"] == "cancelled before it started"
    assert cancelled["cancel_requested_at"] is not None
    assert again == cancelled  # asking again changes nothing
    assert ok(api.get(f"/api/runs/{run_id}"))["status"] == "failed"
    assert refused["message"] == f"run {ended_id} has ended (succeeded): there is nothing to cancel"


def test_deleting_a_sync_drops_its_queued_runs(api: Api) -> None:
    sync = create_sync(api)
    run_id = ok(api.post(f"/api/syncs/{sync['id']}/run"), 202)["run_id"]

    assert api.delete(f"/api/syncs/{sync['id']}").status_code == 204

    assert error_of(api.get(f"/api/syncs/{sync['id']}"), 404)["code"] == "sync_not_found"
    assert error_of(api.get(f"/api/runs/{run_id}"), 404)["code"] == "run_not_found"


# --- runs ---------------------------------------------------------------------------------


def finished_run(api: Api, sync_id: int | None, errors: list[tuple[int, str, str, str]]) -> int:
    engine = api.running.engine
    run_id = runs.create_run(
        engine,
        api.workspace_id,
        source="sftp://importer@127.0.0.1:9",
        path="/in/x.csv",
        sync_id=sync_id,
    )
    runs.add_run_errors(engine, run_id, errors)
    runs.finish_run(
        engine,
        run_id,
        status="partial" if errors else "succeeded",
        bytes_read=400,
        rows_read=10 + len(errors),
        users_created=7,
        users_updated=3,
        rows_rejected=len(errors),
        file_size=400,
    )
    return run_id


def test_runs_list_newest_first_pages_and_filters_by_sync(api: Api) -> None:
    sync = create_sync(api)
    other = create_sync(api)
    mine = [finished_run(api, sync["id"], []) for _ in range(3)]
    finished_run(api, other["id"], [])

    everything = ok(api.get("/api/runs"))
    first = ok(api.get("/api/runs", params={"sync_id": sync["id"], "limit": 2}))
    rest = ok(
        api.get("/api/runs", params={"sync_id": sync["id"], "limit": 2, "after": first["next"]})
    )

    assert len(everything["items"]) == 4
    assert [r["id"] for r in first["items"]] == mine[::-1][:2]
    assert [r["id"] for r in rest["items"]] == mine[:1]
    assert rest["next"] is None


def test_a_body_of_many_problems_is_answered_with_the_first_ones_only(api: Api) -> None:
    connection = create_connection(api)
    body = {**sync_body(connection["id"]), **{f"unknown{n}": n for n in range(3000)}}

    answer = api.post("/api/syncs", json=body)

    error = error_of(answer, 422)
    assert len(answer.content) < 4000
    assert error["message"].startswith("unknown0: ")
    assert error["message"].endswith("; and 2,995 more problems")
    assert [f["field"] for f in error["fields"]] == [f"unknown{n}" for n in range(20)]


def test_runs_filter_by_status_and_an_unknown_status_is_422(api: Api) -> None:
    sync = create_sync(api)
    clean = finished_run(api, sync["id"], [])
    rejected = finished_run(api, sync["id"], [(2, "age", "abc", "not a number")])

    partial = ok(api.get("/api/runs", params={"status": "partial"}))
    succeeded = ok(api.get("/api/runs", params={"status": "succeeded", "sync_id": sync["id"]}))
    failed = ok(api.get("/api/runs", params={"status": "failed"}))
    unknown = error_of(api.get("/api/runs", params={"status": "broken"}), 422)

    assert [r["id"] for r in partial["items"]] == [rejected]
    assert [r["id"] for r in succeeded["items"]] == [clean]
    assert failed["items"] == []
    assert [f["field"] for f in unknown["fields"]] == ["status"]


def test_a_run_shows_its_counts_progress_and_first_hundred_errors(api: Api) -> None:
    errors = [(line, "age", f"x{line}", "not a whole number") for line in range(2, 152)]
    run_id = finished_run(api, None, errors)

    run = ok(api.get(f"/api/runs/{run_id}"))

    assert run["status"] == "partial"
    assert run["bytes_read"] == run["file_size"] == 400
    assert run["progress"] == 1.0
    assert (run["rows_read"], run["users_created"], run["users_updated"]) == (160, 7, 3)
    assert run["rows_rejected"] == 150
    assert len(run["errors"]) == 100
    assert run["errors"][0] == {
        "line": 2,
        "column": "age",
        "value": "x2",
        "message": "not a whole number",
    }
    assert run["errors_url"] == f"/api/runs/{run_id}/errors.csv"


def test_a_running_run_shows_how_far_it_got(api: Api) -> None:
    engine = api.running.engine
    run_id = runs.create_run(engine, api.workspace_id, source="s", path="/in/x.csv", file_size=1000)
    with engine.begin() as conn:
        conn.execute(
            runs_table.update()
            .where(runs_table.c.id == run_id)
            .values(bytes_read=250, rows_read=1234)
        )

    run = ok(api.get(f"/api/runs/{run_id}"))

    assert (run["status"], run["bytes_read"], run["rows_read"]) == ("running", 250, 1234)
    assert run["progress"] == 0.25


def test_the_error_report_is_csv_with_formulas_escaped(api: Api) -> None:
    errors = [
        (2, "email", '=HYPERLINK("http://evil")', "not an email"),
        (3, "age", "+1", "-bad"),
        (4, "@col", "@SUM(A1)", 'fine, "quoted", and\nmultiline'),
        (5, "plan", "gold", "ok"),
    ]
    run_id = finished_run(api, None, errors)

    response = api.get(f"/api/runs/{run_id}/errors.csv")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert f'filename="run-{run_id}-errors.csv"' in response.headers["content-disposition"]
    assert list(csv.reader(io.StringIO(response.text))) == [
        ["line", "column", "value", "message"],
        ["2", "email", '\'=HYPERLINK("http://evil")', "not an email"],
        ["3", "age", "'+1", "'-bad"],
        ["4", "'@col", "'@SUM(A1)", 'fine, "quoted", and\nmultiline'],
        ["5", "plan", "gold", "ok"],
    ]


def test_a_big_error_report_streams_every_row(api: Api) -> None:
    errors = [(line, "c", str(line), "m") for line in range(2, 2502)]
    run_id = finished_run(api, None, errors)

    rows = list(csv.reader(io.StringIO(api.get(f"/api/runs/{run_id}/errors.csv").text)))

    assert len(rows) == 2501
    assert rows[-1] == ["2501", "c", "2501", "m"]


def test_a_run_whose_rejected_rows_were_let_go_keeps_its_counts_and_its_report_is_gone(
    api: Api,
) -> None:
    older = finished_run(api, 41, [(2, "age", "x", "not a whole number")])
    newer = finished_run(api, 41, [(3, "age", "y", "not a whole number")])
    newest = runs.get_run(api.running.engine, newer)
    assert newest is not None
    assert runs.delete_old_errors(api.running.engine, newest, keep=1) == [older]

    run = ok(api.get(f"/api/runs/{older}"))
    report = api.get(f"/api/runs/{older}/errors.csv")

    assert (run["rows_rejected"], run["errors"]) == (1, [])
    assert run["errors_deleted_at"] is not None
    assert report.status_code == 410
    assert report.json()["error"]["code"] == "run_errors_deleted"
    assert f"the rejected rows of run {older} were deleted on" in report.json()["error"]["message"]
    assert ok(api.get(f"/api/runs/{newer}"))["errors_deleted_at"] is None
    assert api.get(f"/api/runs/{newer}/errors.csv").status_code == 200


# --- users --------------------------------------------------------------------------------


def seed_users(api: Api, users: dict[str, str]) -> None:
    UserStore(api.running.engine).apply(
        api.workspace_id, [list(users.items())], ConflictMode.UPDATE
    )


def test_users_list_pages_by_user_id_and_searches(api: Api) -> None:
    seed_users(api, {f"u{i:02}": f'{{"n": {i}}}' for i in range(5)} | {"X-Ray": "{}"})

    first = ok(api.get("/api/users", params={"limit": 4}))
    second = ok(api.get("/api/users", params={"limit": 4, "after": first["next"]}))
    found = ok(api.get("/api/users", params={"search": "x-r"}))

    assert [u["user_id"] for u in first["items"]] == ["X-Ray", "u00", "u01", "u02"]
    assert first["next"] == "u02"
    assert [u["user_id"] for u in second["items"]] == ["u03", "u04"]
    assert second["next"] is None
    assert [u["id"] for u in found["items"]] == ["X-Ray"]


def test_a_users_record_keeps_its_types(api: Api) -> None:
    seed_users(
        api,
        {"a/b ü": '{"age": 41, "vip": true, "born": "1985-02-01", "email": "a@example.com"}'},
    )

    user = ok(api.get("/api/users/a%2Fb%20%C3%BC"))

    assert user["id"] == user["user_id"] == "a/b ü"
    assert user["properties"] == {
        "age": 41,
        "vip": True,
        "born": "1985-02-01",
        "email": "a@example.com",
    }
    assert user["created_at"].endswith("+00:00")


def test_an_unknown_user_is_404(api: Api) -> None:
    error = error_of(api.get("/api/users/nobody"), 404)

    assert error == {"code": "user_not_found", "message": "there is no user 'nobody'"}


def test_a_user_is_deleted_once_and_only_in_its_own_workspace(
    api: Api, running: RunningApp, recorder: Recorder
) -> None:
    seed_users(api, {"a/b ü": '{"age": 41}', "u2": "{}"})
    other = Api(running, new_workspace(running.engine).token, recorder)

    elsewhere = error_of(other.delete("/api/users/a%2Fb%20%C3%BC"), 404)
    deleted = api.delete("/api/users/a%2Fb%20%C3%BC")
    again = error_of(api.delete("/api/users/a%2Fb%20%C3%BC"), 404)

    assert elsewhere["code"] == "user_not_found"
    assert deleted.status_code == 204
    assert again == {"code": "user_not_found", "message": "there is no user 'a/b ü'"}
    assert [u["user_id"] for u in ok(api.get("/api/users"))["items"]] == ["u2"]


def test_every_user_downloads_as_csv_and_as_json_lines_of_its_own_workspace_only(
    api: Api, running: RunningApp, recorder: Recorder
) -> None:
    properties.ensure(api.running.engine, api.workspace_id, {"age": "integer", "vip": "boolean"})
    seed_users(api, {"b": '{"age": -41, "vip": true}', "a": '{"vip": false}'})
    other = Api(running, new_workspace(running.engine).token, recorder)
    seed_users(other, {"elsewhere": "{}"})

    as_csv = api.get("/api/users.csv")
    as_jsonl = api.get("/api/users.jsonl")
    refused = api.as_token(None).get("/api/users.csv")

    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    day = f"{utcnow():%Y-%m-%d}"
    assert f'filename="userdata_export_{day}.csv"' in as_csv.headers["content-disposition"]
    assert as_csv.text == "userId,age,vip\na,,false\nb,-41,true\n"
    assert as_jsonl.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in as_jsonl.text.splitlines()]
    for line in lines:
        assert {**line, "id": line["user_id"]} == ok(api.get(f"/api/users/{line['user_id']}"))
    assert [line["user_id"] for line in lines] == ["a", "b"]
    assert other.get("/api/users.csv").text == "userId\nelsewhere\n"
    assert error_of(refused, 401)["code"] == "unauthorized"


# --- properties ---------------------------------------------------------------------------


def test_properties_are_created_once_and_keep_their_type(api: Api) -> None:
    created = ok(api.post("/api/properties", json={"name": "age", "type": "integer"}), 201)
    again = ok(api.post("/api/properties", json={"name": "age", "type": "integer"}), 200)
    conflict = error_of(api.post("/api/properties", json={"name": "age", "type": "string"}), 409)
    plain = ok(api.post("/api/properties", json={"name": "email"}), 201)

    assert created == {
        "id": "age",
        "name": "age",
        "type": "integer",
        "created_at": created["created_at"],
    }
    assert again == created
    assert conflict["code"] == "property_type_conflict"
    assert "'age' is a integer, not a string" in conflict["message"]
    assert plain["type"] == "string"
    listed = ok(api.get("/api/properties"))
    assert listed == {"items": [created, plain], "next": None}


def test_properties_list_pages_by_name(api: Api) -> None:
    for name in ("c", "a", "b"):
        ok(api.post("/api/properties", json={"name": name}), 201)

    first = ok(api.get("/api/properties", params={"limit": 2}))
    second = ok(api.get("/api/properties", params={"limit": 2, "after": first["next"]}))

    assert [p["name"] for p in first["items"]] == ["a", "b"]
    assert [p["name"] for p in second["items"]] == ["c"]
    assert second["next"] is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "has space"}, "not a valid property name"),
        ({"name": "1st"}, "not a valid property name"),
        ({"name": "age", "type": "float"}, "type:"),
        ({"type": "string"}, "name:"),
    ],
)
def test_a_bad_property_is_422(api: Api, body: dict[str, Any], expected: str) -> None:
    error = error_of(api.post("/api/properties", json=body), 422)

    assert expected in error["message"]


def test_the_catalog_fills_in_as_imports_add_properties(api: Api) -> None:
    properties.ensure(api.running.engine, api.workspace_id, {"plan": "string"})

    assert [p["name"] for p in ok(api.get("/api/properties"))["items"]] == ["plan"]


# --- errors -------------------------------------------------------------------------------


def test_a_body_that_is_not_json_is_422(api: Api) -> None:
    response = api.post(
        "/api/connections", content=b"{name: x", headers={"Content-Type": "application/json"}
    )

    error = error_of(response, 422)

    assert error["message"].startswith("body: not valid JSON")


def test_a_wrong_type_is_refused_without_echoing_the_value(api: Api) -> None:
    body = connection_body(port="twenty-two", password=["not", "text"])

    error = error_of(api.post("/api/connections", json=body), 422)

    assert "twenty-two" not in str(error)
    assert "not" not in [f["message"] for f in error["fields"]]
    assert {f["field"] for f in error["fields"]} == {"port", "password"}


def test_unknown_routes_and_methods_answer_in_the_error_shape(api: Api) -> None:
    assert error_of(api.get("/api/nothing"), 404)["code"] == "not_found"
    response = api.delete("/api/connections")
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert "GET" in response.headers["allow"]


def test_times_are_iso_8601_with_the_utc_offset(api: Api) -> None:
    before = utcnow() - timedelta(seconds=5)
    connection = create_connection(api)

    created = datetime.fromisoformat(connection["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert created >= before


def test_a_user_name_ssh_cannot_send_fails_the_test_instead_of_the_server(api: Api) -> None:
    connection = create_connection(api, username="imp\U00069d5aorter", private_key=None)

    outcome = ok(api.post(f"/api/connections/{connection['id']}/test"))

    assert outcome["ok"] is False


# --- the workspace ------------------------------------------------------------------------


def test_the_workspace_time_zone_is_read_changed_and_given_to_new_syncs(api: Api) -> None:
    first = ok(api.get("/api/workspace"))
    assert first["timezone"] == "UTC"
    assert first["name"].startswith("ws-")
    before = create_sync(api)
    assert before["timezone"] == "UTC"

    changed = ok(api.patch("/api/workspace", json={"timezone": "Asia/Kolkata"}))
    assert changed == {**first, "timezone": "Asia/Kolkata"}
    assert ok(api.get("/api/workspace")) == changed
    assert create_sync(api)["timezone"] == "Asia/Kolkata"
    assert ok(api.get(f"/api/syncs/{before['id']}"))["timezone"] == "UTC"  # kept its own
    assert ok(api.patch("/api/workspace", json={})) == changed


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"timezone": "Asia/Kolkatta"}, "did you mean 'Asia/Kolkata'"),
        ({"timezone": None}, "timezone"),
        ({"name": "other"}, "name"),
    ],
)
def test_a_bad_workspace_change_is_422_and_changes_nothing(
    api: Api, body: dict[str, Any], named: str
) -> None:
    first = ok(api.get("/api/workspace"))
    error = error_of(api.patch("/api/workspace", json=body), 422)
    assert named in error["message"]
    assert ok(api.get("/api/workspace")) == first


def test_the_workspace_is_the_tokens_own(api: Api, running: RunningApp, recorder: Recorder) -> None:
    other = Api(running, new_workspace(running.engine).token, recorder)
    ok(other.patch("/api/workspace", json={"timezone": "Europe/Berlin"}))
    assert ok(api.get("/api/workspace"))["timezone"] == "UTC"
    assert ok(api.get("/api/workspace"))["id"] != ok(other.get("/api/workspace"))["id"]
    assert error_of(Api(running, None, recorder).get("/api/workspace"), 401)
