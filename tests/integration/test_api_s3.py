"""An S3-compatible bucket through the REST API and the worker, against moto's server: a
connection of kind s3 with its endpoint, no host key to confirm, browse, sync, run, user."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apiclient import Api, RunningApp, app_on_database, new_workspace, no_secrets_shown, ok
from tests.servers.s3 import S3Bucket

FINISHED = {"succeeded", "partial", "failed", "skipped"}


@pytest.fixture
def working(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningApp]:
    with app_on_database("sqlite", tmp_path / "app", request, run_worker=True) as app:
        yield app


def s3_connection(api: Api, bucket: S3Bucket, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "bucket",
        "kind": "s3",
        "host": bucket.name,
        "username": bucket.access_key_id,
        "password": bucket.secret_access_key,
        "options": {"endpoint_url": bucket.endpoint_url, "region": bucket.region},
        **overrides,
    }
    created: dict[str, Any] = ok(api.post("/api/connections", json=body), 201)
    return created


def test_a_bucket_is_browsed_synced_and_imported_through_the_api(
    working: RunningApp, s3_bucket: S3Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    s3_bucket.put("daily/userdata_1.csv", b"userId,email\nu1,ann@example.com\n")
    s3_bucket.put("daily/other.csv", b"userId,email\nx,x@example.com\n")
    with no_secrets_shown(caplog, s3_bucket.secret_access_key) as recorder:
        api = Api(working, new_workspace(working.engine).token, recorder)
        connection = s3_connection(api, s3_bucket)
        assert connection["options"] == {
            "endpoint_url": s3_bucket.endpoint_url,
            "region": s3_bucket.region,
        }
        base = f"/api/connections/{connection['id']}"
        tested = ok(api.post(f"{base}/test"))
        assert tested["ok"] is True
        assert tested["host_key_fingerprint"] is None
        assert tested["message"] == f"Connected to s3://{s3_bucket.name}."
        folders = ok(api.get(f"{base}/folders", params={"path": "/"}))
        assert [f["name"] for f in folders["folders"]] == ["daily"]
        files = ok(api.get(f"{base}/files", params={"path": "/daily"}))
        assert [f["name"] for f in files["files"]] == ["userdata_1.csv"]
        assert [(h["name"], h["reason"]) for h in files["hidden"]] == [("other.csv", "bad_prefix")]
        sync = ok(
            api.post(
                "/api/syncs",
                json={
                    "connection_id": connection["id"],
                    "folder": "/daily",
                    "file": "userdata_1.csv",
                    "mapping": {"user_id": "userId", "properties": {"email": "email"}},
                },
            ),
            201,
        )
        run_id = ok(api.post(f"/api/syncs/{sync['id']}/run"), 202)["run_id"]
        deadline = time.monotonic() + 30
        run = ok(api.get(f"/api/runs/{run_id}"))
        while run["status"] not in FINISHED:
            assert time.monotonic() < deadline, run
            time.sleep(0.1)
            run = ok(api.get(f"/api/runs/{run_id}"))
        assert (run["status"], run["source"], run["users_created"]) == (
            "succeeded",
            f"s3://{s3_bucket.name}",
            1,
        )
        user = ok(api.get("/api/users/u1"))
        assert user["properties"] == {"email": "ann@example.com"}


def test_a_wrong_secret_fails_the_test_and_options_are_checked(
    working: RunningApp, s3_bucket: S3Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    with no_secrets_shown(caplog, "wrong-secret-Xy7") as recorder:
        api = Api(working, new_workspace(working.engine).token, recorder)
        bad = s3_connection(api, s3_bucket, password="wrong-secret-Xy7")
        tested = ok(api.post(f"/api/connections/{bad['id']}/test"))
        assert tested["ok"] is False
        refused = api.post(
            "/api/connections",
            json={
                "name": "sftp with an endpoint",
                "host": "127.0.0.1",
                "username": "u",
                "password": "p",
                "options": {"endpoint_url": "http://127.0.0.1:1"},
            },
        )
        assert refused.status_code == 422
        assert (
            "sftp connections have no option 'endpoint_url'" in refused.json()["error"]["message"]
        )
