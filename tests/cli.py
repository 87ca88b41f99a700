"""Running the `usersync` command in-process for tests, as a user would call it."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from click.testing import CliRunner

from usersync.cli import main


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def store_env(tmp_path: Path, db_url: str) -> dict[str, str]:
    """The environment of `usersync` commands on this test's own data folder and database
    `db_url`, with short network timeouts."""
    return {
        "USERSYNC_DATA_DIR": str(tmp_path / "data"),
        "USERSYNC_DB": db_url,
        "USERSYNC_CONNECT_TIMEOUT": "5",
        "USERSYNC_IO_TIMEOUT": "5",
    }


def usersync(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


def usersync_in_terminal(env: dict[str, str], *args: str, columns: int) -> Result:
    """Run `usersync` as a separate process in a pseudo-terminal `columns` wide, as a person at
    a terminal would; its output and errors come back together, as the terminal shows them."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environment = {k: v for k, v in {**os.environ, **env}.items() if k != "COLUMNS"}
    process = subprocess.Popen(
        [sys.executable, "-m", "usersync", *args],
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    try:
        while chunk := _read(leader):
            output += chunk
    finally:
        os.close(leader)
    exit_code = process.wait(timeout=60)
    text = output.decode().replace("\r\n", "\n")
    return Result(exit_code, text, text)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the process closed the terminal
        return b""


class _Server(Protocol):
    @property
    def client_key_path(self) -> Any: ...
    @property
    def known_hosts_path(self) -> Any: ...


def key_args(server: _Server) -> list[str]:
    """Log in with the test key, trusting the test server's host keys."""
    return ["--key", str(server.client_key_path), "--known-hosts", str(server.known_hosts_path)]


def wait_for_progress(proc: subprocess.Popen[str], word: str) -> None:
    """Block until the progress a `usersync` process writes on stderr says `word` (bounded)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        if word in line:
            return
    proc.kill()
    proc.communicate(timeout=30)
    raise AssertionError(f"the import never reported {word!r}")


def start_usersync(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`usersync ARGS` in a process of its own, its output and errors piped, as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "usersync", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_when(proc: subprocess.Popen[str], word: str, sig: int) -> tuple[int, str]:
    """Send `sig` to a `start_usersync` process once its progress says `word`; its exit code
    and what it wrote on stderr."""
    wait_for_progress(proc, word)
    os.kill(proc.pid, sig)
    _, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr
