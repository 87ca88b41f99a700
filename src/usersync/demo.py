"""The demo: sample `userdata_*.csv` files on a small SFTP server of usersync's own, so that a
new user can walk the whole wizard without a server of their own.

    setup = set_up(settings)          # <data_dir>/demo: files, host key, password (idempotent)
    connection, created = add_connection(engine, box, ws, setup, settings.demo_port)
    server = DemoServer(settings); server.start() ... server.stop()   # in `usersync serve`

The server listens on 127.0.0.1 only and lets user `demo` in with the password kept (mode
0600) in the demo folder. It serves the sample folder alone (chrooted): files can be read,
listed, renamed and removed (what a sync's after-import `move` and `delete` do), never
written or created. `usersync demo` puts back the samples that were moved or removed.
"""

from __future__ import annotations

import asyncio
import csv
import errno
import hmac
import io
import logging
import os
import random
import secrets
import threading
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncssh
import sqlalchemy as sa
from sqlalchemy import Engine

from usersync.config import Settings
from usersync.files import create_file
from usersync.schema import connections, workspaces
from usersync.secretbox import SecretBox
from usersync.service import DEFAULT_WORKSPACE
from usersync.sources.aio import LoopThread
from usersync.store import connections as connection_store
from usersync.store.connections import Connection, NewConnection

log = logging.getLogger("usersync.demo")

CONNECTION_NAME = "Demo SFTP server"
HOST = "127.0.0.1"
USERNAME = "demo"
COLUMNS = ("userId", "email", "first_name", "last_name", "plan", "signup_date", "age", "newsletter")
# The mapping that shows the sample files at their best: typed columns, so that
# userdata_with_errors.csv has rows to reject.
PROPERTIES = {name: name for name in COLUMNS[1:]}
TYPES = {"signup_date": "date", "age": "integer", "newsletter": "boolean"}
MAPPING: dict[str, Any] = {"user_id": COLUMNS[0], "properties": PROPERTIES, "types": TYPES}
# fmt: off
_FIRST_NAMES = (
    "Alice", "Bruno", "Chloé", "Dmitri", "Emma", "Farid", "Grace", "Hiroshi", "Ingrid", "Jamal",
    "Katarzyna", "Liam", "Mei", "Noah", "Olivia", "Pedro", "Quinn", "Rosa", "Sven", "Tanvi",
    "Uma", "Victor", "Wen", "Xavier", "Yara", "Zoë",
)
_LAST_NAMES = (
    "Andersen", "Barros", "Chen", "Dubois", "Eriksson", "Fischer", "García", "Hughes",
    "Ivanova", "Jensen", "Kowalski", "López", "Müller", "Nakamura", "O'Connor", "Patel",
    "Rossi", "Schmidt", "Tanaka", "Usman", "Virtanen", "Walsh", "Yilmaz", "Zhang",
)
# fmt: on
_PLANS = ("free", "free", "pro", "pro", "team", "enterprise")
# userdata_with_errors.csv: (row index, column, bad value); the header is line 1, so row i
# is on line i + 2.
BAD_CELLS = ((3, "age", "abc"), (6, "signup_date", "2026-02-30"), (9, "newsletter", "maybe"))
_ARCHIVE_MTIME = datetime(2026, 2, 1, 6, 0, tzinfo=UTC).timestamp()
_README = """Sample files for the usersync demo.

userdata_customers.csv     50 customers, every row importable
userdata_with_errors.csv   12 customers, three of them with a value that is not of its type
archive/2026/              an older export

This file is not importable (only userdata_*.csv files are), so the wizard lists it among
the hidden files. Run `usersync demo` again to put back sample files that were moved or
deleted.
"""


# --- the sample files --------------------------------------------------------------------


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum())


def _people(count: int, first_id: int, seed: int) -> list[dict[str, str]]:
    """`count` made-up customers; the same seed gives the same people."""
    rng = random.Random(seed)
    rows = []
    emails: set[str] = set()
    for n in range(count):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        email = f"{_ascii(first)}.{_ascii(last)}@example.com"
        if email in emails:
            email = email.replace("@", f"{n}@")
        emails.add(email)
        signup = date(2023, 1, 1) + timedelta(days=rng.randrange(1200))
        rows.append(
            {
                "userId": f"u-{first_id + n}",
                "email": email,
                "first_name": first,
                "last_name": last,
                "plan": rng.choice(_PLANS),
                "signup_date": signup.isoformat(),
                "age": str(rng.randint(19, 72)),
                "newsletter": rng.choice(("true", "false")),
            }
        )
    return rows


