"""How the long-running commands (`usersync serve`, `usersync worker`) log: each event a line
on stderr, as text (the default) or as one JSON object (USERSYNC_LOG_FORMAT=json), which log
collectors read without parsing rules. The web server's own lines (uvicorn: its start, each
request) go the same way, so that one process writes one format.

    text: 2026-11-27 16:00:00,123 INFO usersync.worker: run 5 (sync 2, attempt 1) started
    json: {"time": "2026-11-27T16:00:00.123+00:00", "level": "INFO",
           "logger": "usersync.worker", "message": "run 5 (sync 2, attempt 1) started"}
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# uvicorn's loggers: with no handlers of their own they reach the root's.
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: time (UTC, ISO 8601), level, logger, message, and the
    exception's traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(log_format: str, level: str = "info") -> None:
    """Log `level` (one of LOG_LEVELS) and above to stderr in `log_format` (one of
    LOG_FORMATS). asyncssh tells each SSH session's steps at INFO, some 30 lines a run: they
    show at `debug` only, its warnings and errors always."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("asyncssh").setLevel(logging.INFO if level == "debug" else logging.WARNING)
    for name in _UVICORN:  # as they may be after an earlier uvicorn set them up its own way
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
