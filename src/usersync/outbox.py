"""Webhook calls off the worker's path: a worker posts each ended run here and takes its next
run at once, while one thread of the outbox makes the calls in the order the runs ended. A
receiver that is down or slow (each call may wait for 5 s and be tried again after pauses:
USERSYNC_WEBHOOK_RETRY) then delays only other webhook calls, never the imports.

    outbox = Outbox(notify)      # notify(run_id): the run's webhook call, if it has one
    outbox.post(run_id)          # returns at once
    outbox.wait(timeout=60)      # True once every posted call is made
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger("usersync.webhooks")


class Outbox:
    def __init__(self, notify: Callable[[int], None]) -> None:
        self._notify = notify
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    def post(self, run_id: int) -> None:
        """Make run `run_id`'s webhook call on the outbox's thread, after those posted before."""
        with self._idle:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="usersync-webhooks", daemon=True
                )
                self._thread.start()
        self._queue.put(run_id)

    @property
    def pending(self) -> int:
        """How many posted calls are not made yet."""
        with self._idle:
            return self._pending

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every posted call is made, for at most `timeout` seconds (None: no
        limit). True if none is left."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _work(self) -> None:
        while True:
            run_id = self._queue.get()
            try:
                self._notify(run_id)
            except Exception:  # the database went away, ...: the run stands, its call is lost
                log.exception("the webhook call for run %s could not be made", run_id)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
