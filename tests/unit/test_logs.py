"""The long-running commands' log lines: text, or one JSON object a line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
import uvicorn

from usersync import logs


@contextmanager
def configured(log_format: str, level: str) -> Iterator[None]:
    """`logs.configure` for one test: the root's handlers and levels are put back after."""
    root, ssh = logging.getLogger(), logging.getLogger("asyncssh")
    saved = root.handlers[:], root.level, ssh.level
    try:
        logs.configure(log_format, level)
        yield
    finally:
        root.handlers[:], root_level, ssh_level = saved
        root.setLevel(root_level)
        ssh.setLevel(ssh_level)


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
    # As an earlier uvicorn in this process leaves its loggers (the browser tests' server).
    uvicorn.Config(app=lambda: None, log_level="warning")
    with configured(log_format, "info"):
        logs.configure(log_format)  # again: still one handler
        assert len(root.handlers) == 1
        logging.getLogger("usersync.worker").info("run %s started", 7)
        logging.getLogger("uvicorn.access").info('"GET /health HTTP/1.1" 200')
        lines = capsys.readouterr().err.splitlines()

    assert len(lines) == 2
    if log_format == "json":
        assert [json.loads(line)["logger"] for line in lines] == [
            "usersync.worker",
            "uvicorn.access",
        ]
    else:
        assert lines[0].endswith(" INFO usersync.worker: run 7 started")


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        ("info", ["usersync.worker INFO", "usersync.worker WARNING", "asyncssh WARNING"]),
        ("warning", ["usersync.worker WARNING", "asyncssh WARNING"]),
        (
            "debug",
            [
                *("usersync.worker DEBUG", "usersync.worker INFO", "usersync.worker WARNING"),
                *("asyncssh INFO", "asyncssh WARNING"),
            ],
        ),
    ],
)
def test_the_level_says_what_shows_and_ssh_sessions_steps_only_at_debug(
    level: str, shown: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with configured("json", level):
        for name in ("usersync.worker", "asyncssh"):
            logger = logging.getLogger(name)
            logger.debug("a detail")
            logger.info("a step")  # asyncssh: "[conn=6] Beginning auth for user demo", say
            logger.warning("a warning")
        lines = capsys.readouterr().err.splitlines()

    entries = [json.loads(line) for line in lines]
    assert [f"{entry['logger']} {entry['level']}" for entry in entries] == shown
