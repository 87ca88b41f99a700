"""The REST API against the real OpenSSH server: the connection test and host-key
confirmation, browsing (the same documents as `usersync folders/files/preview --json`),
mapping checks against the file's header, and the whole flow of the wizard through a run
that the app's own worker executes, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apiclient import (
    PASSWORD,
    SECRETS,
    Api,
    Recorder,
    RunningApp,
    app_on_database,
    error_of,
    new_workspace,
    no_secrets_shown,
    ok,
    wait_for_run,
)
from tests.cli import key_args, usersync
from tests.servers import free_port
from tests.servers.sshd import SftpFolder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running(sqlite_app: RunningApp) -> RunningApp:
    return sqlite_app  # the wizard's whole flow below takes each database


@pytest.fixture
def recorder(sftp: SftpFolder, caplog: pytest.LogCaptureFixture) -> Iterator[Recorder]:
    real_key = Path(sftp.client_key_encrypted_path).read_text()
    secrets = (*SECRETS, sftp.password, real_key, sftp.client_key_passphrase)
    with no_secrets_shown(caplog, *secrets) as recorder:
        yield recorder


def sftp_body(sftp: SftpFolder) -> dict[str, Any]:
    return {
        "name": "test sshd",
        "host": sftp.host,
        "port": sftp.port,
        "username": sftp.username,
        "password": sftp.password,
    }


def sftp_connection(api: Api, sftp: SftpFolder, **overrides: Any) -> dict[str, Any]:
    body = {**sftp_body(sftp), **overrides}
    created: dict[str, Any] = ok(api.post("/api/connections", json=body), 201)
    return created


def confirmed_connection(api: Api, sftp: SftpFolder, **overrides: Any) -> dict[str, Any]:
    connection = sftp_connection(api, sftp, **overrides)
    url = f"/api/connections/{connection['id']}"
    fingerprint = ok(api.post(f"{url}/test"))["host_key_fingerprint"]
    assert fingerprint in sftp.host_key_fingerprints
    confirmed: dict[str, Any] = ok(api.patch(url, json={"host_key_fingerprint": fingerprint}))
    return confirmed


def cli_json(tmp_path: Path, sftp: SftpFolder, *args: str) -> Any:
    env = {"USERSYNC_DATA_DIR": str(tmp_path / "cli"), "HOME": str(tmp_path / "home")}
    result = usersync(env, *args, *key_args(sftp), "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()


def test_the_test_shows_the_host_key_and_nothing_is_read_until_it_is_confirmed(
    api: Api, sftp: SftpFolder
) -> None:
    connection = sftp_connection(api, sftp)
    url = f"/api/connections/{connection['id']}"

    first = ok(api.post(f"{url}/test"))
    blocked = error_of(api.get(f"{url}/folders", params={"path": sftp.path()}), 409)
    ok(api.patch(url, json={"host_key_fingerprint": first["host_key_fingerprint"]}))
    second = ok(api.post(f"{url}/test"))

    assert first["ok"] is False
    assert first["confirmed"] is False
    assert first["host_key_fingerprint"] in sftp.host_key_fingerprints
    assert first["host_key_fingerprint"] in first["message"]
    assert blocked["code"] == "host_key_not_confirmed"
    assert second == {
        "ok": True,
        "host_key_fingerprint": first["host_key_fingerprint"],
        "message": f"Connected to sftp://{sftp.username}@{sftp.host}:{sftp.port}.",
        "confirmed": True,
    }


def test_folders_files_and_preview_answer_as_the_command_line_does(
    api: Api, sftp: SftpFolder, tmp_path: Path
) -> None:
    sftp.mkdir("in/archive")
    sftp.mkdir("in/Kunden Daten")
    sftp.put("in/userdata_a.csv", b"userId,email,age\nu1,a@x.example,41\nu2,b@x.example,x\n")
    sftp.put("in/UserData_b.csv", b"userId\n")
    sftp.put("in/notes.txt", b"hello")
    connection = confirmed_connection(api, sftp)
    base = f"/api/connections/{connection['id']}"
    folder, file = sftp.path("in"), sftp.path("in/userdata_a.csv")

    folders = ok(api.get(f"{base}/folders", params={"path": folder}))
    files = ok(api.get(f"{base}/files", params={"path": folder}))
    preview = ok(api.get(f"{base}/preview", params={"path": file}))

    assert folders == cli_json(tmp_path, sftp, "folders", sftp.url("in"))
    assert files == cli_json(tmp_path, sftp, "files", sftp.url("in"))
    assert preview == cli_json(tmp_path, sftp, "preview", sftp.url("in/userdata_a.csv"))
    assert [f["name"] for f in folders["folders"]] == ["Kunden Daten", "archive"]
    assert [f["name"] for f in files["files"]] == ["userdata_a.csv"]
    assert {h["name"]: h["reason"] for h in files["hidden"]} == {
        "UserData_b.csv": "bad_prefix",
        "notes.txt": "not_csv",
    }
    assert preview["columns"] == ["userId", "email", "age"]
    assert preview["rows"] == [["u1", "a@x.example", "41"], ["u2", "b@x.example", "x"]]


def test_preview_takes_rows_encoding_and_delimiter(api: Api, sftp: SftpFolder) -> None:
    rows = "".join(f"u{i};Zoë {i}\n" for i in range(10))
    sftp.put("userdata_semi.csv", ("userId;name\n" + rows).encode("latin-1"))
    connection = confirmed_connection(api, sftp)

    preview = ok(
        api.get(
            f"/api/connections/{connection['id']}/preview",
            params={
                "path": sftp.path("userdata_semi.csv"),
                "rows": 2,
                "delimiter": ";",
                "encoding": "latin-1",
            },
        )
    )

    assert preview["columns"] == ["userId", "name"]
    assert preview["rows"] == [["u0", "Zoë 0"], ["u1", "Zoë 1"]]


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("missing/", 404, "remote_path_not_found"),
        ("userdata_missing.csv", 404, "remote_path_not_found"),
        ("notes.txt", 422, "not_eligible"),
    ],
)
def test_browsing_what_is_not_there_or_not_importable(
    api: Api, sftp: SftpFolder, name: str, status: int, code: str
) -> None:
    sftp.put("notes.txt", b"hello")
    connection = confirmed_connection(api, sftp)
    endpoint = "folders" if name.endswith("/") else "preview"

    error = error_of(
        api.get(
            f"/api/connections/{connection['id']}/{endpoint}",
            params={"path": sftp.path(name.rstrip("/"))},
        ),
        status,
    )

    assert error["code"] == code


def test_paths_are_normalized_as_the_command_line_does_and_must_be_absolute(
    api: Api, sftp: SftpFolder
) -> None:
    sftp.put("sub/userdata_a.csv", b"userId\nu1\n")
    connection = confirmed_connection(api, sftp)
    url = f"/api/connections/{connection['id']}"

    untidy = ok(api.get(f"{url}/files", params={"path": sftp.path("sub") + "//./x/../"}))
    preview = ok(api.get(f"{url}/preview", params={"path": sftp.path("sub//userdata_a.csv")}))
    relative = error_of(api.get(f"{url}/files", params={"path": "in"}), 422)

    assert untidy["path"] == sftp.path("sub")
    assert [f["path"] for f in untidy["files"]] == [sftp.path("sub/userdata_a.csv")]
    assert preview["path"] == sftp.path("sub/userdata_a.csv")
    assert relative["message"] == (
        "path: give an absolute path, starting with / (and without NUL characters)"
    )


def test_a_changed_host_key_is_a_bad_gateway_that_shows_the_offered_key(
    api: Api, sftp: SftpFolder
) -> None:
    wrong = "SHA256:" + "A" * 43
    connection = sftp_connection(api, sftp, host_key_fingerprint=wrong)
    base = f"/api/connections/{connection['id']}"

    error = error_of(api.get(f"{base}/folders", params={"path": "/"}), 502)
    outcome = ok(api.post(f"{base}/test"))

    assert error["code"] == "host_key_mismatch"
    assert error["fingerprint"] in sftp.host_key_fingerprints
    assert outcome["ok"] is False
    assert outcome["confirmed"] is False
    assert outcome["host_key_fingerprint"] in sftp.host_key_fingerprints


def test_a_server_named_by_host_name_offers_the_key_openssh_shows(
    api: Api, sftp: SftpFolder
) -> None:
    connection = sftp_connection(api, sftp, host="localhost")
    url = f"/api/connections/{connection['id']}"

    first = ok(api.post(f"{url}/test"))
    ok(api.patch(url, json={"host_key_fingerprint": first["host_key_fingerprint"]}))
    second = ok(api.post(f"{url}/test"))

    assert first["host_key_fingerprint"] == sftp.host_key_fingerprints[0]  # the ed25519 key
    assert second["ok"] is True, second["message"]


def test_a_server_that_is_not_there_offered_no_host_key(api: Api, sftp: SftpFolder) -> None:
    pinned = sftp.host_key_fingerprints[0]
    connection = sftp_connection(api, sftp, port=free_port(), host_key_fingerprint=pinned)

    outcome = ok(api.post(f"/api/connections/{connection['id']}/test"))

    assert outcome["ok"] is False
    assert "refused the connection" in outcome["message"]
    assert outcome["host_key_fingerprint"] is None
    assert outcome["confirmed"] is False


def test_a_wrong_password_fails_the_test_without_showing_it(api: Api, sftp: SftpFolder) -> None:
    connection = confirmed_connection(api, sftp, password=PASSWORD)

    outcome = ok(api.post(f"/api/connections/{connection['id']}/test"))
    error = error_of(api.get(f"/api/connections/{connection['id']}/folders"), 502)

    assert outcome["ok"] is False
    assert "refused the login" in outcome["message"]
    assert error["code"] == "authentication_failed"


def test_a_stored_encrypted_private_key_logs_in(api: Api, sftp: SftpFolder) -> None:
    key = Path(sftp.client_key_encrypted_path).read_text()
    connection = confirmed_connection(
        api,
        sftp,
        password=None,
        private_key=key,
        key_passphrase=sftp.client_key_passphrase,
    )

    outcome = ok(api.post(f"/api/connections/{connection['id']}/test"))

    assert connection["has_private_key"] is True
    assert connection["has_password"] is False
    assert outcome["ok"] is True, outcome["message"]


def test_a_key_pair_usersync_makes_logs_in_once_its_public_key_is_authorized(
    api: Api, sftp: SftpFolder
) -> None:
    connection = confirmed_connection(api, sftp, password=None, generate_key=True)
    url = f"/api/connections/{connection['id']}"
    public_key = connection["public_key"]

    assert connection["has_private_key"] is True
    assert re.fullmatch(r"ssh-ed25519 [A-Za-z0-9+/]+=* usersync test sshd", public_key)
    assert "PRIVATE" not in json.dumps(connection)
    refused = ok(api.post(f"{url}/test"))  # not authorized yet
    assert refused["ok"] is False
    assert refused["message"].endswith(
        ". The server lets the key in once the connection's public key (public_key) is in "
        f"~/.ssh/authorized_keys of {sftp.username!r} on the server"
    )
    with sftp.server.authorizing(public_key):
        outcome = ok(api.post(f"{url}/test"))
        assert outcome["ok"] is True, outcome["message"]
    assert ok(api.get(url))["public_key"] == public_key

    renewed = ok(api.patch(url, json={"generate_key": True}))
    assert renewed["public_key"] != public_key
    assert renewed["public_key"].endswith(" usersync test sshd")
    unreadable = {**sftp_body(sftp), "name": "bad key", "private_key": "-----BEGIN x\n"}
    message = error_of(api.post("/api/connections", json=unreadable), 422)["message"]
    assert message.startswith("private_key: this is not a private key usersync can read (")
    both = {**sftp_body(sftp), "private_key": "x", "generate_key": True}
    refused = api.post("/api/connections", json=both)
    assert error_of(refused, 422)["message"] == "give either private_key or generate_key, not both"
    ftp = {**sftp_body(sftp), "kind": "ftp", "generate_key": True}
    message = error_of(api.post("/api/connections", json=ftp), 422)["message"]
    assert message == "generate_key: ftp connections log in with a password, not a key"


def test_a_key_pair_for_a_connection_named_in_any_script_shows_that_name(
    api: Api, sftp: SftpFolder
) -> None:
    connection = sftp_connection(api, sftp, name="café 日本", password=None, generate_key=True)

    assert connection["public_key"].endswith(" usersync café 日本")


def test_a_password_connection_has_no_public_key_and_a_stored_key_shows_its_own(
    api: Api, sftp: SftpFolder
) -> None:
    with_password = sftp_connection(api, sftp)
    key = Path(sftp.client_key_encrypted_path).read_text()
    with_key = sftp_connection(
        api,
        sftp,
        name="with a key",
        password=None,
        private_key=key,
        key_passphrase=sftp.client_key_passphrase,
    )

    assert with_password["public_key"] is None
    [line] = Path(f"{sftp.client_key_encrypted_path}.pub").read_text().splitlines()
    assert with_key["public_key"].split()[:2] == line.split()[:2]


def test_a_mapping_is_checked_against_the_files_header_when_it_can_be_read(
    api: Api, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", b"userId,email\nu1,a@x.example\n")
    connection = confirmed_connection(api, sftp)
    unconfirmed = sftp_connection(api, sftp, name="unconfirmed")

    def sync(connection_id: int, file: str, **columns: str) -> dict[str, Any]:
        return {
            "connection_id": connection_id,
            "folder": sftp.path(),
            "file": file,
            "mapping": {"user_id": "userId", "properties": columns},
        }

    unknown = error_of(
        api.post(
            "/api/syncs",
            json=sync(connection["id"], "userdata_a.csv", email="email", age="Age", vip="VIP"),
        ),
        422,
    )
    fitting = ok(
        api.post("/api/syncs", json=sync(connection["id"], "userdata_a.csv", email="email")), 201
    )
    not_there_yet = api.post("/api/syncs", json=sync(connection["id"], "userdata_later.csv", a="b"))
    not_confirmed = api.post("/api/syncs", json=sync(unconfirmed["id"], "userdata_a.csv", a="b"))
    patched = error_of(
        api.patch(
            f"/api/syncs/{fitting['id']}",
            json={"mapping": {"user_id": "user_id", "properties": {"email": "email"}}},
        ),
        422,
    )

    assert "has no column 'Age', 'VIP'" in unknown["message"]
    assert "its columns are: userId, email" in unknown["message"]
    assert not_there_yet.status_code == 201, not_there_yet.text
    assert not_confirmed.status_code == 201, not_confirmed.text
    assert "has no column 'user_id'" in patched["message"]


@pytest.fixture(params=["sqlite", "postgresql"])
def working(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningApp]:
    """An app of the test's own whose worker executes the runs."""
    with app_on_database(request.param, tmp_path / "app", request, run_worker=True) as app:
        yield app


