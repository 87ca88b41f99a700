"""The heartbeat of a running run: its lease renewed and its progress published on a thread
of its own, and a request to cancel it noticed. Workers beat for the runs they execute, and
`usersync import` for its own run, so that a run whose process died ends failed once its
lease runs out (`runqueue.recover`).

    with Heartbeat(engine, worker_name(), run_id, lease=60) as beat:
        run_import(..., progress=beat.report)      # raises RunCancelled once cancelled
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from usersync import db, runqueue
from usersync.importer import Progress

log = logging.getLogger(__name__)

BEAT = 2.0  # seconds between beats, at most: progress shows this fresh


def worker_name() -> str:
    """This thread's name among the processes that run imports: host, process and thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


class Heartbeat:
    """Renews the lease of the run in progress and publishes its progress, on a thread of
    its own, so a long read or a long apply never lets the lease lapse; and notices when
    someone asks to cancel the run, which the import's next progress report then stops."""

    def __init__(
        self,
        engine: Engine,
        worker: str,
        run_id: int,
        *,
        lease: float,
        interval: float = BEAT,
        listener: Callable[[Progress], None] | None = None,
    ):
        self._engine = engine
        self._worker = worker
        self._lease = lease
        self._interval = min(interval, lease / 3)  # three beats a lease: one may fail
        self._run_id = run_id
        self._listener = listener
        self.run_ids = [run_id]  # every run this execution made (file choice "all_new")
        self.progress: Progress | None = None
        self.cancelled = False  # someone asked to cancel the run in progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="usersync-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def run_id(self) -> int:
        """The run whose lease is renewed: the one in progress."""
        return self._run_id

    @run_id.setter
    def run_id(self, run_id: int) -> None:
        self._run_id = run_id
        self.run_ids.append(run_id)
        self.progress = None
        self.cancelled = False

    def report(self, progress: Progress) -> None:
        """The import's progress callback: RunCancelled stops the import (nothing applied)."""
        if self.cancelled:
            raise runqueue.RunCancelled(self.run_id)
        self.progress = progress
        if self._listener is not None:
            self._listener(progress)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            progress, run_id = self.progress, self.run_id
            try:
                renewal = runqueue.renew(
                    self._engine,
                    run_id,
                    self._worker,
                    lease=self._lease,
                    bytes_read=progress.bytes_read if progress else None,
                    rows_read=progress.rows_read if progress else None,
                )
                if renewal.cancelling and run_id == self.run_id:
                    self.cancelled = True
            except sa_exc.DBAPIError as error:  # a busy or unreachable database: beat again
                log.warning("could not renew the lease of run %s: %s", run_id, db.reason(error))
            except Exception:
                log.exception("could not renew the lease of run %s", run_id)
