"""`usersync worker` processes for tests, started as an operator would start them, and
polling with a deadline instead of sleeping and hoping.

    with WorkerProcess.start(tmp_path / "w1", db_url, data_dir, USERSYNC_WORKER_LEASE="3") as w:
        w.wait_ready()
        ...
        assert w.terminate() == 0          # SIGTERM, then wait for the exit code
    # leaving the block kills the process if it is still alive (a failed test)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

T = TypeVar("T")

READY = re.compile(r"worker (\S+) started")
EXIT_TIMEOUT = 60.0


def wait_for(
    what: str,
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.05,
    alive: Callable[[], None] | None = None,
) -> T:
    """Call `check` until it returns something other than None or False; fail with `what`
    after `timeout` seconds. `alive` is called each round and may fail the wait early
    (e.g. when a worker process died)."""
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def worker_env(data_dir: Path, tmp_dir: Path, **settings: str) -> dict[str, str]:
    """The process environment without any USERSYNC_* of the caller, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("USERSYNC_")}
    tmp_dir.mkdir(parents=True, exist_ok=True)
    env.update(USERSYNC_DATA_DIR=str(data_dir), TMPDIR=str(tmp_dir), **settings)
    return env


class WorkerProcess:
    """One `usersync worker --db URL` child process; its stderr goes to `log_path`."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.name: str | None = None

    @classmethod
    def start(cls, work_dir: Path, db_url: str, data_dir: Path, **settings: str) -> WorkerProcess:
        """Start a worker using the data directory `data_dir` (its secret key file) and the
        database `db_url`; `settings` are USERSYNC_* variables."""
        work_dir.mkdir(parents=True, exist_ok=True)
        log_path = work_dir / "worker.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "usersync", "worker", "--db", db_url],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=worker_env(data_dir, work_dir / "tmp", **settings),
                cwd=work_dir,
            )
        return cls(process, log_path)

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(EXIT_TIMEOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        """Fail (with the worker's log) if the process has exited."""
        code = self.process.poll()
        if code is not None:
            raise AssertionError(f"worker {self.pid} exited with {code}:\n{self.log()}")

    def wait_ready(self, timeout: float = 30.0) -> str:
        """Wait until the worker has opened the database and started its loop; its name."""

        def started() -> str | None:
            found = READY.search(self.log())
            return found.group(1) if found else None

        self.name = wait_for(
            f"worker {self.pid} to start", started, timeout=timeout, alive=self.check_alive
        )
        return self.name

    def terminate(self, timeout: float = EXIT_TIMEOUT) -> int:
        """SIGTERM (finish the current run, then exit); the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def stop_at_once(self, timeout: float = EXIT_TIMEOUT) -> int:
        """SIGTERM, and SIGTERM again once the worker said it finishes its run first (the
        second stops it where it is); the exit code."""
        self.process.send_signal(signal.SIGTERM)
        wait_for("the worker to answer SIGTERM", lambda: "send it again" in self.log(), timeout=10)
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        """SIGKILL: the process dies at once, in the middle of whatever it does."""
        self.process.kill()
        return self.wait(EXIT_TIMEOUT)

    def wait(self, timeout: float = EXIT_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.pid} did not exit within {timeout:.0f} s:\n{self.log()}"
            ) from None
