"""Self-tests of the real-server fixtures: each server works as the other tests assume."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncssh
import psycopg
import pytest
import sqlalchemy

import tests.servers.sshd as sshd_module
from tests.servers import ServerError, ensure_state_root, free_port
from tests.servers.blackhole import BlackholeServer, closed_port
from tests.servers.postgres import PostgresServer
from tests.servers.sshd import SftpFolder, SshServer

pytestmark = pytest.mark.integration


# --- helpers -------------------------------------------------------------------------------


def _openssh_sftp(
    server: SftpFolder | SshServer,
    key: Path,
    commands: str,
    *,
    env: dict[str, str] | None = None,
    batch_mode: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run the OpenSSH `sftp` client in batch mode with strict host key checking."""
    cmd = ["sftp", "-F", "/dev/null"]
    if not batch_mode:
        cmd += ["-o", "BatchMode=no"]  # before -b: ssh keeps the first value of an option
    cmd += ["-b", "-", "-P", str(server.port)]
    cmd += ["-o", f"UserKnownHostsFile={server.known_hosts_path}"]
    cmd += ["-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes"]
    cmd += ["-o", "IdentitiesOnly=yes", "-o", "PasswordAuthentication=no"]
    cmd += ["-o", "ConnectTimeout=5", "-i", str(key), f"{server.username}@{server.host}"]
    return subprocess.run(
        cmd,
        input=commands,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
        stdin=None,
    )


def _connect(
    server: SftpFolder | SshServer,
    *,
    key: Path | None = None,
    password: str | None = None,
    **options: Any,
) -> Any:
    """asyncssh.connect with strict host key checking against the server's known_hosts.

    Logs in with `key` if given, else with `password` (default: the right one).
    """
    return asyncssh.connect(
        server.host,
        port=server.port,
        username=server.username,
        known_hosts=str(server.known_hosts_path),
        client_keys=[str(key)] if key is not None else None,
        password=password if key is not None or password else server.password,
        config=None,
        connect_timeout=10,
        login_timeout=10,
        **options,
    )


def _alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] not in "ZX"


# --- sshd ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key_attr", ["client_key_path", "client_key_rsa_path", "client_key_ecdsa_path"]
)
def test_openssh_client_lists_put_file_with_key(sftp: SftpFolder, key_attr: str) -> None:
    sftp.put("data/userdata_1.csv", b"id,name\n1,a\n")

    result = _openssh_sftp(sftp, getattr(sftp, key_attr), f"ls -l {sftp.path('data')}\nls /\n")

    assert result.returncode == 0, result.stderr + sftp.server.log_text()
    assert "userdata_1.csv" in result.stdout
    assert "upload" in result.stdout


def test_openssh_client_with_encrypted_key(sftp: SftpFolder, tmp_path: Path) -> None:
    sftp.put("a.csv", b"x")
    askpass = tmp_path / "askpass.sh"
    askpass.write_text('#!/bin/sh\nprintf "%s\\n" "$TEST_PASSPHRASE"\n')
    askpass.chmod(0o700)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SSH_ASKPASS": str(askpass),
        "SSH_ASKPASS_REQUIRE": "force",
        "TEST_PASSPHRASE": sftp.client_key_passphrase,
    }

    result = _openssh_sftp(
        sftp, sftp.client_key_encrypted_path, f"ls {sftp.base}\n", env=env, batch_mode=False
    )

    assert result.returncode == 0, result.stderr + sftp.server.log_text()
    assert "a.csv" in result.stdout


def test_asyncssh_password_login_lists_folder(sftp: SftpFolder) -> None:
    sftp.put("one.csv", b"1")
    sftp.mkdir("sub")

    async def scenario() -> list[str]:
        async with _connect(sftp) as conn, conn.start_sftp_client() as client:
            return sorted(await client.listdir(sftp.base))

    assert asyncio.run(scenario()) == [".", "..", "one.csv", "sub"]


def test_asyncssh_key_login_and_wrong_password(sftp: SftpFolder) -> None:
    async def scenario() -> None:
        async with (
            _connect(sftp, key=sftp.client_key_path) as conn,
            conn.start_sftp_client() as client,
        ):
            assert sorted(await client.listdir(sftp.base)) == [".", ".."]
        with pytest.raises(asyncssh.PermissionDenied):
            await _connect(sftp, password="wrong")

    asyncio.run(scenario())


