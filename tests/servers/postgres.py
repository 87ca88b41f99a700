"""A real, throwaway PostgreSQL cluster on 127.0.0.1 and a free port.

    with PostgresServer() as pg:
        engine = sqlalchemy.create_engine(pg.url)           # database `usersync`
        other = pg.create_database()                        # URL of a fresh, empty database

The cluster is `initdb`-ed in a fresh directory (as the `postgres` OS user when run as root:
PostgreSQL refuses to run as root; as the current user otherwise), with `fsync`,
`synchronous_commit` and `full_page_writes` off (it is thrown away), a 4 GB `max_wal_size`
(what the README advises for big imports: no checkpoint in the middle), and authentication
`trust` for 127.0.0.1 and the Unix socket: any password, or none, is accepted for the
superuser role `usersync`. `stop()` does an immediate shutdown and removes the directory.
The binaries are those of the newest /usr/lib/postgresql/*/bin.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from tests.servers import (
    LOOPBACK,
    DirServer,
    ServerError,
    free_port,
    make_state_dir,
    register_stale_cleaner,
    run_checked,
    tail,
)

START_TIMEOUT = 30.0
BIND_ATTEMPTS = 5
DIR_PREFIX = "pg-"
OS_USER = "postgres"
ROLE = "usersync"
DATABASE = "usersync"
_BIND_FAILURE = re.compile(r"could not bind|Address already in use|could not create any TCP")
_DB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def find_bin_dir() -> Path:
    """The bin folder of the newest PostgreSQL under /usr/lib/postgresql."""
    found = glob.glob("/usr/lib/postgresql/*/bin/postgres")

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(part) for part in re.findall(r"\d+", name))

    if not found:
        raise ServerError(
            "no PostgreSQL server in /usr/lib/postgresql/*/bin: "
            "run scripts/ensure-system-packages.sh"
        )
    return Path(max(found, key=version)).parent


def _kill_stale(directory: Path) -> None:
    """Stop the postmaster a dead test run left in `directory` (the stale-dir sweep)."""
    try:
        pid = int((directory / "data" / "postmaster.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if str(directory / "data").encode() not in cmdline:
        return
    os.kill(pid, signal.SIGQUIT)  # immediate shutdown
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


register_stale_cleaner(DIR_PREFIX, _kill_stale)


class PostgresServer(DirServer):
    """A PostgreSQL cluster of its own on 127.0.0.1 and a free port; superuser `usersync`.

    After `start()`: `host`, `port`, `user`, `url` (SQLAlchemy URL of database `usersync`),
    `url_for(db)`, `conninfo(db)` (a libpq URL for psycopg), `create_database(name)`,
    `drop_database(name)`, `dir`, `data_dir`, `log_path`, `bin_dir`.
    """

    host = LOOPBACK
    user = ROLE
    dbname = DATABASE
    log_name = "postgres.log"

    def __init__(self, *, start_timeout: float = START_TIMEOUT) -> None:
        super().__init__(start_timeout=start_timeout)
        self.bin_dir = find_bin_dir()
        self._running = False
        self._as_user: str | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """initdb, start, wait until it accepts connections, create database `usersync`."""
        if self._running:
            raise ServerError("PostgreSQL is already running")
        try:
            self._prepare()
            self._launch_with_retries()
            self._wait_ready()
            with self._admin() as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Immediate shutdown (`pg_ctl stop -m immediate`), then remove the directory."""
        try:
            if self._running:
                self._running = False
                try:
                    self._pg_ctl(["stop", "-m", "immediate", "-w", "-t", "10"], timeout=20)
                except ServerError:
                    self._kill_postmaster()
        finally:
            self._remove_dir()

    def _kill_postmaster(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    # --- setup ---------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        assert self._dir is not None
        return {
            "PATH": f"{self.bin_dir}:/usr/bin:/bin",
            "LC_ALL": "C",
            "LANG": "C",
            "TZ": "UTC",
            "HOME": str(self._dir),
        }

    def _run(self, cmd: list[str], *, timeout: float, what: str) -> str:
        result = run_checked(
            cmd, timeout=timeout, what=what, as_user=self._as_user, cwd=self._dir, env=self._env()
        )
        return result.stdout

    def _prepare(self) -> None:
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: the cluster belongs to the `postgres` user.
            try:
                owner = pwd.getpwnam(OS_USER)
            except KeyError as exc:
                raise ServerError(
                    f"OS user {OS_USER!r} is missing: run scripts/ensure-system-packages.sh"
                ) from exc
            self._as_user = OS_USER
            self._dir = make_state_dir(DIR_PREFIX, mode=0o700)
            (self._dir / "sock").mkdir(mode=0o700)
            for path in (self._dir, self._dir / "sock"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        else:
            self._as_user = None
            self._dir = Path(tempfile.mkdtemp(prefix="usersync-pg-"))
            (self._dir / "sock").mkdir(mode=0o700)
        self._run(
            [
                str(self.bin_dir / "initdb"),
                *("-D", str(self.data_dir), "-U", ROLE, "--auth=trust"),
                *("--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"),
            ],
            timeout=60,
            what="initdb",
        )
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# usersync test cluster: trust on loopback only\n"
            "local all all trust\n"
            f"host all all {LOOPBACK}/32 trust\n"
        )

    def _pg_ctl(self, args: list[str], *, timeout: float) -> None:
        """Run pg_ctl with output to a file (the postmaster must not inherit our pipes)."""
        assert self._dir is not None
        out_path = self._dir / "pg_ctl.out"
        cmd = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]
        with open(out_path, "wb") as out:
            try:
                proc = subprocess.run(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self._dir,
                    env=self._env(),
                    timeout=timeout,
                    check=False,
                    user=self._as_user,
                    group=self._as_user,
                    extra_groups=[] if self._as_user is not None else None,
                )
            except subprocess.TimeoutExpired as exc:
                raise ServerError(
                    f"{' '.join(cmd)} did not finish within {timeout} s\n{tail(out_path)}\n"
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                ) from exc
        if proc.returncode != 0:
            raise ServerError(
                f"{' '.join(cmd)} exited with {proc.returncode}:\n{tail(out_path)}\n"
                f"log {self.log_path}:\n{tail(self.log_path)}"
            )

    def _launch_with_retries(self) -> None:
        for _attempt in range(BIND_ATTEMPTS):
            port = free_port()
            options = (
                f"-c listen_addresses={LOOPBACK} -p {port} -k {self.socket_dir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200 -c max_wal_size=4GB"
            )
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._pg_ctl(
                    [
                        *("start", "-w", "-t", str(int(self.start_timeout))),
                        *("-l", str(self.log_path), "-o", options),
                    ],
                    timeout=self.start_timeout + 10,
                )
            except ServerError:
                with open(self.log_path, "rb") as log:
                    log.seek(log_start)
                    new_log = log.read().decode("utf-8", "replace")
                self._running = True  # so that stop() tries to stop whatever is left
                with contextlib.suppress(ServerError):
                    self._pg_ctl(["stop", "-m", "immediate", "-w", "-t", "10"], timeout=20)
                self._running = False
                if _BIND_FAILURE.search(new_log):
                    continue
                raise
            self._port = port
            self._running = True
            return
        raise ServerError(
            f"PostgreSQL could not bind a port after {BIND_ATTEMPTS} attempts:\n"
            f"{tail(self.log_path)}"
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        cmd = [str(self.bin_dir / "pg_isready"), "-h", LOOPBACK, "-p", str(self.port)]
        cmd += ["-U", ROLE, "-d", "postgres", "-t", "2"]
        last = ""
        while time.monotonic() < deadline:
            result = subprocess.run(
                cmd, capture_output=True, text=True, timeout=10, check=False, env=self._env()
            )
            if result.returncode == 0:
                return
            last = result.stdout + result.stderr
            time.sleep(0.05)
        raise ServerError(
            f"PostgreSQL on port {self.port} not ready within {self.start_timeout} s: {last}\n"
            f"log {self.log_path}:\n{tail(self.log_path)}"
        )

    # --- connecting ----------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._need_dir() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._need_dir() / "sock"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of database `usersync`: postgresql+psycopg://usersync@127.0.0.1:PORT/usersync."""
        return self.url_for(DATABASE)

    def url_for(self, dbname: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of database `dbname`."""
        return f"postgresql+psycopg://{ROLE}@{LOOPBACK}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = DATABASE) -> str:
        """libpq URL of database `dbname`, for `psycopg.connect`."""
        return f"postgresql://{ROLE}@{LOOPBACK}:{self.port}/{dbname}"

    def _admin(self) -> psycopg.Connection[TupleRow]:
        return psycopg.connect(self.conninfo("postgres"), autocommit=True, connect_timeout=10)

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (default name: `t_<random>`); return its SQLAlchemy URL."""
        name = name or f"t_{secrets.token_hex(6)}"
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"database name {name!r}: use letters, digits and _ (max 63)")
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, disconnecting its sessions (no error if it is missing)."""
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
