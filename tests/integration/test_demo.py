"""`usersync demo` and the demo SFTP server that `usersync serve` runs: the connection it
adds, browsing and importing the sample files through the real service layer and REST API,
and what the server refuses (wrong logins, writes, other addresses, a taken port)."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import socket
import stat
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tests.apiclient import SECRET_KEY, Api, Recorder, RunningApp, api_settings, ok, running_app
from tests.cli import Result, usersync
from tests.servers import LOOPBACK, free_port
from tests.syncs import FAST, drain
from usersync import demo
from usersync.config import Settings
from usersync.connectivity import open_connection
from usersync.demo import DemoServer
from usersync.errors import AuthenticationFailed
from usersync.secretbox import SecretBox
from usersync.sources.connect import Credentials, open_source
from usersync.sources.hostkeys import HostKeyPolicy
from usersync.sources.urls import RemoteLocation
from usersync.store import connections, tokens, workspaces
from usersync.store.connections import Connection
from usersync.worker import Worker

pytestmark = pytest.mark.integration

LISTEN_TIMEOUT = 10.0  # seconds for the demo server to come up (it polls every second)


class DemoEnv:
    """A data folder and SQLite database of the test's own, and a free demo port."""

    def __init__(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "data"
        self.db_url = f"sqlite:///{tmp_path / 'usersync.db'}"
        self.port = free_port()
        self.env = {
            "USERSYNC_DATA_DIR": str(self.data_dir),
            "USERSYNC_DB": self.db_url,
            "USERSYNC_SECRET_KEY": SECRET_KEY,
            "USERSYNC_DEMO_PORT": str(self.port),
        }
        self.settings: Settings = api_settings(
            self.data_dir, self.db_url, USERSYNC_DEMO_PORT=str(self.port)
        )

    def run_demo(self, *args: str) -> Result:
        result = usersync(self.env, "demo", *args)
        assert result.exit_code == 0, result.stdout + result.stderr
        return result

    def demo_connections(self, running: RunningApp) -> list[Connection]:
        ws = workspaces.get_id(running.engine, "default")
        assert ws is not None
        found = connections.list_all(running.engine, running.services.box, ws)
        return [c for c in found if c.name == demo.CONNECTION_NAME]

    def password(self) -> str:
        return (self.data_dir / "demo" / "password").read_text().strip()


@pytest.fixture
def env(tmp_path: Path) -> DemoEnv:
    return DemoEnv(tmp_path)


@contextmanager
def demo_running(env: DemoEnv) -> Iterator[RunningApp]:
    """`usersync demo` done, and the app up with its demo server listening."""
    env.run_demo()
    with running_app(env.settings) as running:
        assert server_of(running).wait(LISTEN_TIMEOUT), "the demo server did not start"
        yield running


def server_of(running: RunningApp) -> DemoServer:
    server = running.app.state.demo_server
    assert isinstance(server, DemoServer)
    return server


def api_of(running: RunningApp) -> Api:
    ws = workspaces.get_or_create(running.engine, "default")
    return Api(running, tokens.create_token(running.engine, ws).token, Recorder())


def ssh_keygen_fingerprint(key_path: Path) -> str:
    """The key's fingerprint as OpenSSH itself computes it."""
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(key_path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()[1]


def demo_location(env: DemoEnv, username: str = demo.USERNAME) -> RemoteLocation:
    return RemoteLocation("sftp", LOOPBACK, env.port, username, "/")


def sftp_session(env: DemoEnv, action: Any) -> Any:
    """Run `await action(sftp)` in a session of asyncssh's own SFTP client."""

    async def session() -> Any:
        async with (
            asyncssh.connect(
                LOOPBACK,
                env.port,
                username=demo.USERNAME,
                password=env.password(),
                known_hosts=None,
            ) as conn,
            conn.start_sftp_client() as sftp,
        ):
            return await action(sftp)

    return asyncio.run(session())


# --- usersync demo -----------------------------------------------------------------------


def test_demo_adds_one_connection_with_its_host_key_confirmed(env: DemoEnv) -> None:
    first = env.run_demo()
    second = env.run_demo()

    assert 'Added the connection "Demo SFTP server"' in first.stdout
    assert 'Updated the connection "Demo SFTP server"' in second.stdout
    assert "Integrations → Demo SFTP server → Sync on" in first.stdout
    password = env.password()
    assert len(password) >= 24
    for output in (first, second):
        assert password not in output.stdout + output.stderr
    key_path = env.data_dir / "demo" / "ssh_host_ed25519_key"
    with running_app(env.settings) as running:
        [connection] = env.demo_connections(running)
        assert (
            len(connections.list_all(running.engine, running.services.box, connection.workspace_id))
            == 1
        )
        assert (connection.kind, connection.host, connection.port, connection.username) == (
            "sftp",
            "127.0.0.1",
            env.port,
            "demo",
        )
        assert connection.host_key_fingerprint == ssh_keygen_fingerprint(key_path)
        assert connection.has_password
        assert not connection.has_private_key
        credentials = connections.credentials(
            running.engine, running.services.box, connection.workspace_id, connection.id
        )
        assert credentials.password == password
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((env.data_dir / "demo" / "password").stat().st_mode) == 0o600
    assert stat.S_IMODE((env.data_dir / "demo").stat().st_mode) == 0o700


def test_demo_puts_back_moved_samples_and_keeps_its_key_and_password(env: DemoEnv) -> None:
    env.run_demo()
    files = env.data_dir / "demo" / "files"
    key = (env.data_dir / "demo" / "ssh_host_ed25519_key").read_bytes()
    password = env.password()
    (files / "userdata_customers.csv").unlink()
    (files / "readme.txt").write_text("changed by the user")

    again = env.run_demo()

    assert "put back: userdata_customers.csv" in again.stdout
    assert (files / "userdata_customers.csv").read_bytes() == demo.sample_files()[
        "userdata_customers.csv"
    ]
    assert (files / "readme.txt").read_text() == "changed by the user"
    assert (env.data_dir / "demo" / "ssh_host_ed25519_key").read_bytes() == key
    assert env.password() == password


def test_demo_in_a_named_workspace_needs_the_workspace(env: DemoEnv) -> None:
    refused = usersync(env.env, "demo", "--workspace", "acme")
    assert refused.exit_code == 2
    assert "usersync workspace create acme" in refused.stderr
    assert usersync(env.env, "workspace", "create", "acme").exit_code == 0

    added = env.run_demo("--workspace", "acme")

    assert "in workspace 'acme'" in added.stdout


def test_serve_offers_the_demo_on_a_first_start_and_names_it_once_set_up(env: DemoEnv) -> None:
    with running_app(env.settings) as running:
        offer = demo.startup_note(env.settings, running.engine)
        assert offer is not None
        assert "run `usersync demo` (or `make demo`)" in offer
        env.run_demo()
        note = demo.startup_note(env.settings, running.engine)
        assert note == (
            f'demo SFTP server: sftp://demo@127.0.0.1:{env.port}/ (the "Demo SFTP server" '
            "connection)"
        )


# --- the server inside the app -----------------------------------------------------------


def test_a_running_app_starts_the_demo_server_once_demo_has_set_it_up(env: DemoEnv) -> None:
    with running_app(env.settings) as running:
        server = server_of(running)
        assert not server.wait(0.2)
        assert server.addresses == []

        env.run_demo()

        assert server.wait(LISTEN_TIMEOUT)
        assert server.addresses == [("127.0.0.1", env.port)]
    with socket.socket() as probe:  # stopped with the app
        assert probe.connect_ex((LOOPBACK, env.port)) != 0


def test_the_demo_connection_verifies_and_lists_the_sample_files(env: DemoEnv) -> None:
    with demo_running(env) as running:
        api = api_of(running)
        [connection] = env.demo_connections(running)

        tested = ok(api.post(f"/api/connections/{connection.id}/test"))
        assert tested["ok"] is True, tested
        assert tested["host_key_fingerprint"] == connection.host_key_fingerprint

        listing = ok(api.get(f"/api/connections/{connection.id}/files?path=/"))
        assert [f["name"] for f in listing["files"]] == [
            "userdata_customers.csv",
            "userdata_with_errors.csv",
        ]
        assert [(h["name"], h["reason"]) for h in listing["hidden"]] == [("readme.txt", "not_csv")]
        folders = ok(api.get(f"/api/connections/{connection.id}/folders?path=/"))
        assert [f["path"] for f in folders["folders"]] == ["/archive"]
        archive = ok(api.get(f"/api/connections/{connection.id}/files?path=/archive/2026"))
        [older] = archive["files"]
        assert older["name"] == "userdata_2026_01.csv"
        assert older["modified"].startswith("2026-02-01T06:00:00")
        preview = ok(
            api.get(f"/api/connections/{connection.id}/preview?path=/userdata_customers.csv")
        )
        assert preview["columns"] == list(demo.COLUMNS)
        assert [row[0] for row in preview["rows"]] == [f"u-{n}" for n in range(1001, 1006)]


def run_sync(running: RunningApp, api: Api, connection_id: int, file: str) -> dict[str, Any]:
    """Create a sync of `file` with the demo mapping, import it now, return the run."""
    body = {"connection_id": connection_id, "folder": "/", "file": file, "mapping": demo.MAPPING}
    sync = ok(api.post("/api/syncs", json=body), 201)
    run_id = ok(api.post(f"/api/syncs/{sync['id']}/run"), 202)["run_id"]
    services = running.services
    worker = Worker(services.settings, services.engine, services.box, options=FAST)
    assert drain(worker) == 1
    run: dict[str, Any] = ok(api.get(f"/api/runs/{run_id}"))
    return run


def test_the_sample_files_import_through_a_sync(env: DemoEnv) -> None:
    with demo_running(env) as running:
        api = api_of(running)
        [connection] = env.demo_connections(running)

        customers = run_sync(running, api, connection.id, "userdata_customers.csv")
        assert (customers["status"], customers["rows_read"], customers["users_created"]) == (
            "succeeded",
            50,
            50,
        )
        assert customers["rows_rejected"] == 0
        user = ok(api.get("/api/users/u-1001"))
        assert set(user["properties"]) == set(demo.COLUMNS) - {"userId"}
        assert isinstance(user["properties"]["age"], int)
        assert isinstance(user["properties"]["newsletter"], bool)

        with_errors = run_sync(running, api, connection.id, "userdata_with_errors.csv")
        assert (with_errors["status"], with_errors["rows_read"]) == ("partial", 12)
        assert (with_errors["users_created"], with_errors["rows_rejected"]) == (9, 3)
        report = api.get(f"/api/runs/{with_errors['id']}/errors.csv")
        rows = list(csv.DictReader(io.StringIO(report.text)))
        assert [(r["line"], r["column"], r["value"]) for r in rows] == [
            ("5", "age", "abc"),
            ("8", "signup_date", "2026-02-30"),
            ("11", "newsletter", "maybe"),
        ]
        assert api.get("/api/users/u-2004").status_code == 404
        assert ok(api.get("/api/users/u-2005"))["properties"]["age"] == 42


# --- what the server refuses -------------------------------------------------------------


def test_the_demo_server_refuses_a_wrong_password_and_other_users(env: DemoEnv) -> None:
    with demo_running(env) as running:
        [connection] = env.demo_connections(running)
        policy = HostKeyPolicy(fingerprint=connection.host_key_fingerprint)
        right = Credentials(password=env.password())
        with closing(open_source(demo_location(env), right, policy, env.settings)) as source:
            assert source.list_dir("/")
        for username, password in (
            ("demo", "not-the-password"),
            ("demo", env.password() + "x"),
            ("root", env.password()),
        ):
            login = Credentials(password=password)
            with pytest.raises(AuthenticationFailed):
                open_source(demo_location(env, username), login, policy, env.settings)


def test_the_demo_server_listens_on_127_0_0_1_only(env: DemoEnv) -> None:
    with demo_running(env) as running:
        assert server_of(running).addresses == [("127.0.0.1", env.port)]
        with socket.create_connection((LOOPBACK, env.port), timeout=5) as reached:
            assert reached.recv(4).startswith(b"SSH-")
        with socket.socket() as other:
            other.settimeout(5)
            with pytest.raises(ConnectionRefusedError):
                other.connect(("127.0.0.2", env.port))  # loopback too, but another address


def test_the_demo_server_serves_its_folder_only_and_writes_nothing(env: DemoEnv) -> None:
    files = env.data_dir / "demo" / "files"
    with demo_running(env):

        async def escape(sftp: asyncssh.SFTPClient) -> list[str]:
            return sorted(await sftp.listdir("/../.."))

        assert sftp_session(env, escape) == sorted(
            [
                ".",
                "..",
                "archive",
                "readme.txt",
                "userdata_customers.csv",
                "userdata_with_errors.csv",
            ]
        )

        async def write(sftp: asyncssh.SFTPClient) -> None:
            async with sftp.open("/userdata_new.csv", "wb") as handle:
                await handle.write(b"userId\nu-1\n")

        async def overwrite(sftp: asyncssh.SFTPClient) -> None:
            async with sftp.open("/userdata_customers.csv", "r+b") as handle:
                await handle.write(b"x")

        async def make_folder(sftp: asyncssh.SFTPClient) -> None:
            await sftp.mkdir("/new")

        for refused in (write, overwrite, make_folder):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                sftp_session(env, refused)
        assert not (files / "userdata_new.csv").exists()
        assert not (files / "new").exists()
        assert (files / "userdata_customers.csv").read_bytes() == demo.sample_files()[
            "userdata_customers.csv"
        ]


def test_after_import_move_and_delete_work_on_the_demo_server(env: DemoEnv) -> None:
    files = env.data_dir / "demo" / "files"
    with demo_running(env) as running:
        [connection] = env.demo_connections(running)
        box: SecretBox = running.services.box
        source = open_connection(
            env.settings, running.engine, box, connection.workspace_id, connection.id
        )
        with closing(source):
            source.rename("/userdata_customers.csv", "/archive/userdata_customers.csv")
            source.remove("/userdata_with_errors.csv")
    assert (files / "archive" / "userdata_customers.csv").exists()
    assert not (files / "userdata_customers.csv").exists()
    assert not (files / "userdata_with_errors.csv").exists()

    assert "put back: userdata_customers.csv, userdata_with_errors.csv" in env.run_demo().stdout


def test_a_taken_port_leaves_one_warning_and_the_app_running(
    env: DemoEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env.run_demo()
    caplog.set_level(logging.WARNING, logger="usersync.demo")
    with socket.socket() as squatter:
        squatter.bind((LOOPBACK, env.port))
        squatter.listen()
        with running_app(env.settings) as running:
            assert not server_of(running).wait(LISTEN_TIMEOUT)
            assert ok(running.client.get("/health"))["status"] == "ok"
    warnings = [r for r in caplog.records if r.name == "usersync.demo"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert f"127.0.0.1:{env.port} (the port is in use)" in message
    assert "USERSYNC_DEMO_PORT" in message
    assert "\n" not in message