def test_unknown_host_key_is_rejected(sshd: SshServer, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(f"[{sshd.host}]:{sshd.port} ssh-ed25519 {'A' * 68}\n")

    async def scenario() -> None:
        with pytest.raises(asyncssh.HostKeyNotVerifiable):
            await asyncssh.connect(
                sshd.host,
                port=sshd.port,
                username=sshd.username,
                password=sshd.password,
                client_keys=None,
                known_hosts=str(other),
                config=None,
                connect_timeout=10,
            )

    asyncio.run(scenario())


def test_host_key_fingerprints_match_asyncssh_and_ssh_keygen(sshd: SshServer) -> None:
    keygen = subprocess.run(
        ["ssh-keygen", "-lf", str(sshd.known_hosts_path)],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert [line.split()[1] for line in keygen.stdout.splitlines()] == sshd.host_key_fingerprints
    assert all(
        fp.startswith("SHA256:") and not fp.endswith("=") for fp in sshd.host_key_fingerprints
    )

    async def fingerprint(algorithm: str) -> str:
        async with _connect(sshd, server_host_key_algs=[algorithm]) as conn:
            return str(conn.get_server_host_key().get_fingerprint())

    seen = [asyncio.run(fingerprint(alg)) for alg in ("ssh-ed25519", "rsa-sha2-256")]
    assert seen == sshd.host_key_fingerprints


def test_put_mkdir_mode_mtime_and_upload(sftp: SftpFolder) -> None:
    sftp.put("in/userdata_2.csv", b"abc", mtime=1_700_000_000)
    sftp.put("in/secret.csv", b"no", mode=0o600)
    sftp.mkdir("done", writable=True)
    sftp.put("done/old.csv", b"old")
    sftp.symlink("in/link.csv", "userdata_2.csv")
    assert sftp.local("in/userdata_2.csv").read_bytes() == b"abc"
    assert sftp.url("a b/é.csv") == (
        f"sftp://usersync-sftp@127.0.0.1:{sftp.port}{sftp.base}/a%20b/%C3%A9.csv"
    )
    with pytest.raises(ValueError, match="leaves the test folder"):
        sftp.path("../escape")
    upload_name = f"/upload/{sftp.base.strip('/')}.csv"

    async def scenario() -> None:
        async with _connect(sftp) as conn, conn.start_sftp_client() as client:
            attrs = await client.stat(sftp.path("in/userdata_2.csv"))
            assert (attrs.size, attrs.mtime) == (3, 1_700_000_000)
            assert stat.S_IMODE(attrs.permissions) == 0o644
            assert (await client.stat(sftp.path("in/link.csv"))).size == 3
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await client.open(sftp.path("in/secret.csv"), "rb")
            # The test folder itself is read-only for the user; `done` and /upload are not.
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await client.open(sftp.path("new.csv"), "wb")
            await client.rename(sftp.path("done/old.csv"), sftp.path("done/older.csv"))
            await client.remove(sftp.path("done/older.csv"))
            async with client.open(upload_name, "wb") as out:
                await out.write(b"uploaded")
            await client.remove(upload_name)

    asyncio.run(scenario())


def test_sftp_folder_is_fresh_and_empty(sftp: SftpFolder, sftp_tree: str) -> None:
    assert sftp_tree == sftp.base
    assert sftp.base.startswith("/t-test_sftp_folder_is_fresh_and_empty-")
    assert list(sftp.local().iterdir()) == []
    assert sftp.local().stat().st_uid == 0


def test_kill_cuts_open_session_and_start_brings_it_back(fresh_sshd: SshServer) -> None:
    fresh_sshd.put("/big.bin", os.urandom(4 << 20))
    port = fresh_sshd.port

    async def read_after_kill() -> list[int]:
        conn = await _connect(fresh_sshd, key=fresh_sshd.client_key_path)
        try:
            client = await conn.start_sftp_client()
            remote = await client.open("/big.bin", "rb")
            assert len(await remote.read(65536)) == 65536
            pids = fresh_sshd.processes()
            fresh_sshd.kill()
            with pytest.raises((asyncssh.Error, OSError)):
                await asyncio.wait_for(remote.read(1 << 20), timeout=10)
            return pids
        finally:
            conn.abort()

    pids = asyncio.run(read_after_kill())
    # listener, per-connection monitor, user process, sftp session process
    assert len(pids) >= 3, pids
    assert [pid for pid in pids if _alive(pid)] == []
    assert fresh_sshd.processes() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((fresh_sshd.host, port), timeout=2).close()

    fresh_sshd.start()  # same port, same keys: known_hosts still valid

    async def listdir() -> list[str]:
        async with _connect(fresh_sshd) as conn, conn.start_sftp_client() as client:
            return sorted(await client.listdir("/"))

    assert fresh_sshd.port == port
    assert "big.bin" in asyncio.run(listdir())


def test_stop_ends_sessions_and_removes_directory() -> None:
    server = SshServer().start()
    directory = server.dir
    try:

        async def open_then_stop() -> list[int]:
            async with _connect(server) as conn, conn.start_sftp_client() as client:
                await client.listdir("/")
                pids = server.processes()
                server.stop()
                with pytest.raises((asyncssh.Error, OSError)):
                    await asyncio.wait_for(client.listdir("/"), timeout=10)
                return pids

        pids = asyncio.run(open_then_stop())
    finally:
        server.stop()
    assert len(pids) >= 3, pids
    assert [pid for pid in pids if _alive(pid)] == []
    assert not directory.exists()


def test_start_failure_raises_with_log() -> None:
    class BrokenSshServer(SshServer):
        def _config_text(self, port: int) -> str:
            return super()._config_text(port) + "NoSuchOption yes\n"

    with pytest.raises(ServerError, match="NoSuchOption") as excinfo:
        BrokenSshServer().start()
    assert "sshd exited" in str(excinfo.value)


def test_sshd_retries_when_its_port_is_taken(
    blackhole: BlackholeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = iter([blackhole.port])  # first pick: a port that is already taken
    monkeypatch.setattr(sshd_module, "free_port", lambda: next(ports, None) or free_port())
    with SshServer() as server:
        assert server.port != blackhole.port
        assert "Address already in use" in server.log_text()
        assert _openssh_sftp(server, server.client_key_path, "ls /\n").returncode == 0


def test_stale_server_of_a_killed_test_process_is_swept() -> None:
    script = (
        "import sys, time\n"
        "from tests.servers.sshd import SshServer\n"
        "server = SshServer().start()\n"
        "print(server.dir, server.processes()[0], flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
    finally:
        child.kill()  # like a pytest killed with SIGKILL: no cleanup ran
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert len(line) == 2, line
    directory, sshd_pid = Path(line[0]), int(line[1])
    assert directory.exists()
    assert _alive(sshd_pid)

    ensure_state_root()  # every server start does this

    assert not directory.exists()
    assert not _alive(sshd_pid)


def test_sshd_requires_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ServerError, match="must run as root"):
        SshServer().start()


# --- PostgreSQL ----------------------------------------------------------------------------


def test_postgres_accepts_queries(postgres: PostgresServer) -> None:
    assert postgres.url == f"postgresql+psycopg://usersync@127.0.0.1:{postgres.port}/usersync"
    with psycopg.connect(postgres.conninfo(), connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), rolsuper FROM pg_roles "
            "WHERE rolname = current_user"
        ).fetchone()
    assert row == ("usersync", "usersync", True)


def test_pg_url_is_a_fresh_isolated_database(postgres: PostgresServer, pg_url: str) -> None:
    other_url = postgres.create_database()
    engine = sqlalchemy.create_engine(pg_url)
    other = sqlalchemy.create_engine(other_url)
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text("CREATE TABLE t (x int)"))
            conn.execute(sqlalchemy.text("INSERT INTO t VALUES (1)"))
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT x FROM t")).scalar_one() == 1
        with other.connect() as conn:
            tables = conn.execute(
                sqlalchemy.text("SELECT count(*) FROM pg_tables WHERE tablename = 't'")
            ).scalar_one()
            assert tables == 0
    finally:
        engine.dispose()
        other.dispose()
        postgres.drop_database(other_url.rsplit("/", 1)[1])
    assert pg_url.startswith(f"postgresql+psycopg://usersync@127.0.0.1:{postgres.port}/t_")


# --- blackhole and closed port -------------------------------------------------------------


def test_blackhole_accepts_and_never_answers(blackhole: BlackholeServer) -> None:
    with socket.create_connection((blackhole.host, blackhole.port), timeout=2) as sock:
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        deadline = time.monotonic() + 2
        while blackhole.accepted < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert blackhole.accepted == 1


def test_closed_port_refuses(closed_port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port), timeout=2).close()


def test_closed_port_helper_refuses() -> None:
    port = closed_port()
    with contextlib.closing(socket.socket()) as sock:
        sock.settimeout(2)
        with pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", port))
