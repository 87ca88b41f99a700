"""The long-running commands' log lines: text, or one JSON object a line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timedelta

import pytest
import uvicorn

from usersync import logs


def record(message: str, *args: object, exc_info: bool = False) -> logging.LogRecord:
    error = None
    if exc_info:
        try:
            raise ValueError("bad value")
        except ValueError:
            error = sys.exc_info()
    return logging.LogRecord("usersync.worker", logging.WARNING, __file__, 1, message, args, error)


def test_a_json_line_holds_the_time_in_utc_the_level_the_logger_and_the_message() -> None:
    line = logs.JsonFormatter().format(record("run %s started: %s", 5, "ünïcode"))

    entry = json.loads(line)
    assert "\n" not in line
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "usersync.worker"
    assert entry["message"] == "run 5 started: ünïcode"
    assert datetime.fromisoformat(entry["time"]).utcoffset() == timedelta(0)
    assert "ünïcode" in line  # as it is, not \\u-escaped


def test_a_json_line_carries_the_traceback_of_an_exception() -> None:
    entry = json.loads(logs.JsonFormatter().format(record("failed", exc_info=True)))

    assert entry["exception"].startswith("Traceback")
    assert "ValueError: bad value" in entry["exception"]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_configure_sends_info_and_uvicorns_lines_to_one_handler_in_the_format(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    # As an earlier uvicorn in this process leaves its loggers (the browser tests' server).
    uvicorn.Config(app=lambda: None, log_level="warning")
    try:
        logs.configure(log_format)
        logs.configure(log_format)  # again: still one handler
        assert len(root.handlers) == 1
        logging.getLogger("usersync.worker").info("run %s started", 7)
        logging.getLogger("uvicorn.access").info('"GET /health HTTP/1.1" 200')
        lines = capsys.readouterr().err.splitlines()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)

    assert len(lines) == 2
    if log_format == "json":
        assert [json.loads(line)["logger"] for line in lines] == [
            "usersync.worker",
            "uvicorn.access",
        ]
    else:
        assert lines[0].endswith(" INFO usersync.worker: run 7 started")
