"""Real servers for the integration tests: OpenSSH's sshd, PostgreSQL and a silent TCP listener.

Every server listens on 127.0.0.1 and a free high port, with its own configuration and state
in a fresh directory, and is torn down (processes killed, directory removed) by `stop()`.
Nothing here mocks anything: the tests talk to the real programs.

State lives under `STATE_ROOT` (/var/lib/usersync-test), not under /tmp: sshd's
`ChrootDirectory` must not sit below a world-writable folder. Each server directory holds an
`owner` file naming the test process; directories whose owner died without cleaning up (a
killed pytest) are removed, with their processes, the next time a server starts.

This module holds what the server modules share: the helpers below, and the base classes
`Server` (a context manager), `DirServer` (a port and a state directory), `ProcessServer`
(one child process tree, started on a free port with retries, stopped or killed as a tree),
`FileServer` (a ProcessServer serving a local folder as `/`) and `ServedFolder` (one test's
own folder on a FileServer).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Generic, Self, TypeVar
from urllib.parse import quote

LOOPBACK = "127.0.0.1"
STATE_ROOT = Path("/var/lib/usersync-test")
OWNER_FILE = "owner"
LOG_TAIL_CHARS = 12_000
BIND_ATTEMPTS = 5
STOP_GRACE = 5.0


class ServerError(RuntimeError):
    """A test server could not be set up, started or stopped. The message carries its log."""


def require_root(what: str) -> None:
    """Fail with a clear message unless this process runs as root."""
    if os.geteuid() != 0:
        raise ServerError(
            f"{what} must run as root (euid is {os.geteuid()}): it creates a system user, "
            f"chroot folders under {STATE_ROOT} and runs servers as other users. Run the "
            "integration tests as root, e.g. in the CI container or with sudo."
        )


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on `host` that nothing listens on right now (the OS picks it).

    Another process may take it before the caller binds it: callers retry on a bind failure.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, limit: int = LOG_TAIL_CHARS) -> str:
    """The end of a log file, for error messages; never raises."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    text = data.decode("utf-8", "replace")
    if len(text) > limit:
        text = "...\n" + text[-limit:]
    return text or "<empty>"


def run_checked(
    cmd: Sequence[str],
    *,
    timeout: float,
    what: str,
    input_text: str | None = None,
    as_user: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a short command with a time limit; raise `ServerError` with its output on failure."""
    try:
        result = subprocess.run(
            list(cmd),
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=cwd,
            env=env,
            user=as_user,
            group=as_user,
            extra_groups=[] if as_user is not None else None,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServerError(f"{what}: {' '.join(cmd)} did not finish within {timeout} s") from exc
    except OSError as exc:
        raise ServerError(f"{what}: cannot run {' '.join(cmd)}: {exc}") from exc
    if result.returncode != 0:
        raise ServerError(
            f"{what}: {' '.join(cmd)} exited with {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


# --- the state directory -------------------------------------------------------------------


def _check_chain_safe(path: Path) -> None:
    """Every folder from / down to `path` is root-owned and not group/world-writable."""
    for part in [path, *path.parents]:
        st = part.stat()
        if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ServerError(
                f"{part} must be owned by root and not group/world-writable "
                f"(owner uid {st.st_uid}, mode {stat.filemode(st.st_mode)}): sshd refuses "
                "to chroot below it."
            )


def ensure_state_root() -> Path:
    """Create `STATE_ROOT` (root-owned, 0755) and remove what dead test runs left there."""
    STATE_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    if STATE_ROOT.stat().st_uid == 0:
        os.chmod(STATE_ROOT, 0o755)
    _check_chain_safe(STATE_ROOT)
    sweep_stale_dirs()
    return STATE_ROOT


def _start_time(pid: int) -> str | None:
    """The kernel start time of process `pid` (to tell it from a reuse of its pid), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _owner_token() -> str:
    return f"{os.getpid()} {_start_time(os.getpid())}\n"


def make_state_dir(prefix: str, *, mode: int = 0o755) -> Path:
    """A fresh directory under `STATE_ROOT`, marked as owned by this test process."""
    ensure_state_root()
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=STATE_ROOT))
    os.chmod(path, mode)
    (path / OWNER_FILE).write_text(_owner_token())
    return path


