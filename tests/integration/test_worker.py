"""The worker against the real sshd, on SQLite and PostgreSQL: file choice, skip-unchanged,
the growing-file guard, after-import actions, retries, schedules and SIGTERM."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.sshd import SftpFolder
from tests.syncs import csv_bytes, drain, sync_setup
from usersync import runqueue
from usersync.store import UserStore, syncs

ALICE = csv_bytes([{"id": "u-1", "email": "alice@example.com"}])


def test_a_sync_that_runs_once_now_imports_its_file_once(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", ALICE)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_a.csv")
        assert sync.next_run_at is not None
        worker = setup.worker()
        assert drain(worker) == 1
        [run] = setup.runs(sync)
        assert run.message is None
        assert (run.status, run.trigger, run.rows_read, run.users_created) == (
            "succeeded",
            "schedule",
            1,
            1,
        )
        assert run.scheduled_for == sync.next_run_at
        assert run.path == sftp.path("userdata_a.csv")
        assert run.file_sha256 is not None
        assert run.source.startswith("sftp://")
        user = UserStore(setup.engine).get_user(setup.ws, "u-1")
        assert user is not None
        assert user.properties == {"email": "alice@example.com"}
        assert syncs.get(setup.engine, setup.ws, sync.id).next_run_at is None
        assert drain(worker) == 0


def test_run_now_queues_one_run_and_an_unchanged_file_is_skipped(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", ALICE, mtime=1_700_000_000)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_a.csv", enabled=False)
        worker = setup.worker()
        first = runqueue.enqueue(setup.engine, setup.ws, sync.id)
        assert runqueue.enqueue(setup.engine, setup.ws, sync.id) == first  # still waiting
        assert drain(worker) == 1
        runqueue.enqueue(setup.engine, setup.ws, sync.id)
        drain(worker)
        # touched, same bytes: the SHA-256 shows it is the same file
        sftp.put("userdata_a.csv", ALICE, mtime=1_700_000_500)
        runqueue.enqueue(setup.engine, setup.ws, sync.id)
        drain(worker)
        sftp.put("userdata_a.csv", csv_bytes([{"id": "u-2", "email": "bob@example.com"}]))
        runqueue.enqueue(setup.engine, setup.ws, sync.id)
        drain(worker)
        statuses = [(run.trigger, run.status) for run in setup.runs(sync)]
        assert statuses == [
            ("manual", "succeeded"),
            ("manual", "skipped"),
            ("manual", "skipped"),
            ("manual", "succeeded"),
        ]
        runs_ = setup.runs(sync)
        assert f"has not changed since run {runs_[0].id}" in (runs_[1].message or "")
        assert UserStore(setup.engine).get_user(setup.ws, "u-2") is not None


@pytest.mark.parametrize("import_unchanged", [True])
def test_a_sync_may_import_an_unchanged_file_every_time(
    tmp_path: Path, db_url: str, sftp: SftpFolder, import_unchanged: bool
) -> None:
    sftp.put("userdata_a.csv", ALICE)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_a.csv", enabled=False, import_unchanged=import_unchanged)
        worker = setup.worker()
        for _ in range(2):
            runqueue.enqueue(setup.engine, setup.ws, sync.id)
            drain(worker)
        assert [run.status for run in setup.runs(sync)] == ["succeeded", "succeeded"]
        assert [run.users_updated for run in setup.runs(sync)] == [0, 1]
