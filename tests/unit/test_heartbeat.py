"""A run someone asked to cancel stops at the import's next progress report."""

from __future__ import annotations

from typing import Any, cast

import pytest

from usersync.heartbeat import Heartbeat
from usersync.importer import Progress
from usersync.runqueue import RunCancelled


def test_a_cancelled_run_stops_at_its_next_progress_report_and_the_next_run_does_not() -> None:
    told: list[Progress] = []
    beat = Heartbeat(cast(Any, None), "w", 7, lease=60, interval=2, listener=told.append)
    first = Progress(10, 100, 1, 0, False)

    beat.report(first)
    beat.cancelled = True  # as the heartbeat's thread sets it
    with pytest.raises(RunCancelled, match=r"^cancelled while it ran \(run 7\)"):
        beat.report(Progress(20, 100, 2, 0, False))

    beat.run_id = 8  # the next file's run (file choice "all_new")
    beat.report(first)
    assert told == [first, first]
    assert beat.run_ids == [7, 8]
