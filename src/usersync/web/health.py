"""`GET /health` for load balancers and orchestrators: 200 while the server can do its job,
503 when it cannot (the database does not answer, or holds another schema version, or the
in-process worker has stopped).

The answer needs no token, so it says what is wrong in a few words; the server log has the
details (the database's URL and the driver's message).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from sqlalchemy import exc
from sqlalchemy.engine import Engine

from usersync.db import describe, schema_version
from usersync.migrations import HEAD

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0  # seconds a health check waits for the database


def check_database(engine: Engine) -> str:
    """ "ok", or what is wrong with the database, in words fit for anyone to read."""
    try:
        version = schema_version(engine)
    except exc.DBAPIError as error:
        log.error("health: the database %s does not answer: %s", describe(engine), error.orig)
        return "not answering"
    if version != HEAD:
        log.error(
            "health: the database %s is at schema %s, not %s", describe(engine), version, HEAD
        )
        return f"at schema version {version}, where this usersync needs {HEAD}"
    return "ok"


class Probe:
    """Runs a check on a thread of its own, one at a time, and waits at most `timeout` for it:
    a database that hangs costs each health request that long, and never piles up threads
    (a request that comes while a check is still running waits for that check)."""

    def __init__(self, check: Callable[[], str], timeout: float = PROBE_TIMEOUT) -> None:
        self._check = check
        self._timeout = timeout
        self._lock = threading.Lock()
        self._pending: Future[str] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usersync-health")

    def __call__(self) -> str:
        with self._lock:
            if self._pending is None or self._pending.done():
                self._pending = self._executor.submit(self._check)
            pending = self._pending
        try:
            return pending.result(self._timeout)
        except FutureTimeout:
            return f"not answering within {self._timeout:g} s"
        except Exception:
            log.exception("health: the check failed")
            return "the check failed: see the server log"

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
