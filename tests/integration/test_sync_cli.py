"""`usersync sync list|run|on|off` against the real sshd and both databases: a run in the
command's own process with its exit code, webhook and summary; waiting for the sync's run in
progress; switching a sync on and off."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.cli import start_usersync, stop_when, usersync, wait_for_progress
from tests.hooks import webhook_receiver
from tests.servers.netpath import CuttablePath
from tests.servers.sshd import SftpFolder
from tests.syncs import SyncSetup, csv_bytes, sync_setup
from tests.worker_procs import wait_for
from usersync import runqueue
from usersync.store import UserStore, runs, syncs
from usersync.store.syncs import Sync

PEOPLE = csv_bytes(
    [{"id": "u-1", "email": "ann@example.com"}, {"id": "u-2", "email": "bob@example.com"}]
)
AGES = b"id,age\nu-1,42\nu-2,abc\n"
AGE_MAPPING = {"user_id": "id", "properties": {"age": "age"}, "types": {"age": "integer"}}


def ages_sync(setup: SyncSetup, sftp: SftpFolder) -> Sync:
    """A sync of a two-row file whose second row has an age that is not a number."""
    sftp.put("userdata_ages.csv", AGES)
    return setup.sync(file="userdata_ages.csv", mapping=AGE_MAPPING)


def env_of(tmp_path: Path, db_url: str, **more: str) -> dict[str, str]:
    """The command's environment: the database and data folder (its secret key) of
    `sync_setup(tmp_path, db_url, ...)`, and no wait for files that may still be growing."""
    return {
        "USERSYNC_DATA_DIR": str(tmp_path / "data"),
        "USERSYNC_DB": db_url,
        "USERSYNC_SETTLE_SECONDS": "0",
        **more,
    }


def test_a_sync_runs_now_in_the_command_and_its_webhook_hears_of_it(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_people.csv", PEOPLE)
    env = env_of(tmp_path, db_url)
    with webhook_receiver() as hook, sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(
            name="People",
            file="userdata_people.csv",
            enabled=False,
            schedule={"type": "daily", "time": "01:00"},
            webhook_url=hook.url,
            webhook_on="always",
        )

        listed = usersync(env, "sync", "list")
        ran = usersync(env, "sync", "run", str(sync.id), "--json")
        again = usersync(env, "sync", "run", str(sync.id), "--progress")

        assert listed.exit_code == 0, listed.stderr
        header, row = listed.stdout.splitlines()
        assert header.split() == [
            "SYNC",
            "NAME",
            "ON",
            "SCHEDULE",
            "NEXT",
            "RUN",
            "LAST",
            "RUN",
            "READS",
        ]
        assert row.split()[:3] == [str(sync.id), "People", "off"]
        assert "At 01:00, every day (UTC)" in row
        assert ran.exit_code == 0, ran.stderr
        [run] = ran.json()["items"]
        assert (run["status"], run["trigger"], run["users_created"]) == ("succeeded", "manual", 2)
        assert UserStore(setup.engine).get_user(setup.ws, "u-2") is not None
        assert again.exit_code == 0, again.stderr
        assert again.stdout.startswith(f"Run {run['id'] + 1} succeeded: 2 rows read, 0 created")
        assert "applying 2 rows..." in again.stderr
        reports = [json.loads(body) for _, body in hook.pending()]
        assert [(r["run_id"], r["status"]) for r in reports] == [
            (run["id"], "succeeded"),
            (run["id"] + 1, "succeeded"),
        ]
        after = usersync(env, "sync", "list", "--json").json()["items"]
        assert [(s["id"], s["enabled"]) for s in after] == [(sync.id, False)]


def test_a_run_with_rejected_rows_exits_1_and_a_failed_one_5_naming_why(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    env = env_of(tmp_path, db_url)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        ages = ages_sync(setup, sftp)
        gone = setup.sync(file="userdata_gone.csv")

        partial = usersync(env, "sync", "run", str(ages.id))
        failed = usersync(env, "sync", "run", str(gone.id))
        unknown = usersync(env, "sync", "run", "999")

    assert partial.exit_code == 1, partial.stderr
    assert "1 rejected" in partial.stdout
    assert "usersync errors" in partial.stdout
    assert failed.exit_code == 5
    assert "failed" in failed.stdout
    assert "userdata_gone.csv" in failed.stderr
    assert unknown.exit_code == 2
    assert "there is no sync 999" in unknown.stderr


def test_a_dry_run_reports_what_would_change_and_changes_nothing(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    env = env_of(tmp_path, db_url)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        ages = ages_sync(setup, sftp)

        checked = usersync(env, "sync", "run", str(ages.id), "--dry-run")
        as_json = usersync(env, "sync", "run", str(ages.id), "--dry-run", "--json")
        listed = usersync(env, "runs")
        syncs_listed = usersync(env, "sync", "list")

        assert UserStore(setup.engine).get_user(setup.ws, "u-1") is None

    assert checked.exit_code == 1, checked.stderr  # as `usersync import --dry-run`
    assert checked.stdout.startswith(
        "Run 1 partial (dry run: nothing applied): 2 rows read, 1 would be created, "
        "0 would be updated, 1 rejected"
    )
    [run] = as_json.json()["items"]
    assert (run["dry_run"], run["users_created"], run["rows_rejected"]) == (True, 1, 1)
    assert listed.stdout.splitlines()[1].split()[:4] == ["2", "partial", "(dry", "run)"]
    assert "2 partial (dry run)" in syncs_listed.stdout.splitlines()[1]


def test_cancel_ends_a_queued_run_asks_a_running_one_to_stop_and_refuses_an_ended_one(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    env = env_of(tmp_path, db_url)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = ages_sync(setup, sftp)
        queued = runqueue.enqueue(setup.engine, setup.ws, sync.id)
        dropped = usersync(env, "cancel", str(queued))
        again = usersync(env, "cancel", str(queued), "--json")
        running = runqueue.enqueue(setup.engine, setup.ws, sync.id)
        assert runqueue.claim(setup.engine, "elsewhere", lease=60) is not None
        asked = usersync(env, "cancel", str(running))
        runs.finish_run(setup.engine, running, status="failed", message="stopped elsewhere")
        ended = usersync(env, "sync", "run", str(sync.id))
        refused = usersync(env, "cancel", str(running + 1))
        unknown = usersync(env, "cancel", "999")

    assert dropped.exit_code == 0, dropped.stderr
    assert dropped.stdout == f"Run {queued} failed: cancelled before it started\n"
    assert again.json()["cancel_requested_at"] is not None
    assert asked.exit_code == 0, asked.stderr
    assert asked.stdout == f"Run {running} is running: its worker stops it within a few seconds.\n"
    assert ended.exit_code == 1, ended.stderr
    assert refused.exit_code == 2
    assert f"run {running + 1} has ended (partial): there is nothing to cancel" in refused.stderr
    assert unknown.exit_code == 2
    assert "there is no run 999" in unknown.stderr


def test_a_sync_run_waits_for_the_syncs_run_in_progress_to_end(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_people.csv", PEOPLE)
    env = env_of(tmp_path, db_url, USERSYNC_WORKER_POLL="0.05", USERSYNC_WORKER_LEASE="1")
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_people.csv", enabled=False)
        held = runqueue.enqueue(setup.engine, setup.ws, sync.id)
        claimed = runqueue.claim(setup.engine, "a-worker-that-died", lease=1.0)
        assert claimed is not None
        assert claimed.id == held

        ran = usersync(env, "sync", "run", str(sync.id))

        assert ran.exit_code == 0, ran.stderr
        assert f"sync {sync.id} is running run {held}: run {held + 1} starts when it ends" in (
            ran.stderr
        )
        assert ran.stdout.startswith(f"Run {held + 1} succeeded: 2 rows read, 2 created")
        statuses = {r.id: r.status for r in setup.runs(sync)}
        assert (statuses[held], statuses[held + 1]) == ("failed", "succeeded")


def test_a_sync_run_waits_for_a_file_still_being_written_then_imports_it(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    local = sftp.put("userdata_people.csv", PEOPLE)
    env = env_of(tmp_path, db_url, USERSYNC_SETTLE_SECONDS="0.3")
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_people.csv", enabled=False)
        complete = threading.Event()

        def write() -> None:  # rows keep coming until the command says it waits for them
            n = 0
            while not complete.wait(0.05):
                n += 1
                with local.open("a") as file:
                    file.write(f"u-late-{n},late{n}@example.com\n")

        thread = threading.Thread(target=write)
        thread.start()
        try:
            proc = start_usersync(env, "sync", "run", str(sync.id), "--json")
            wait_for_progress(proc, "is still being written")
        finally:
            complete.set()
            thread.join()
        out, err = proc.communicate(timeout=120)

        assert proc.returncode == 0, err
        [run] = json.loads(out)["items"]
        assert run["status"] == "succeeded"  # not left queued with the command done
        assert run["users_created"] >= 3  # the rows written while it waited too


def test_ctrl_c_stops_the_run_which_ends_failed_without_a_retry_or_a_user(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    rows = [{"id": f"u-{n}", "email": f"user{n}@example.com"} for n in range(400_000)]
    sftp.put("userdata_big.csv", csv_bytes(rows))
    env = env_of(tmp_path, db_url)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_big.csv", enabled=False)
        proc = start_usersync(env, "sync", "run", str(sync.id), "--progress")
        returncode, stderr = stop_when(proc, "applying", signal.SIGINT)

        assert returncode == 130, stderr
        assert "usersync: interrupted" in stderr
        [stopped] = setup.runs(sync)  # and no retry queued after it
        assert (stopped.status, stopped.message) == (
            "failed",
            "stopped (Ctrl-C) before its outcome was recorded",
        )
        assert UserStore(setup.engine).list_users(setup.ws, limit=1) == []


def test_a_database_lost_during_a_sync_run_exits_5_and_a_worker_ends_the_run_later(
    tmp_path: Path, pg_url: str, sftp: SftpFolder
) -> None:
    rows = [{"id": f"u-{n}", "email": f"user{n}@example.com"} for n in range(400_000)]
    sftp.put("userdata_big.csv", csv_bytes(rows))
    port = make_url(pg_url).port
    assert port is not None
    with sync_setup(tmp_path, pg_url, sftp) as setup, CuttablePath(port) as path:
        sync = setup.sync(file="userdata_big.csv", enabled=False)
        env = env_of(tmp_path, path.database_url(pg_url), USERSYNC_WORKER_LEASE="2")
        proc = start_usersync(env, "sync", "run", str(sync.id), "--progress")
        wait_for_progress(proc, "rows")
        path.cut()  # the database's host is gone: no answer, no reset
        _, stderr = proc.communicate(timeout=60)
        path.mend()

        assert proc.returncode == 5, stderr
        assert "usersync: the database stopped answering (" in stderr
        assert "check that it is running, then try again" in stderr
        assert "Traceback" not in stderr
        [lost] = setup.runs(sync)
        assert lost.status == "running"  # its outcome could not be written: its lease ends
        recovered = wait_for(
            "the lost run's lease to end",
            lambda: runqueue.recover(setup.engine, max_attempts=1) or None,
            timeout=30,
        )
        assert recovered == [lost.id]
        [ended] = setup.runs(sync)  # failed, and not tried again (max_attempts=1)
        assert ended.status == "failed"
        assert "stopped answering; nothing was applied" in (ended.message or "")
        assert UserStore(setup.engine).list_users(setup.ws, limit=1) == []


def test_a_sync_switches_on_with_its_next_run_and_off(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    env = env_of(tmp_path, db_url)
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(
            name="Nightly",
            file="userdata_people.csv",
            enabled=False,
            schedule={"type": "daily", "time": "01:00"},
        )

        on = usersync(env, "sync", "on", str(sync.id))
        switched_on = syncs.get(setup.engine, setup.ws, sync.id)
        off = usersync(env, "sync", "off", str(sync.id), "--json")

        assert on.exit_code == 0, on.stderr
        assert switched_on.next_run_at is not None
        next_run = switched_on.next_run_at.strftime("%Y-%m-%d 01:00 UTC")
        assert on.stdout == (
            f"Sync {sync.id} (Nightly) is on: At 01:00, every day (UTC); next run {next_run}.\n"
        )
        assert off.exit_code == 0, off.stderr
        assert (off.json()["enabled"], off.json()["next_run_at"]) == (False, None)
        assert syncs.get(setup.engine, setup.ws, sync.id).enabled is False
