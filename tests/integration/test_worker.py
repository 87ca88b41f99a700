"""The worker against the real sshd, on SQLite and PostgreSQL: file choice, skip-unchanged,
the growing-file guard, after-import actions, retries, schedules and SIGTERM."""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.hooks import signature, webhook_receiver
from tests.servers.netpath import CuttablePath
from tests.servers.sshd import SftpFolder
from tests.syncs import FAST, SyncSetup, csv_bytes, drain, sync_setup
from tests.worker_procs import wait_for
from usersync import runqueue, service
from usersync import worker as worker_module
from usersync.errors import Conflict
from usersync.store import UserStore, connections, runs, syncs
from usersync.store.runs import RunNotFound
from usersync.store.syncs import Sync

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


def answers(setup: SyncSetup) -> bool | None:
    """Whether the setup's database answers (None: not yet)."""
    try:
        with setup.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError:
        return None
    return True


def test_a_worker_outlives_a_lost_database_and_runs_the_sync_once_it_is_back(
    tmp_path: Path, pg_url: str, sftp: SftpFolder, caplog: pytest.LogCaptureFixture
) -> None:
    sftp.put("userdata_a.csv", ALICE)
    port = make_url(pg_url).port
    assert port is not None
    with CuttablePath(port) as path, sync_setup(tmp_path, path.database_url(pg_url), sftp) as setup:
        worker = setup.worker()
        stop = threading.Event()
        running = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        running.start()
        try:
            path.cut()  # the database's host is gone: no answer, no reset
            lost = wait_for(
                "the worker to notice",
                lambda: (
                    [r for r in caplog.records if "stopped answering" in r.getMessage()] or None
                ),
                timeout=30,
            )
            path.mend()
            wait_for("the database to answer again", lambda: answers(setup), timeout=30)
            sync = setup.sync(file="userdata_a.csv")  # due at once
            [run] = wait_for(
                "the sync's run to end",
                lambda: [r for r in setup.runs(sync) if r.finished_at is not None] or None,
                timeout=30,
            )
        finally:
            stop.set()
            running.join(timeout=30)

        assert lost[0].levelname == "WARNING"
        assert lost[0].getMessage().startswith(f"worker {worker.name}: the database stopped")
        assert lost[0].exc_info is None  # one line, no traceback
        assert running.is_alive() is False
        assert (run.status, run.users_created) == ("succeeded", 1)


def _fire_next(setup: SyncSetup, sync: Sync) -> None:
    """Let the sync's next fire time come (the scheduler's clock moved past it)."""
    due = syncs.get(setup.engine, setup.ws, sync.id).next_run_at
    assert due is not None
    assert runqueue.schedule_due(setup.engine, now=due + timedelta(seconds=1))


def test_a_scheduled_run_skips_an_unchanged_file_and_run_now_imports_it(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", ALICE, mtime=1_700_000_000)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_a.csv", schedule={"type": "daily", "time": "01:00"})
        worker = setup.worker()
        _fire_next(setup, sync)
        assert drain(worker) == 1
        _fire_next(setup, sync)
        drain(worker)
        # touched, same bytes: the SHA-256 shows it is the same file
        sftp.put("userdata_a.csv", ALICE, mtime=1_700_000_500)
        _fire_next(setup, sync)
        drain(worker)
        first = runqueue.enqueue(setup.engine, setup.ws, sync.id)
        assert runqueue.enqueue(setup.engine, setup.ws, sync.id) == first  # still waiting
        drain(worker)
        sftp.put("userdata_a.csv", csv_bytes([{"id": "u-2", "email": "bob@example.com"}]))
        _fire_next(setup, sync)
        drain(worker)
        statuses = [(run.trigger, run.status) for run in setup.runs(sync)]
        assert statuses == [
            ("schedule", "succeeded"),
            ("schedule", "skipped"),
            ("schedule", "skipped"),
            ("manual", "succeeded"),
            ("schedule", "succeeded"),
        ]
        runs_ = setup.runs(sync)
        assert f"has not changed since run {runs_[0].id}" in (runs_[1].message or "")
        assert runs_[3].users_updated == 1
        assert UserStore(setup.engine).get_user(setup.ws, "u-2") is not None


