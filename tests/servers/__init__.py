"""Real servers for the integration tests: OpenSSH's sshd, PostgreSQL and a silent TCP listener.

Every server listens on 127.0.0.1 and a free high port, with its own configuration and state
in a fresh directory, and is torn down (processes killed, directory removed) by `stop()`.
Nothing here mocks anything: the tests talk to the real programs.

State lives under `STATE_ROOT` (/var/lib/usersync-test), not under /tmp: sshd's
`ChrootDirectory` must not sit below a world-writable folder. Each server directory holds an
`owner` file naming the test process; directories whose owner died without cleaning up (a
killed pytest) are removed, with their processes, the next time a server starts.

This module holds the helpers the server modules share.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
STATE_ROOT = Path("/var/lib/usersync-test")
OWNER_FILE = "owner"
LOG_TAIL_CHARS = 12_000


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