def _csv(rows: list[dict[str, str]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def _with_errors() -> list[dict[str, str]]:
    rows = _people(12, 2001, seed=2)
    for index, column, value in BAD_CELLS:
        rows[index][column] = value
    return rows


def _archived() -> list[dict[str, str]]:
    """January's export: the first customers, all still on the free plan then."""
    return [{**row, "plan": "free"} for row in _people(10, 1001, seed=1)]


def sample_files() -> dict[str, bytes]:
    """The sample folder's files: path inside the folder -> content."""
    return {
        "userdata_customers.csv": _csv(_people(50, 1001, seed=1)),
        "userdata_with_errors.csv": _csv(_with_errors()),
        "archive/2026/userdata_2026_01.csv": _csv(_archived()),
        "readme.txt": _README.encode("utf-8"),
    }


# --- the demo folder ---------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class DemoSetup:
    folder: Path  # what the server serves, as its "/"
    host_key: Path
    password: str
    fingerprint: str  # of the host key, "SHA256:..."
    written: tuple[str, ...] = ()  # the sample files that `set_up` (re)wrote

    def __repr__(self) -> str:
        return f"DemoSetup(folder={str(self.folder)!r}, fingerprint={self.fingerprint!r})"


def password_path(settings: Settings) -> Path:
    """The file that holds the demo user's password."""
    return _paths(settings)[2]


def _paths(settings: Settings) -> tuple[Path, Path, Path]:
    """The sample folder, the host key and the password file."""
    root = settings.demo_dir
    return root / "files", root / "ssh_host_ed25519_key", root / "password"


def _write_samples(folder: Path) -> tuple[str, ...]:
    written = []
    for name, content in sample_files().items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() and create_file(path, content, 0o644):
            written.append(name)
            if name.startswith("archive/"):
                os.utime(path, (_ARCHIVE_MTIME, _ARCHIVE_MTIME))
    return tuple(written)


def set_up(settings: Settings) -> DemoSetup:
    """Make what the demo needs in the data folder, keeping what is there already."""
    folder, key_path, password_path = _paths(settings)
    settings.demo_dir.mkdir(parents=True, exist_ok=True)
    settings.demo_dir.chmod(0o700)  # it holds the host key and the password
    folder.mkdir(exist_ok=True)
    written = _write_samples(folder)
    if not key_path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519", comment="usersync demo")
        create_file(key_path, key.export_private_key(), 0o600)
    if not password_path.exists():  # written last: the server waits for it
        create_file(password_path, secrets.token_urlsafe(24).encode(), 0o600)
    setup = load(settings)
    assert setup is not None
    return DemoSetup(setup.folder, setup.host_key, setup.password, setup.fingerprint, written)


def load(settings: Settings) -> DemoSetup | None:
    """The demo as `set_up` made it, or None if it was not set up."""
    folder, key_path, password_path = _paths(settings)
    if not (password_path.exists() and key_path.exists() and folder.is_dir()):
        return None
    key = asyncssh.read_private_key(str(key_path))
    return DemoSetup(
        folder=folder,
        host_key=key_path,
        password=password_path.read_text(encoding="utf-8").strip(),
        fingerprint=str(key.get_fingerprint("sha256")),
    )


# --- the demo connection -----------------------------------------------------------------


def add_connection(
    engine: Engine, box: SecretBox, ws: int, setup: DemoSetup, port: int
) -> tuple[Connection, bool]:
    """The workspace's demo connection, pointed at the demo server with its host key
    confirmed: created, or brought up to date if there is one; whether it was created."""
    new = NewConnection(
        name=CONNECTION_NAME,
        kind="sftp",
        host=HOST,
        port=port,
        username=USERNAME,
        password=setup.password,
        host_key_fingerprint=setup.fingerprint,
    )
    found = [c for c in connection_store.list_all(engine, box, ws) if c.name == CONNECTION_NAME]
    if not found:
        return connection_store.create(engine, box, ws, new), True
    plain = ("kind", "host", "port", "username", "host_key_fingerprint", "options")
    fields = (*plain, *connection_store.SECRET_FIELDS)
    changes = {name: getattr(new, name) for name in fields}
    return connection_store.update(engine, box, ws, found[0].id, changes), False


def has_connections(engine: Engine, workspace: str = DEFAULT_WORKSPACE) -> bool:
    """Whether the workspace has any connection (a first start has none)."""
    query = (
        sa.select(connections.c.id)
        .join(workspaces, workspaces.c.id == connections.c.workspace_id)
        .where(workspaces.c.name == workspace)
        .limit(1)
    )
    with engine.connect() as conn:
        return conn.scalar(query) is not None


def startup_note(settings: Settings, engine: Engine, command: str = "usersync") -> str | None:
    """What `usersync serve` says about the demo when it starts, if anything (`command`: how
    to run usersync from the user's shell)."""
    if load(settings) is not None:
        return (
            f"demo SFTP server: sftp://{USERNAME}@{HOST}:{settings.demo_port}/ "
            f'(the "{CONNECTION_NAME}" connection)'
        )
    if not has_connections(engine):
        return (
            f"Try it with sample files: run `{command} demo` (or `make demo`), then "
            "reload the page."
        )
    return None


# --- the demo server ---------------------------------------------------------------------


class _Login(asyncssh.SSHServer):
    """One connection: user `demo` with the demo password, nothing else."""

    def __init__(self, password: str, live: set[asyncssh.SSHServerConnection]) -> None:
        self._password = password.encode()
        self._live = live
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._live.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._live.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # every user must log in, the demo user included

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        user_ok = hmac.compare_digest(username.encode(), USERNAME.encode())
        return hmac.compare_digest(password.encode(), self._password) and user_ok


def _read_only() -> asyncssh.SFTPError:
    return asyncssh.SFTPPermissionDenied("the demo server's files can be read, not written")


_WRITING = asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC


class _SampleFolder(asyncssh.SFTPServer):
    """The sample folder as "/": read, list, rename and remove; nothing written or made."""

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if pflags & (_WRITING | asyncssh.FXF_EXCL):
            raise _read_only()
        return super().open(path, pflags, attrs)

    def open56(
        self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs
    ) -> object:
        writing = desired_access & (asyncssh.ACE4_WRITE_DATA | asyncssh.ACE4_APPEND_DATA)
        disposition = flags & asyncssh.FXF_ACCESS_DISPOSITION
        if writing or disposition != asyncssh.FXF_OPEN_EXISTING:
            raise _read_only()
        return super().open56(path, desired_access, flags, attrs)

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        raise _read_only()

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise _read_only()

    def rmdir(self, path: bytes) -> None:
        raise _read_only()

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise _read_only()

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise _read_only()

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        raise _read_only()

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise _read_only()

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise _read_only()


class DemoServer:
    """The demo SFTP server, on an event loop of its own while `usersync serve` runs. It
    starts at once if the demo is set up, else as soon as `usersync demo` sets it up."""

    def __init__(self, settings: Settings, *, poll: float = 1.0) -> None:
        self._settings = settings
        self._poll = poll
        self._stop = threading.Event()
        self._settled = threading.Event()  # listening, or given up
        self._loop: LoopThread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._live: set[asyncssh.SSHServerConnection] = set()
        self._watch_thread = threading.Thread(
            target=self._watch, name="usersync-demo-watch", daemon=True
        )

    def start(self) -> None:
        self._watch_thread.start()

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the server to listen or give up; whether it
        listens."""
        self._settled.wait(timeout)
        return self._acceptor is not None

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where it listens (none until it does)."""
        if self._acceptor is None:
            return []
        return [(str(a[0]), int(a[1])) for a in self._acceptor.get_addresses()]

    def stop(self) -> None:
        self._stop.set()
        if self._watch_thread.is_alive():
            self._watch_thread.join()
        if self._loop is not None:
            self._loop.run(self._close())
            self._loop.close()
            self._loop = None

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                setup = load(self._settings)
            except (OSError, ValueError, asyncssh.KeyImportError) as exc:
                log.warning("the demo SFTP server did not start: %s", exc)
                self._settled.set()
                return
            if setup is not None:
                self._listen(setup)
                return
            self._stop.wait(self._poll)

    def _listen(self, setup: DemoSetup) -> None:
        loop = LoopThread(name="usersync-demo-sftp")
        try:
            self._acceptor = loop.run(self._serve(setup))
            self._loop = loop
        except OSError as exc:
            loop.close()
            reason = "the port is in use" if exc.errno == errno.EADDRINUSE else str(exc)
            log.warning(
                "the demo SFTP server cannot listen on %s:%s (%s); usersync runs without it. "
                "Set USERSYNC_DEMO_PORT to a free port, run `usersync demo` again and restart.",
                HOST,
                self._settings.demo_port,
                reason,
            )
        finally:
            self._settled.set()

    async def _serve(self, setup: DemoSetup) -> asyncssh.SSHAcceptor:
        key = asyncssh.read_private_key(str(setup.host_key))
        root = os.fsencode(setup.folder)
        return await asyncssh.listen(
            HOST,
            self._settings.demo_port,
            server_host_keys=[key],
            server_factory=lambda: _Login(setup.password, self._live),
            sftp_factory=lambda chan: _SampleFolder(chan, chroot=root),
            allow_scp=False,
            reuse_address=True,
        )

    async def _close(self) -> None:
        assert self._acceptor is not None
        self._acceptor.close()
        for conn in list(self._live):
            conn.close()
        await asyncio.gather(*(c.wait_closed() for c in list(self._live)))
        await self._acceptor.wait_closed()
        self._acceptor = None