_stale_cleaners: dict[str, Callable[[Path], None]] = {}


def register_stale_cleaner(prefix: str, cleaner: Callable[[Path], None]) -> None:
    """`cleaner(dir)` stops the server left in a stale directory named `prefix*`."""
    _stale_cleaners[prefix] = cleaner


def sweep_stale_dirs() -> None:
    """Remove server directories whose owning test process is gone (best effort)."""
    try:
        entries = list(STATE_ROOT.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink() or not entry.is_dir():
            continue
        try:
            pid_text, _, start = (entry / OWNER_FILE).read_text().strip().partition(" ")
            owner_alive = _start_time(int(pid_text)) == start
        except (OSError, ValueError):
            # No owner file: either being created right now, or junk. Leave young ones alone.
            with contextlib.suppress(OSError):
                if time.time() - entry.stat().st_mtime < 600:
                    continue
            owner_alive = False
        if owner_alive:
            continue
        for prefix, cleaner in _stale_cleaners.items():
            if entry.name.startswith(prefix):
                with contextlib.suppress(Exception):
                    cleaner(entry)
        shutil.rmtree(entry, ignore_errors=True)


# --- process trees -------------------------------------------------------------------------


def _process_table() -> dict[int, int]:
    """pid -> parent pid for every live (non-zombie) process."""
    table: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            text = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):
            continue
        table[int(name)] = int(fields[1])
    return table


def descendants(root_pid: int) -> list[int]:
    """The live processes below `root_pid` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _process_table().items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    todo = list(children.get(root_pid, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


Proc = tuple[int, str | None]
"""A process: its pid and its kernel start time (None if it had already exited)."""


def _signal(procs: Iterable[Proc], sig: int) -> None:
    for pid, start in procs:
        if start is None or _start_time(pid) != start:
            continue  # gone, or the pid now names another process
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def freeze_tree(root_pid: int) -> list[Proc]:
    """SIGSTOP `root_pid` and everything below it, so that none forks or gets reparented.

    Returns (pid, start time) of each frozen process, the root first.
    """
    frozen: dict[int, str | None] = {}
    with contextlib.suppress(ProcessLookupError):
        frozen[root_pid] = _start_time(root_pid)
        os.kill(root_pid, signal.SIGSTOP)
    for _ in range(100):
        new = [pid for pid in descendants(root_pid) if pid not in frozen]
        if not new:
            break
        for pid in new:
            frozen[pid] = _start_time(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        time.sleep(0.005)
    return list(frozen.items())


def kill_stale_server(pid_file: Path, marker: bytes) -> None:
    """Kill the process tree of the pid in `pid_file` (left by a dead test run) if that
    process's command line holds `marker`, i.e. the pid still names the server."""
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if marker in cmdline:
        procs = freeze_tree(pid)
        kill_procs(procs)
        wait_gone(procs, 5.0)


def kill_procs(procs: Iterable[Proc]) -> None:
    """SIGKILL the processes (stopped ones too)."""
    _signal(procs, signal.SIGKILL)


def alive(procs: Iterable[Proc]) -> list[Proc]:
    """The processes that have not exited yet (zombies count as exited)."""
    return [(pid, st) for pid, st in procs if st is not None and _start_time(pid) == st]


def wait_gone(procs: Iterable[Proc], timeout: float) -> list[Proc]:
    """Wait until the processes have exited; returns those still alive after `timeout`."""
    deadline = time.monotonic() + timeout
    remaining = alive(procs)
    while remaining and time.monotonic() < deadline:
        time.sleep(0.02)
        remaining = alive(remaining)
    return remaining


def stop_procs(procs: Sequence[Proc], *, grace: float) -> list[Proc]:
    """SIGTERM (then SIGCONT) the processes, SIGKILL those alive after `grace` seconds.

    Returns the processes still alive after the SIGKILL (normally none).
    """
    _signal(procs, signal.SIGTERM)
    _signal(procs, signal.SIGCONT)
    left = wait_gone(procs, grace)
    if left:
        _signal(left, signal.SIGKILL)
        left = wait_gone(left, 5.0)
    return left


