"""An FTPS server whose certificate comes from a private certificate authority, through the
REST API: refused until the connection carries that authority (`options.ca_pem`), then
tested and browsed; a `ca_pem` that is no certificate is refused, naming the option."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apiclient import (
    Api,
    Recorder,
    RunningApp,
    app_on_database,
    error_of,
    new_workspace,
    ok,
    wait_for_run,
)
from tests.servers.ftpd import FtpFolder, VsftpdServer

pytestmark = pytest.mark.integration


@pytest.fixture
def folder(vsftpd: VsftpdServer, request: pytest.FixtureRequest) -> Iterator[FtpFolder]:
    made = vsftpd.folder("api-ftps-" + request.node.name[-40:].replace("[", "-").strip("]"))
    try:
        yield made
    finally:
        made.remove()


def ftps_body(vsftpd: VsftpdServer, **options: Any) -> dict[str, Any]:
    return {
        "name": "ftps",
        "kind": "ftps",
        "host": vsftpd.host,
        "port": vsftpd.port,
        "username": vsftpd.username,
        "password": vsftpd.password,
        "options": options or None,
    }


def test_a_private_certificate_authority_is_trusted_once_the_connection_carries_it(
    sqlite_app: RunningApp, vsftpd: VsftpdServer, folder: FtpFolder
) -> None:
    folder.put("userdata_a.csv", b"userId\nu1\n")
    api = Api(sqlite_app, new_workspace(sqlite_app.engine).token, Recorder())
    untrusted = ok(api.post("/api/connections", json=ftps_body(vsftpd)), 201)
    tested = ok(api.post(f"/api/connections/{untrusted['id']}/test"))
    assert tested["ok"] is False
    assert "certificate" in tested["message"]

    pem = vsftpd.ca_file.read_text()
    patched = ok(
        api.patch(f"/api/connections/{untrusted['id']}", json={"options": {"ca_pem": pem}})
    )
    assert patched["options"] == {"ca_pem": pem}
    tested = ok(api.post(f"/api/connections/{untrusted['id']}/test"))
    assert tested["ok"] is True, tested
    files = ok(api.get(f"/api/connections/{untrusted['id']}/files", params={"path": folder.path()}))
    assert [f["name"] for f in files["files"]] == ["userdata_a.csv"]


def test_a_ca_pem_that_is_no_certificate_is_refused(
    sqlite_app: RunningApp, vsftpd: VsftpdServer
) -> None:
    api = Api(sqlite_app, new_workspace(sqlite_app.engine).token, Recorder())
    for pem in (
        "hello",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nnon-ASCII é\n-----END CERTIFICATE-----\n",
    ):
        error = error_of(api.post("/api/connections", json=ftps_body(vsftpd, ca_pem=pem)), 422)
        assert "options.ca_pem" in error["message"]
    sftp = {**ftps_body(vsftpd, ca_pem=vsftpd.ca_file.read_text()), "kind": "sftp"}
    error = error_of(api.post("/api/connections", json=sftp), 422)
    assert "sftp connections have no option 'ca_pem'" in error["message"]


def test_the_newest_file_is_found_when_the_listing_gives_some_files_no_time(
    vsftpd: VsftpdServer,
    folder: FtpFolder,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    # vsftpd lists no exact times: usersync asks for them, up to a bound per listing (here 1,
    # so b and c come without one). Before, such a file was taken for the newest.
    monkeypatch.setattr("usersync.sources.ftp.MTIME_LOOKUPS_MAX", 1)
    folder.put("userdata_a.csv", b"userId\nfrom-a\n", mtime=1_735_689_600)  # 2025-01-01
    folder.put("userdata_b.csv", b"userId\nfrom-b\n", mtime=1_780_272_000)  # 2026-06-01
    folder.put("userdata_c.csv", b"userId\nfrom-c\n", mtime=1_735_689_600)
    with app_on_database("sqlite", tmp_path / "app", request, run_worker=True) as working:
        run, users = _run_newest(working, vsftpd, folder)

    assert (run["status"], run["path"]) == ("succeeded", folder.path("userdata_b.csv")), run
    assert users == ["from-b"]


def _run_newest(
    working: RunningApp, vsftpd: VsftpdServer, folder: FtpFolder
) -> tuple[dict[str, Any], list[str]]:
    api = Api(working, new_workspace(working.engine).token, Recorder())
    body = ftps_body(vsftpd, ca_pem=vsftpd.ca_file.read_text())
    connection = ok(api.post("/api/connections", json=body), 201)
    sync = ok(
        api.post(
            "/api/syncs",
            json={
                "connection_id": connection["id"],
                "folder": folder.path(),
                "file_choice": "newest",
                "mapping": {"user_id": "userId", "properties": {}},
                "enabled": False,
            },
        ),
        201,
    )

    started = ok(api.post(f"/api/syncs/{sync['id']}/run"), 202)
    run = wait_for_run(api, started["run_id"])
    return run, [u["user_id"] for u in ok(api.get("/api/users"))["items"]]