def test_the_wizard_end_to_end_from_connection_to_user(
    working: RunningApp, sftp: SftpFolder, caplog: pytest.LogCaptureFixture
) -> None:
    real_key = Path(sftp.client_key_path).read_text()
    with no_secrets_shown(caplog, *SECRETS, real_key) as recorder:
        wizard_flow(Api(working, new_workspace(working.engine).token, recorder), sftp, real_key)


def wizard_flow(api: Api, sftp: SftpFolder, real_key: str) -> None:
    sftp.mkdir("exports")
    sftp.put(
        "exports/userdata_2026.csv",
        b"userId,email,age,vip\n"
        b"u1,ann@example.com,41,yes\n"
        b"u2,bob@example.com,37,no\n"
        b"u3,cy@example.com,=1+1,no\n",
    )

    # 1. the connection, with a key that logs in and a password that is never needed
    connection = ok(
        api.post(
            "/api/connections",
            json={
                "name": "Acme exports",
                "host": sftp.host,
                "port": sftp.port,
                "username": sftp.username,
                "private_key": real_key,
                "password": PASSWORD,
            },
        ),
        201,
    )
    base = f"/api/connections/{connection['id']}"
    # 2. test it: the server's host key; 3. confirm it
    offered = ok(api.post(f"{base}/test"))["host_key_fingerprint"]
    ok(api.patch(base, json={"host_key_fingerprint": offered}))
    assert ok(api.post(f"{base}/test"))["ok"] is True
    # 4. browse to the file and look at it
    folders = ok(api.get(f"{base}/folders", params={"path": sftp.path()}))
    exports = next(f["path"] for f in folders["folders"] if f["name"] == "exports")
    files = ok(api.get(f"{base}/files", params={"path": exports}))
    chosen = files["files"][0]
    preview = ok(api.get(f"{base}/preview", params={"path": chosen["path"]}))
    assert preview["columns"] == ["userId", "email", "age", "vip"]
    # 5. the sync, 6. run it now
    sync = ok(
        api.post(
            "/api/syncs",
            json={
                "connection_id": connection["id"],
                "folder": exports,
                "file": chosen["name"],
                "mapping": {
                    "user_id": "userId",
                    "properties": {"email": "email", "age": "age", "vip": "vip"},
                    "types": {"age": "integer", "vip": "boolean"},
                },
            },
        ),
        201,
    )
    # a dry run first: what the import would do, and nothing applied
    dry_id = ok(api.post(f"/api/syncs/{sync['id']}/run", params={"dry_run": "true"}), 202)
    checked = wait_for_run(api, dry_id["run_id"])
    assert (checked["status"], checked["dry_run"]) == ("partial", True), checked
    assert (checked["users_created"], checked["rows_rejected"]) == (2, 1)
    assert checked["errors"][0]["line"] == 4
    assert ok(api.get("/api/users"))["items"] == []
    run_id = ok(api.post(f"/api/syncs/{sync['id']}/run"), 202)["run_id"]
    # 7. follow the run to its end
    run = wait_for_run(api, run_id)
    assert run["status"] == "partial", run
    assert (run["rows_read"], run["users_created"], run["rows_rejected"]) == (3, 2, 1)
    assert run["bytes_read"] == run["file_size"] == chosen["size"]
    assert run["progress"] == 1.0
    assert run["errors"][0]["line"] == 4
    assert run["errors"][0]["column"] == "age"
    report = list(csv.reader(io.StringIO(api.get(run["errors_url"]).text)))
    assert report[1][:3] == ["4", "age", "'=1+1"]
    assert [r["id"] for r in ok(api.get("/api/runs", params={"sync_id": sync["id"]}))["items"]] == [
        run_id,
        dry_id["run_id"],
    ]
    # 8. the users, with their types
    user = ok(api.get("/api/users/u1"))
    assert user["properties"] == {"email": "ann@example.com", "age": 41, "vip": True}
    listed = ok(api.get("/api/users"))
    assert [u["user_id"] for u in listed["items"]] == ["u1", "u2"]
    catalog = {p["name"]: p["type"] for p in ok(api.get("/api/properties"))["items"]}
    assert catalog == {"age": "integer", "email": "string", "vip": "boolean"}