# --- server objects ------------------------------------------------------------------------


class Server:
    """A test server: `with Server() as server:` starts it and stops it at the end."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class DirServer(Server):
    """A server on `port` with its state in a directory of its own, `dir` (log: `log_path`)."""

    log_name = "server.log"

    def __init__(self, *, start_timeout: float) -> None:
        self.start_timeout = start_timeout
        self._dir: Path | None = None
        self._port: int | None = None

    def _need_dir(self) -> Path:
        if self._dir is None:
            raise ServerError(f"the {type(self).__name__} is not started (or already stopped)")
        return self._dir

    def _remove_dir(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def dir(self) -> Path:
        """The server's own directory (configuration, log, state)."""
        return self._need_dir()

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError(f"the {type(self).__name__} is not started")
        return self._port

    @property
    def log_path(self) -> Path:
        return self._need_dir() / self.log_name

    def log_text(self) -> str:
        return tail(self.log_path)


class ProcessServer(DirServer):
    """A server that is one child process (and whatever it forks) on 127.0.0.1 and a free
    port. A subclass gives `_prepare()` (make `_dir` and fill it), `_command(port)` and
    `_ready(port, timeout)`, and may give `_after_start()`, `_env()`, `cwd`, `bind_failures`.

    `start()` retries on another port when the chosen one was taken meanwhile (its log names
    one of `bind_failures`). `stop()` ends it for good (processes and directory); `kill()`
    SIGKILLs the whole process tree at once (open connections drop) but keeps the directory,
    so `start()` can bring it back on the same port.
    """

    name = "server"
    ready_sign = "a greeting"
    bind_failures: tuple[str, ...] = ("Address already in use",)
    pid_file: str | None = "server.pid"
    """The file in `dir` that gets the child's pid (for the stale-dir sweep); None when the
    server writes one itself."""
    cwd: str | Path | None = None

    def __init__(self, *, start_timeout: float) -> None:
        super().__init__(start_timeout=start_timeout)
        self._proc: subprocess.Popen[bytes] | None = None

    # --- what a subclass gives -------------------------------------------------------------

    def _prepare(self) -> None:
        """Make the server's directory (`_dir`) and what the server needs in it."""
        raise NotImplementedError

    def _command(self, port: int) -> list[str]:
        """The command line that serves on `port` (writing its configuration first)."""
        raise NotImplementedError

    def _ready(self, port: int, timeout: float) -> bool:
        """Whether the server answers on `port` as it should (waiting at most `timeout` s)."""
        raise NotImplementedError

    def _after_start(self) -> None:
        """Set-up that needs the running server."""

    def _env(self) -> dict[str, str] | None:
        """The server's environment (None: this process's)."""
        return None

    def _pick_port(self) -> int:
        return free_port()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server and wait (at most `start_timeout` s) until it is ready."""
        if self.running:
            raise ServerError(f"{self.name} is already running")
        try:
            if self._dir is None:
                self._prepare()
            self._launch_with_retries()
            self._after_start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and its sessions (SIGTERM, SIGKILL after 5 s); remove its directory."""
        try:
            if self._proc is not None:
                left = stop_procs(freeze_tree(self._proc.pid), grace=STOP_GRACE)
                self._reap()
                if left:
                    raise ServerError(f"{self.name} processes {left} survived SIGKILL")
        finally:
            self._port = None
            self._remove_dir()

    def kill(self) -> None:
        """SIGKILL the server and all its session processes at once; open connections drop.

        Per-connection processes may run in sessions of their own (sshd calls setsid), so a
        process-group kill would miss them: the whole process tree is frozen with SIGSTOP
        (no forks, no reparenting meanwhile), then SIGKILLed. The directory stays.
        """
        if self._proc is None:
            return
        procs = freeze_tree(self._proc.pid)
        kill_procs(procs)
        self._reap()
        left = wait_gone(procs, 5.0)
        if left:
            raise ServerError(f"{self.name} processes {left} survived SIGKILL")

    def _reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._proc = None

    @property
    def running(self) -> bool:
        """Whether the server's main process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def processes(self) -> list[int]:
        """Pids of the server's main process and all its connection/session processes."""
        if self._proc is None or self._proc.poll() is not None:
            return []
        return [self._proc.pid, *descendants(self._proc.pid)]

    def _launch_with_retries(self) -> None:
        fixed_port = self._port is not None  # a restart after kill() keeps its port
        for _attempt in range(1 if fixed_port else BIND_ATTEMPTS):
            port = self._port if self._port is not None else self._pick_port()
            if self._launch(port):
                self._port = port
                return
        raise ServerError(
            f"{self.name} could not bind a port after {BIND_ATTEMPTS} attempts:\n"
            f"{tail(self.log_path)}"
        )

    def _launch(self, port: int) -> bool:
        """Start on `port`; True once ready, False if the port was taken meanwhile."""
        cmd = self._command(port)
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.cwd,
                env=self._env(),
            )
        if self.pid_file is not None:
            (self._need_dir() / self.pid_file).write_text(f"{self._proc.pid}\n")
        deadline = time.monotonic() + self.start_timeout
        while True:
            returncode = self._proc.poll()
            if returncode is not None:
                self._proc = None
                with open(self.log_path, "rb") as log:
                    log.seek(log_start)
                    new_log = log.read().decode("utf-8", "replace")
                if any(failure in new_log for failure in self.bind_failures) and not self._port:
                    return False
                raise ServerError(
                    f"{self.name} exited with {returncode} before accepting connections on "
                    f"port {port}.\ncommand: {' '.join(cmd)}\nlog {self.log_path}:\n{new_log}"
                )
            remaining = max(deadline - time.monotonic(), 0.1)
            if self._ready(port, min(remaining, 2.0)):
                return True
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"{self.name} did not send {self.ready_sign} on {LOOPBACK}:{port} within "
                    f"{self.start_timeout} s.\ncommand: {' '.join(cmd)}\n"
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            time.sleep(0.02)


