"""The outbox makes posted webhook calls on its own thread, in order, and survives a failing one."""

from __future__ import annotations

import logging
import threading

import pytest

from usersync.outbox import Outbox


def test_calls_are_made_in_order_off_the_posting_thread() -> None:
    made: list[tuple[int, str]] = []
    go = threading.Event()

    def notify(run_id: int) -> None:
        go.wait(30)
        made.append((run_id, threading.current_thread().name))

    outbox = Outbox(notify)
    for run_id in (3, 1, 2):
        outbox.post(run_id)  # returns while the call waits

    assert outbox.pending == 3
    assert not outbox.wait(0)
    go.set()
    assert outbox.wait(30)
    assert made == [(3, "usersync-webhooks"), (1, "usersync-webhooks"), (2, "usersync-webhooks")]
    assert outbox.pending == 0


def test_a_call_that_raises_is_logged_and_the_next_is_made(
    caplog: pytest.LogCaptureFixture,
) -> None:
    made: list[int] = []

    def notify(run_id: int) -> None:
        if run_id == 1:
            raise RuntimeError("the database went away")
        made.append(run_id)

    outbox = Outbox(notify)
    with caplog.at_level(logging.ERROR, logger="usersync.webhooks"):
        outbox.post(1)
        outbox.post(2)
        assert outbox.wait(30)

    assert made == [2]
    assert "the webhook call for run 1 could not be made" in caplog.text
    assert "the database went away" in caplog.text


def test_an_unused_outbox_starts_no_thread_and_has_nothing_to_wait_for() -> None:
    before = {t.name for t in threading.enumerate()}
    outbox = Outbox(lambda run_id: None)

    assert outbox.wait(0)
    assert {t.name for t in threading.enumerate()} == before
