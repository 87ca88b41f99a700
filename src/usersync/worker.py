"""The worker: turns due fire times into runs, claims runs, executes them, and recovers the
runs of workers that died. `usersync serve` runs one in a background thread; `usersync
worker` runs one alone (scale-out on PostgreSQL: start as many as you like).

    worker = Worker(settings, engine, box)
    worker.run(stop_event)                 # until the event is set; the current run finishes
    BackgroundWorker(settings, engine, box).start() / .stop()
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass

from sqlalchemy import Engine

from usersync.config import Settings
from usersync.secretbox import SecretBox


@dataclass(frozen=True)
class WorkerOptions:
    poll: float = 1.0  # seconds between looks at the queue when idle
    lease: float = 30.0  # a running run's lease; renewed every third of it
    max_attempts: int = 3  # of a run that fails transiently or whose worker died
    backoff: tuple[float, ...] = (10.0, 60.0, 300.0)  # seconds before attempt 2, 3, ...
    settle: float = 3.0  # seconds between the two looks of the growing-file guard


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


class Worker:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        box: SecretBox,
        *,
        options: WorkerOptions | None = None,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.box = box
        self.options = options or WorkerOptions()
        self.name = name or worker_name()

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set. The run in progress when it is set finishes first."""
        while not stop.is_set():
            if not self.tick():
                stop.wait(self.options.poll)

    def tick(self) -> bool:
        """One round: recover, schedule, claim and execute one run. True if it ran one."""
        raise NotImplementedError


class BackgroundWorker:
    """A Worker on a daemon thread, for `usersync serve`."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        box: SecretBox,
        *,
        options: WorkerOptions | None = None,
    ) -> None:
        self.worker = Worker(settings, engine, box, options=options)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.worker.run, args=(self._stop,), name="usersync-worker", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the worker to stop and wait for the run in progress (up to `timeout`)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