def read_first_line(port: int, timeout: float, *, send: bytes = b"", then: bytes = b"") -> bytes:
    """The first line the server at 127.0.0.1:port sends (after we sent `send`; we send
    `then` after it), or b"" if it cannot be read."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            if send:
                sock.sendall(send)
            data = b""
            while b"\n" not in data and len(data) < 4096:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                data += chunk
            if then:
                with contextlib.suppress(OSError):
                    sock.sendall(then)
            return data
    except OSError:
        return b""


class FileServer(ProcessServer):
    """A ProcessServer that serves the local folder `root` (in its directory) as `/` to the
    login user `username`; files and folders made `writable` belong to that user (`_uid`,
    `_gid`: -1 leaves root as the owner)."""

    host = LOOPBACK
    username = ""
    password = ""

    def __init__(self, *, start_timeout: float) -> None:
        super().__init__(start_timeout=start_timeout)
        self._uid = -1
        self._gid = -1

    @property
    def scheme(self) -> str:
        raise NotImplementedError

    @property
    def root(self) -> Path:
        """The local folder the client sees as `/`."""
        return self._need_dir() / "root"

    def _make_root(self) -> None:
        self.root.mkdir(mode=0o755)
        os.chmod(self.root, 0o755)

    def url(self, path: str = "/") -> str:
        """`SCHEME://USER@127.0.0.1:PORT/path`, user and path percent-encoded."""
        path = "/" + path.lstrip("/")
        user = quote(self.username, safe="")
        return f"{self.scheme}://{user}@{self.host}:{self.port}{quote(path)}"

    # --- the served tree -------------------------------------------------------------------

    def local_path(self, remote_path: str) -> Path:
        """The local path of `remote_path` as the client names it (cannot escape root)."""
        normalized = posixpath.normpath("/" + remote_path.lstrip("/"))
        return self.root / normalized.lstrip("/") if normalized != "/" else self.root

    def _make_parents(self, local: Path) -> None:
        missing = []
        parent = local.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):
            folder.mkdir(mode=0o755)
            os.chmod(folder, 0o755)

    def mkdir(self, remote_path: str, mode: int = 0o755, *, writable: bool = False) -> Path:
        """Create folder `remote_path` (and missing parents, root-owned 0755).

        The folder gets `mode`; with `writable=True` it is owned by the login user, who may
        then create, rename and delete entries in it. Returns the local path.
        """
        local = self.local_path(remote_path)
        self._make_parents(local)
        local.mkdir(mode=0o700, exist_ok=True)
        if writable:
            os.chown(local, self._uid, self._gid)
        os.chmod(local, mode)
        return local

    def put(
        self,
        remote_path: str,
        data: bytes,
        mode: int = 0o644,
        mtime: float | datetime | None = None,
        *,
        writable: bool = False,
    ) -> Path:
        """Write a file at `remote_path` (missing parents: root-owned 0755); return its path.

        The file is root-owned with `mode` (0644: readable by the login user; 0600: not), or
        owned by the login user with `writable=True`. `mtime`: epoch seconds or a datetime.
        """
        local = self.local_path(remote_path)
        self._make_parents(local)
        local.write_bytes(data)
        if writable:
            os.chown(local, self._uid, self._gid)
        os.chmod(local, mode)
        if mtime is not None:
            seconds = mtime.timestamp() if isinstance(mtime, datetime) else float(mtime)
            os.utime(local, (seconds, seconds))
        return local

    def symlink(self, remote_path: str, target: str) -> Path:
        """Create a symlink at `remote_path` pointing to `target` (as the server resolves it:
        an absolute target is inside the served folder)."""
        local = self.local_path(remote_path)
        self._make_parents(local)
        local.symlink_to(target)
        return local

    def _fresh_folder(self, remote_path: str, *, writable: bool) -> str:
        """Make `remote_path` a new, empty folder; its normalized remote path."""
        local = self.local_path(remote_path)
        if local.exists():
            shutil.rmtree(local)
        self.mkdir(remote_path, writable=writable)
        return posixpath.normpath("/" + remote_path.lstrip("/"))


FileServerT = TypeVar("FileServerT", bound=FileServer)


class ServedFolder(Generic[FileServerT]):
    """One test's own folder `base` on a shared FileServer, plus the server's credentials.

    Paths given to `path`, `local`, `put`, `mkdir`, `symlink` and `url` are relative to
    `base` (a leading `/` is ignored) and may not leave it.
    """

    def __init__(self, server: FileServerT, base: str) -> None:
        self.server = server
        self.base = base
        self.host = server.host
        self.port = server.port
        self.username = server.username
        self.password = server.password

    def path(self, rel: str = "") -> str:
        """The absolute remote path of `rel` (as the client names it)."""
        joined = posixpath.normpath(posixpath.join(self.base, rel.lstrip("/")))
        if joined != self.base and not joined.startswith(self.base + "/"):
            raise ValueError(f"{rel!r} leaves the test folder {self.base}")
        return joined

    def local(self, rel: str = "") -> Path:
        """The local path of `rel`."""
        return self.server.local_path(self.path(rel))

    def url(self, rel: str = "") -> str:
        """The server's URL of `<base>/<rel>`."""
        return self.server.url(self.path(rel))

    def put(
        self,
        rel: str,
        data: bytes,
        mode: int = 0o644,
        mtime: float | datetime | None = None,
        *,
        writable: bool = False,
    ) -> Path:
        """`FileServer.put` relative to `base`."""
        return self.server.put(self.path(rel), data, mode, mtime, writable=writable)

    def mkdir(self, rel: str, mode: int = 0o755, *, writable: bool = False) -> Path:
        """`FileServer.mkdir` relative to `base`."""
        return self.server.mkdir(self.path(rel), mode, writable=writable)

    def symlink(self, rel: str, target: str) -> Path:
        """`FileServer.symlink` relative to `base` (`target` is used as given)."""
        return self.server.symlink(self.path(rel), target)

    def remove(self) -> None:
        """Delete the folder and everything in it."""
        shutil.rmtree(self.local(), ignore_errors=True)
