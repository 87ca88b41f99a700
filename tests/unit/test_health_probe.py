"""The health probe: a check that hangs costs a request the probe's timeout, and a request
that comes while it still hangs waits for that same check instead of starting another."""

from __future__ import annotations

import threading

from usersync.web.health import Probe


class Check:
    """A database check that answers only when the test lets it."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()

    def __call__(self) -> str:
        self.calls += 1
        self.release.wait(30)
        return "ok"


def test_a_hanging_check_is_reported_after_the_timeout_and_is_not_started_twice() -> None:
    check = Check()
    probe = Probe(check, timeout=0.05)
    try:
        assert probe() == "not answering within 0.05 s"
        assert probe() == "not answering within 0.05 s"
        assert check.calls == 1

        check.release.set()

        assert probe() == "ok"  # the hanging check's answer, or a new check's
    finally:
        check.release.set()
        probe.close()


def test_a_check_that_raises_is_reported_without_its_details() -> None:
    def broken() -> str:
        raise RuntimeError("password=hunter2")

    probe = Probe(broken)
    try:
        assert probe() == "the check failed: see the server log"
    finally:
        probe.close()