def test_a_new_sync_never_takes_a_deleted_syncs_id_or_its_runs(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", ALICE, mtime=1_700_000_000)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        old = setup.sync(file="userdata_a.csv", schedule={"type": "daily", "time": "01:00"})
        worker = setup.worker()
        _fire_next(setup, old)
        assert drain(worker) == 1
        syncs.delete(setup.engine, setup.ws, old.id)

        new = setup.sync(file="userdata_a.csv", schedule={"type": "daily", "time": "01:00"})
        _fire_next(setup, new)
        drain(worker)

        assert new.id != old.id
        # The same file, unchanged: still the new sync's first import, not a skip.
        assert [(run.trigger, run.status) for run in setup.runs(new)] == [("schedule", "succeeded")]


def _daily_reimport(setup: SyncSetup, **values: Any) -> tuple[Sync, Callable[[], None]]:
    """A daily sync of userdata_a.csv that imports it even unchanged (and `values`), and what
    fires it once and runs that run."""
    sync = setup.sync(
        file="userdata_a.csv",
        import_unchanged=True,
        schedule={"type": "daily", "time": "01:00"},
        **values,
    )
    worker = setup.worker()

    def once() -> None:
        _fire_next(setup, sync)
        drain(worker)

    return sync, once


def test_a_sync_may_import_an_unchanged_file_every_time(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", ALICE)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync, once = _daily_reimport(setup)
        once()
        once()
        assert [run.status for run in setup.runs(sync)] == ["succeeded", "succeeded"]
        assert [run.users_updated for run in setup.runs(sync)] == [0, 1]


def test_a_sync_that_skips_unchanged_users_leaves_them_as_they_were(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", ALICE)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync, once = _daily_reimport(setup, skip_unchanged_users=True)
        once()
        [user] = UserStore(setup.engine).list_users(setup.ws)
        once()

        counts = [(r.users_created, r.users_updated, r.users_unchanged) for r in setup.runs(sync)]
        assert counts == [(1, 0, 0), (0, 0, 1)]
        assert UserStore(setup.engine).list_users(setup.ws) == [user]  # updated_at too


def _users(setup: SyncSetup) -> list[str]:
    return [user.user_id for user in UserStore(setup.engine).list_users(setup.ws, limit=100)]


def test_newest_imports_the_newest_eligible_file(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_old.csv", csv_bytes([{"id": "old", "email": "o@x"}]), mtime=1_700_000_000)
    sftp.put("userdata_new.csv", csv_bytes([{"id": "new", "email": "n@x"}]), mtime=1_700_000_900)
    sftp.put("other_newer.csv", csv_bytes([{"id": "x", "email": "x@x"}]), mtime=1_700_009_000)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file_choice="newest", enabled=False)
        runqueue.enqueue(setup.engine, setup.ws, sync.id)
        drain(setup.worker())
        [run] = setup.runs(sync)
        assert (run.status, run.path) == ("succeeded", sftp.path("userdata_new.csv"))
        assert _users(setup) == ["new"]


def test_all_new_imports_each_new_file_once_oldest_first(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    for i, mtime in ((2, 1_700_000_200), (1, 1_700_000_100), (3, 1_700_000_300)):
        sftp.put(f"userdata_{i}.csv", csv_bytes([{"id": f"u-{i}", "email": "e"}]), mtime=mtime)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file_choice="all_new", enabled=False)
        worker = setup.worker()
        runqueue.enqueue(setup.engine, setup.ws, sync.id)
        drain(worker)
        names = [posixpath.basename(run.path) for run in setup.runs(sync)]
        assert names == ["userdata_1.csv", "userdata_2.csv", "userdata_3.csv"]
        assert {run.status for run in setup.runs(sync)} == {"succeeded"}
        sftp.put("userdata_4.csv", csv_bytes([{"id": "u-4", "email": "e"}]), mtime=1_700_000_400)
        runqueue.enqueue(setup.engine, setup.ws, sync.id)
        drain(worker)
        runqueue.enqueue(setup.engine, setup.ws, sync.id)
        drain(worker)
        later = setup.runs(sync)[3:]
        assert [(posixpath.basename(r.path), r.status) for r in later] == [
            ("userdata_4.csv", "succeeded"),
            (posixpath.basename(sftp.path()), "skipped"),
        ]
        assert later[1].message == f"no new file in {sftp.path()}"
        assert _users(setup) == ["u-1", "u-2", "u-3", "u-4"]


def test_a_file_modified_long_ago_is_read_without_the_growing_file_guards_wait(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", csv_bytes([{"id": "u-1", "email": "e"}]), mtime=1_700_000_000)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_a.csv", enabled=False)
        worker = setup.worker(dataclasses.replace(FAST, settle=600.0))
        runqueue.enqueue(setup.engine, setup.ws, sync.id)

        draining = threading.Thread(target=drain, args=(worker,), daemon=True)
        draining.start()
        draining.join(timeout=60)  # the guard's second look would take 600 s

        assert not draining.is_alive(), "the worker waited for the file to stop changing"
        [done] = setup.runs(sync)
        assert done.status == "succeeded"


def test_a_file_still_being_written_is_read_once_it_stops_changing(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    rows = [{"id": f"u-{i}", "email": "e"} for i in range(3)]
    local = sftp.put("userdata_a.csv", csv_bytes(rows[:1]))
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_a.csv", enabled=False)
        worker = setup.worker(dataclasses.replace(FAST, settle=0.3))
        runqueue.enqueue(setup.engine, setup.ws, sync.id)
        writing = threading.Event()
        writer_done = threading.Event()

        def append_while_asked() -> None:  # a writer that keeps the file changing
            count = 0
            while not writing.is_set():
                count += 1
                with local.open("a") as file:
                    file.write(f"w-{count},e\n")
                now = time.time()  # a writer's file is modified now: the guard looks twice
                os.utime(local, (now, now))
                writing.wait(0.02)
            writer_done.set()

        thread = threading.Thread(target=append_while_asked)
        thread.start()
        try:
            assert worker.tick()
        finally:
            writing.set()
            thread.join()
        [waiting] = setup.runs(sync)
        assert waiting.status == "queued"
        assert "still being written" in (waiting.message or "")
        assert waiting.not_before is not None
        deadline = time.monotonic() + 10
        while setup.runs(sync)[0].status == "queued" and time.monotonic() < deadline:
            worker.tick()  # the run waits for its not_before, then reads the finished file
            time.sleep(0.05)
        [done] = setup.runs(sync)
        assert done.status == "succeeded"
        assert done.rows_read == len(local.read_text().splitlines()) - 1


@pytest.mark.parametrize("action", ["move", "delete"])
def test_after_import_the_file_is_moved_or_deleted(
    tmp_path: Path, db_url: str, sftp: SftpFolder, action: str
) -> None:
    sftp.mkdir("in", writable=True)
    sftp.mkdir("done", writable=True)
    sftp.put("in/userdata_a.csv", ALICE, writable=True)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        extra = {"move_to": "done"} if action == "move" else {}
        sync = setup.sync(folder="in", file="userdata_a.csv", after_import=action, **extra)
        drain(setup.worker())
        [run] = setup.runs(sync)
        assert run.status == "succeeded"
        assert not sftp.local("in/userdata_a.csv").exists()
        if action == "move":
            assert sftp.local("done/userdata_a.csv").read_bytes() == ALICE
            assert run.message == f"moved to {sftp.path('done/userdata_a.csv')}"
        else:
            assert run.message == "deleted from the server"
        assert _users(setup) == ["u-1"]


def test_a_move_to_a_folder_that_is_not_there_says_so_and_the_import_stands(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.mkdir("in", writable=True)
    sftp.put("in/userdata_a.csv", ALICE, writable=True)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(folder="in", file="userdata_a.csv", after_import="move", move_to="gone")
        drain(setup.worker())
        [run] = setup.runs(sync)

        assert run.status == "succeeded"
        assert run.message == (
            f"imported, but the file could not be moved: there is no folder "
            f"{sftp.path('gone')} on the server; create it, or change where the sync moves "
            "its files"
        )
        assert sftp.local("in/userdata_a.csv").read_bytes() == ALICE
        assert _users(setup) == ["u-1"]


def test_a_dry_run_checks_the_file_and_applies_moves_and_tells_nothing(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.mkdir("in", writable=True)
    sftp.mkdir("done", writable=True)
    rows = [
        {"id": "u-1", "email": "alice@example.com", "age": "41"},
        {"id": "u-2", "email": "bob@example.com", "age": "old"},
    ]
    sftp.put("in/userdata_a.csv", csv_bytes(rows, ("id", "email", "age")), writable=True)
    with webhook_receiver() as hook, sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(
            folder="in",
            file="userdata_a.csv",
            mapping={
                "user_id": "id",
                "properties": {"email": "email", "age": "age"},
                "types": {"age": "integer"},
            },
            after_import="move",
            move_to="done",
            webhook_url=hook.url,
            webhook_on="always",
            schedule={"type": "daily", "time": "01:00"},
        )
        worker = setup.worker()
        dry = runqueue.enqueue(setup.engine, setup.ws, sync.id, dry_run=True)
        assert runqueue.enqueue(setup.engine, setup.ws, sync.id, dry_run=True) == dry

        assert drain(worker) == 1
        [checked] = setup.runs(sync)
        assert (checked.id, checked.dry_run, checked.status) == (dry, True, "partial")
        assert (checked.rows_read, checked.users_created, checked.rows_rejected) == (2, 1, 1)
        assert checked.message is None  # not moved
        assert checked.webhook_delivery is None
        assert _users(setup) == []
        assert sftp.local("in/userdata_a.csv").exists()
        assert hook.pending() == []

        # The next scheduled run imports the file: a dry run is no import of it.
        _fire_next(setup, sync)
        assert drain(worker) == 1
        imported = setup.runs(sync)[-1]
        assert (imported.trigger, imported.status, imported.dry_run) == (
            "schedule",
            "partial",
            False,
        )
        assert imported.users_created == 1
        assert _users(setup) == ["u-1"]
        assert sftp.local("done/userdata_a.csv").exists()
        [(_, body)] = hook.pending()
        assert json.loads(body)["run_id"] == imported.id


def test_a_cancelled_run_applies_nothing_and_is_not_tried_again(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", ALICE)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_a.csv", enabled=False)
        worker = setup.worker()
        queued = runqueue.enqueue(setup.engine, setup.ws, sync.id)

        dropped = runqueue.cancel(setup.engine, setup.ws, queued)
        assert (dropped.status, dropped.message) == ("failed", "cancelled before it started")
        assert drain(worker) == 0

        # Asked while it runs: the worker stops it (at its heartbeat, or before it commits).
        running = runqueue.enqueue(setup.engine, setup.ws, sync.id)
        claimed = runqueue.claim(setup.engine, worker.name, lease=FAST.lease)
        assert claimed is not None
        assert claimed.id == running
        asked = runqueue.cancel(setup.engine, setup.ws, running)
        assert asked.status == "running"
        assert asked.cancel_requested_at is not None
        worker.execute(claimed)
        assert drain(worker) == 0  # no retry
        ended = setup.runs(sync)[-1]
        assert (ended.id, ended.status) == (running, "failed")
        assert ended.message == f"cancelled while it ran (run {running}): nothing was applied"
        assert _users(setup) == []

        done = runqueue.enqueue(setup.engine, setup.ws, sync.id)
        drain(worker)
        with pytest.raises(Conflict, match=rf"run {done} has ended \(succeeded\)"):
            runqueue.cancel(setup.engine, setup.ws, done)
        with pytest.raises(RunNotFound):
            runqueue.cancel(setup.engine, setup.ws + 1000, done)
        assert _users(setup) == ["u-1"]


def test_a_failed_move_is_noted_and_the_import_stands(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", ALICE)  # in a folder the SFTP user cannot write to
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_a.csv", after_import="delete")
        drain(setup.worker())
        [run] = setup.runs(sync)
        assert run.status == "succeeded"
        assert "imported, but the file could not be deleted" in (run.message or "")
        assert _users(setup) == ["u-1"]


def test_transient_failures_are_retried_and_permanent_ones_are_not(
    tmp_path: Path, db_url: str, sftp: SftpFolder, closed_port: int
) -> None:
    sftp.put("userdata_a.csv", ALICE)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        gone = setup.sync(file="userdata_missing.csv", enabled=False)
        runqueue.enqueue(setup.engine, setup.ws, gone.id)
        drain(setup.worker())
        [missing] = setup.runs(gone)  # a file rule: permanent, no retry
        assert missing.status == "failed"
        assert "does not exist" in (missing.message or "")
        connections.update(
            setup.engine, setup.box, setup.ws, setup.connection_id, {"port": closed_port}
        )
        connections.update(
            setup.engine,
            setup.box,
            setup.ws,
            setup.connection_id,
            {"host_key_fingerprint": "SHA256:" + "A" * 43},
        )
        down = setup.sync(file="userdata_a.csv", enabled=False)
        runqueue.enqueue(setup.engine, setup.ws, down.id)
        drain(setup.worker())
        attempts = setup.runs(down)
        assert [(r.trigger, r.attempt, r.status) for r in attempts] == [
            ("manual", 1, "failed"),
            ("retry", 2, "failed"),
            ("retry", 3, "failed"),
        ]
        assert all("refused the connection" in (r.message or "") for r in attempts)


def test_disabling_a_sync_drops_its_waiting_runs_and_enabling_schedules_it(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(
            file="userdata_a.csv", enabled=False, schedule={"type": "daily", "time": "01:00"}
        )
        assert sync.next_run_at is None
        runqueue.enqueue(setup.engine, setup.ws, sync.id)
        on = syncs.set_enabled(setup.engine, setup.ws, sync.id, True)
        assert on.next_run_at is not None
        assert on.next_run_at.astimezone(ZoneInfo("UTC")).strftime("%H:%M") == "01:00"
        off = syncs.set_enabled(setup.engine, setup.ws, sync.id, False)
        assert off.next_run_at is None
        [dropped] = setup.runs(sync)
        assert dropped.status == "skipped"
        assert dropped.message == "the sync was switched off before this run started"
        assert drain(setup.worker()) == 0


def test_a_run_cancelled_while_its_file_is_still_written_ends_instead_of_waiting(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    local = sftp.put("userdata_a.csv", ALICE)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_a.csv", enabled=False)
        worker = setup.worker(dataclasses.replace(FAST, settle=0.5))
        run_id = runqueue.enqueue(setup.engine, setup.ws, sync.id)
        writing = threading.Event()

        def write_and_cancel() -> None:  # the file keeps changing; the run is cancelled
            cancelled = False
            while not writing.is_set():
                with local.open("a") as file:
                    file.write("u-more,e\n")
                going = runs.get_run(setup.engine, run_id)
                if not cancelled and going is not None and going.status == "running":
                    runqueue.cancel(setup.engine, setup.ws, run_id)
                    cancelled = True
                writing.wait(0.02)

        thread = threading.Thread(target=write_and_cancel)
        thread.start()
        try:
            worker.tick()
        finally:
            writing.set()
            thread.join()
        drain(worker)

        [run] = setup.runs(sync)
        assert run.status == "failed"
        assert run.message == (
            f"cancelled while it waited for its file to stop changing (run {run_id}): "
            "nothing was applied"
        )


def test_changing_a_sync_that_is_off_keeps_its_run_now(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", ALICE)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_a.csv", enabled=False)
        runqueue.enqueue(setup.engine, setup.ws, sync.id)

        syncs.update(setup.engine, setup.box, setup.ws, sync.id, {"name": "renamed"})

        assert drain(setup.worker()) == 1
        [run] = setup.runs(sync)
        assert run.status == "succeeded"


def test_webhooks_report_runs_signed_and_a_dead_one_fails_nothing(
    tmp_path: Path, db_url: str, sftp: SftpFolder, closed_port: int
) -> None:
    sftp.put("userdata_a.csv", ALICE)
    no_pause = {"USERSYNC_WEBHOOK_RETRY": "0"}
    with webhook_receiver() as hook, sync_setup(tmp_path, db_url, sftp, **no_pause) as setup:
        always = setup.sync(
            file="userdata_a.csv",
            webhook_url=hook.url,
            webhook_on="always",
            webhook_secret="s3cret-hook",
        )
        failing_only = setup.sync(
            file="userdata_a.csv", webhook_url=hook.url, import_unchanged=True
        )
        dead = setup.sync(
            file="userdata_a.csv",
            webhook_url=f"http://127.0.0.1:{closed_port}/",
            webhook_on="always",
        )
        drain(setup.worker())
        assert [r.status for r in setup.runs(always)] == ["succeeded"]
        assert [r.status for r in setup.runs(failing_only)] == ["succeeded"]
        assert [r.status for r in setup.runs(dead)] == ["succeeded"]
        [(headers, body)] = hook.pending()  # "failure" webhooks stay quiet on success
        payload = json.loads(body)
        assert payload["sync_id"] == always.id
        assert payload["status"] == "succeeded"
        assert payload["users_created"] + payload["users_updated"] == 1
        assert headers["X-Usersync-Signature"] == signature("s3cret-hook", body)
        assert b"s3cret-hook" not in body
        deliveries = [setup.runs(s)[0].webhook_delivery for s in (always, failing_only, dead)]
        assert deliveries[:2] == ["answered 204", None]  # no call, nothing to say
        assert (deliveries[2] or "").startswith("could not be reached: ")
        assert (deliveries[2] or "").endswith("(attempt 2)")


def test_a_slow_webhook_does_not_hold_up_the_next_run(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", ALICE)
    answer = threading.Event()
    with webhook_receiver(held=answer) as hook, sync_setup(tmp_path, db_url, sftp) as setup:
        hooked = setup.sync(file="userdata_a.csv", webhook_url=hook.url, webhook_on="always")
        after = setup.sync(file="userdata_a.csv", import_unchanged=True)
        worker = setup.worker()

        assert worker.tick()
        assert worker.tick()
        hook.next_call()  # it reached the receiver, which has not answered yet
        assert [r.status for r in setup.runs(after)] == ["succeeded"]
        assert setup.runs(hooked)[0].webhook_delivery is None
        answer.set()
        assert worker.outbox.wait(60)
        # A loaded machine may let the first attempt time out before the answer: then the
        # second one is answered at once.
        assert (setup.runs(hooked)[0].webhook_delivery or "").startswith("answered 204")


def test_a_worker_stopped_at_once_after_the_file_was_applied_records_it_as_applied(
    tmp_path: Path, db_url: str, sftp: SftpFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"id": "u-1", "age": "42"}, {"id": "u-2", "age": "abc"}]  # the 2nd: rejected
    sftp.put("userdata_a.csv", csv_bytes(rows, columns=("id", "age")))
    with sync_setup(tmp_path, db_url, sftp) as setup:
        mapping = {"user_id": "id", "properties": {"age": "age"}, "types": {"age": "integer"}}
        sync = setup.sync(file="userdata_a.csv", mapping=mapping)
        worker = setup.worker()

        record = service.record_outcome  # what the worker calls
        calls = []

        def interrupted(*args: Any, **kwargs: Any) -> bool:
            calls.append(kwargs["note"])
            if len(calls) == 1:  # the second SIGTERM, as the outcome is being recorded
                raise KeyboardInterrupt
            return record(*args, **kwargs)

        monkeypatch.setattr(worker_module, "record_outcome", interrupted)
        monkeypatch.setattr(service, "record_outcome", interrupted)  # (record_applied's)
        with pytest.raises(KeyboardInterrupt):
            worker.run(threading.Event())
        monkeypatch.undo()

        assert len(calls) == 2  # the interrupted recording, then the worker's own
        [run] = setup.runs(sync)
        assert (run.status, run.users_created, run.rows_rejected) == ("partial", 1, 1)
        assert run.message is not None
        assert run.message.startswith(
            "the worker was stopped at once (a second SIGTERM or Ctrl-C) after the file was applied"
        )
        assert UserStore(setup.engine).get_user(setup.ws, "u-1") is not None
        assert drain(worker) == 0  # not tried again: it was applied
