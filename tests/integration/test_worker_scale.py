"""`usersync worker` processes at work, as an operator runs them: three on one PostgreSQL
running each fire time of 50 syncs exactly once, a worker killed in the middle of an import
(the store is unchanged and the run is recovered), SIGTERM finishing the current run, and
fire times missed while nothing ran giving one run."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from tests.hooks import webhook_receiver
from tests.servers.sshd import SftpFolder
from tests.syncs import SyncSetup, csv_bytes, drain, sync_setup
from tests.worker_procs import WorkerProcess, wait_for
from usersync.schema import fires, runs, syncs, users, utcnow
from usersync.store import ConflictMode, UserStore
from usersync.store import syncs as sync_store
from usersync.store.runs import Run

EVERY_2_SECONDS = {"type": "cron", "expression": "*/2 * * * * ?"}
ONCE_NOW = {"type": "once"}
BIG_MAPPING = {"user_id": "id", "properties": {"email": "email", "city": "city"}}


def _worker_settings(lease: float) -> dict[str, str]:
    return {
        "USERSYNC_WORKER_POLL": "0.1",
        "USERSYNC_SETTLE_SECONDS": "0",
        "USERSYNC_WORKER_LEASE": str(lease),
    }


def _all_runs(engine: Engine, sync_ids: list[int] | None = None) -> list[Run]:
    query = sa.select(runs).order_by(runs.c.id)
    if sync_ids is not None:
        query = query.where(runs.c.sync_id.in_(sync_ids))
    with engine.connect() as conn:
        return [Run(**row._asdict()) for row in conn.execute(query)]


def _users_snapshot(engine: Engine, ws: int) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(users.c.user_id, users.c.properties, users.c.updated_at)
                .where(users.c.workspace_id == ws)
                .order_by(users.c.user_id)
            )
        ]


def _user_count(engine: Engine, ws: int) -> int:
    with engine.connect() as conn:
        count = conn.scalar(
            sa.select(sa.func.count()).select_from(users).where(users.c.workspace_id == ws)
        )
    return int(count or 0)


def _describe(run: Run) -> str:
    return (
        f"run {run.id} sync {run.sync_id} {run.trigger}#{run.attempt} {run.status} "
        f"for {run.scheduled_for} by {run.worker} (created {run.users_created}, updated "
        f"{run.users_updated}): {run.message}"
    )


# --- 3 workers, 50 syncs, one PostgreSQL --------------------------------------------------

SYNCS = 50
WORKERS = 3
FIRE_FOR = 9.0  # seconds of fire times every 2 s: at least 4 of each sync
NO_MORE_FIRES = {"schedule": {"type": "once", "at": "2099-01-01T00:00"}}


def _between_fire_times(engine: Engine) -> bool:
    """Between two fire times (every even second) with every fire time so far ticketed."""
    now = utcnow()
    if not 0.3 < now.timestamp() % 2 < 1.2:
        return False
    with engine.connect() as conn:
        due = conn.scalar(
            sa.select(sa.func.count())
            .select_from(syncs)
            .where(syncs.c.enabled.is_(True), syncs.c.next_run_at <= now)
        )
    return due == 0


def _backlog(engine: Engine) -> int:
    with engine.connect() as conn:
        count = conn.scalar(
            sa.select(sa.func.count())
            .select_from(runs)
            .where(runs.c.status.in_(["queued", "running"]))
        )
    return int(count or 0)


def _fire_times(first: datetime, before: datetime) -> set[datetime]:
    times = set()
    while first < before:
        times.add(first)
        first += timedelta(seconds=2)
    return times


def test_three_workers_run_each_fire_time_of_50_syncs_exactly_once(
    tmp_path: Path, pg_url: str, sftp: SftpFolder
) -> None:
    with sync_setup(tmp_path, pg_url, sftp) as setup:  # makes the secret key file first
        engine = setup.engine
        sync_ids = []
        for n in range(SYNCS):
            name = f"userdata_s{n:02}.csv"
            rows = [{"id": f"s{n}-{k}", "email": f"s{n}-{k}@example.com"} for k in range(2)]
            sftp.put(name, csv_bytes(rows))
            sync = setup.sync(
                file=name, schedule=EVERY_2_SECONDS, import_unchanged=True, enabled=False
            )
            sync_ids.append(sync.id)
        settings = _worker_settings(lease=10)
        with ExitStack() as stack:  # kills the workers that a failed check leaves running
            workers = [
                stack.enter_context(
                    WorkerProcess.start(
                        tmp_path / f"worker{n}", pg_url, setup.settings.data_dir, **settings
                    )
                )
                for n in range(WORKERS)
            ]
            names = {worker.wait_ready() for worker in workers}
            assert len(names) == WORKERS

            def all_alive() -> None:
                for worker in workers:
                    worker.check_alive()

            # Switched on once the workers are up: every fire time from now on is theirs.
            first_fire = {}
            for sync_id in sync_ids:
                enabled = sync_store.set_enabled(engine, setup.ws, sync_id, True)
                assert enabled.next_run_at is not None
                first_fire[sync_id] = enabled.next_run_at
            end = time.monotonic() + FIRE_FOR
            wait_for(
                "the syncs to fire for a while",
                lambda: time.monotonic() > end,
                timeout=FIRE_FOR + 5,
                interval=0.2,
                alive=all_alive,
            )
            # No more fire times, from a moment between two of them. Two cores cannot run
            # 25 imports a second, so queued runs remain: switching the syncs off now would
            # drop them, so their schedules move to 2099 and the workers work them off first.
            wait_for(
                "a moment between fire times with every fire time so far ticketed",
                lambda: _between_fire_times(engine),
                timeout=6,
                interval=0.02,
                alive=all_alive,
            )
            stop_time = utcnow()
            for sync_id in sync_ids:
                sync_store.update(engine, setup.box, setup.ws, sync_id, NO_MORE_FIRES)
            wait_for(
                "the workers to run the queued fire times",
                lambda: _backlog(engine) == 0,
                timeout=60,
                interval=0.2,
                alive=all_alive,
            )
            for sync_id in sync_ids:
                sync_store.set_enabled(engine, setup.ws, sync_id, False)
            codes = [worker.terminate() for worker in workers]
            assert codes == [0] * WORKERS, [worker.log() for worker in workers]

        all_runs = _all_runs(engine, sync_ids)
        _check_each_fire_time_ran_once(engine, all_runs, first_fire, stop_time)
        assert {run.worker for run in all_runs} == names  # every worker did some of the work
        assert len(all_runs) >= SYNCS * 4, len(all_runs)
        assert _user_count(engine, setup.ws) == SYNCS * 2


def _check_each_fire_time_ran_once(
    engine: Engine, all_runs: list[Run], first_fire: dict[int, datetime], stop_time: datetime
) -> None:
    with engine.connect() as conn:
        tickets = {
            (row.sync_id, row.scheduled_for)
            for row in conn.execute(sa.select(fires).where(fires.c.sync_id.in_(first_fire)))
        }
    problems = [_describe(r) for r in all_runs if (r.status, r.attempt) != ("succeeded", 1)]
    assert problems == [], "\n".join(problems[:20])  # none failed, none retried or left
    assert {run.trigger for run in all_runs} == {"schedule"}

    by_sync: dict[int, list[Run]] = defaultdict(list)
    for run in all_runs:
        assert run.sync_id is not None
        assert run.scheduled_for is not None
        by_sync[run.sync_id].append(run)
    for sync_id, first in first_fire.items():
        mine = by_sync[sync_id]
        times = [run.scheduled_for for run in mine]
        # each fire time ran at most once
        assert len(times) == len(set(times)), (sync_id, sorted(t for t in times if t))
        # a run for each ticket and a ticket for each run
        ran = {(sync_id, t) for t in times}
        mine_tickets = {ticket for ticket in tickets if ticket[0] == sync_id}
        assert ran == mine_tickets, (sorted(ran - mine_tickets), sorted(mine_tickets - ran))
        # every fire time before the stop was ticketed (none lost, none merged); one at or
        # after it may have been ticketed while the schedules were being moved
        expected = {(sync_id, t) for t in _fire_times(first, stop_time)}
        early = {ticket for ticket in mine_tickets if ticket[1] < stop_time}
        assert early == expected, (sorted(expected - early), sorted(early - expected))
        # one sync never ran twice at the same time
        ordered = sorted(mine, key=lambda run: run.started_at)
        for before, after in pairwise(ordered):
            assert before.finished_at is not None
            assert before.finished_at <= after.started_at, (_describe(before), _describe(after))


# --- a worker killed mid-import, and one stopped with SIGTERM -----------------------------


def _big_file(rows: int) -> bytes:
    """`rows` users u0..u<rows-1> with an email and a city (about 45 bytes a row)."""
    body = "\n".join(f"u{n},user{n}@example.com,City number {n % 977}" for n in range(rows))
    return f"id,email,city\n{body}\n".encode()


def _running(
    engine: Engine, sync_id: int, *, reading: bool = False, source: bool = False
) -> Run | None:
    """The sync's run once it is running (with `reading`: and has published progress; with
    `source`: and has recorded the server it reads from)."""
    for run in _all_runs(engine, [sync_id]):
        if (
            run.status == "running"
            and (run.bytes_read > 0 or not reading)
            and (run.source != "" or not source)
        ):
            return run
    return None


def _settled(engine: Engine, sync_id: int) -> list[Run] | None:
    """The sync's runs once every one of them has finished (none queued or running)."""
    found = _all_runs(engine, [sync_id])
    if found and all(run.finished_at is not None for run in found):
        return found
    return None


def _seed_prior_users(setup: SyncSetup) -> None:
    UserStore(setup.engine).apply(
        setup.ws,
        [[("u0", '{"email": "old@example.com"}'), ("z-other", '{"email": "z@example.com"}')]],
        ConflictMode.UPDATE,
    )


# ~135 MB: the import reads for several seconds after its first progress (1 s in), however
# fast the machine (900 K rows once were "seconds"; they came to read in one).
KILL_ROWS = 3_000_000


def test_a_worker_killed_mid_import_changes_nothing_and_its_run_is_retried(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    data = _big_file(KILL_ROWS)
    sftp.put("userdata_big.csv", data)
    with webhook_receiver() as hook, sync_setup(tmp_path, db_url, sftp) as setup:
        engine = setup.engine
        _seed_prior_users(setup)
        before = _users_snapshot(engine, setup.ws)
        sync = setup.sync(
            file="userdata_big.csv", schedule=ONCE_NOW, mapping=BIG_MAPPING, webhook_url=hook.url
        )
        data_dir = setup.settings.data_dir
        with WorkerProcess.start(
            tmp_path / "doomed", db_url, data_dir, **_worker_settings(lease=3)
        ) as doomed:
            # The kill must land before the commit, a second or so after the first progress:
            # on a busy machine the worker, not this test, is the one made to wait.
            os.setpriority(os.PRIO_PROCESS, doomed.pid, 15)
            doomed.wait_ready()
            reading = wait_for(
                "the run to be running and reading",
                lambda: _running(engine, sync.id, reading=True),
                timeout=30,
                alive=doomed.check_alive,
            )
            assert doomed.kill() == -signal.SIGKILL
        [killed] = _all_runs(engine, [sync.id])
        assert killed.status == "running", _describe(killed)  # it died in the middle
        assert 0 < killed.bytes_read <= len(data)
        assert _users_snapshot(engine, setup.ws) == before  # nothing was applied

        with WorkerProcess.start(
            tmp_path / "rescuer", db_url, data_dir, **_worker_settings(lease=3)
        ) as rescuer:
            rescuer_name = rescuer.wait_ready()
            settled = wait_for(
                "the dead worker's run to be failed and retried",
                lambda: _settled(engine, sync.id),
                timeout=60,
                interval=0.1,
                alive=rescuer.check_alive,
            )
            assert rescuer.terminate() == 0, rescuer.log()

        assert len(settled) == 2, [_describe(run) for run in settled]
        first, retry = settled
        assert first.id == reading.id
        assert first.status == "failed", _describe(first)
        assert "stopped answering" in (first.message or ""), first.message
        assert retry.status == "succeeded", _describe(retry)
        assert (retry.trigger, retry.attempt) == ("retry", 2)
        assert first.scheduled_for is not None
        assert retry.scheduled_for == first.scheduled_for
        assert retry.worker == rescuer_name
        assert (retry.rows_read, retry.users_created, retry.users_updated) == (
            KILL_ROWS,
            KILL_ROWS - 1,
            1,
        )
        assert _user_count(engine, setup.ws) == KILL_ROWS + 1
        u0 = UserStore(engine).get_user(setup.ws, "u0")
        assert u0 is not None
        assert u0.properties == {"email": "user0@example.com", "city": "City number 0"}
        assert [run.status for run in _all_runs(engine, [sync.id])] == ["failed", "succeeded"]
        # The failure webhook (the default) tells of the dead worker's run, once; the
        # rescuer made the call before it exited.
        _headers, body = hook.next_call(timeout=0)
        assert json.loads(body) | {"started_at": "-", "finished_at": "-"} == {
            "event": "run.finished",
            "run_id": first.id,
            "sync_id": sync.id,
            "status": "failed",
            "path": first.path,
            "started_at": "-",
            "finished_at": "-",
            "rows_read": first.rows_read,
            "users_created": 0,
            "users_updated": 0,
            "users_unchanged": 0,
            "rows_rejected": 0,
            "message": first.message,
        }
        assert hook.pending() == []


TERM_ROWS = 400_000


@contextmanager
def _running_worker(
    tmp_path: Path, db_url: str, setup: SyncSetup, sync_id: int, *, lease: float
) -> Iterator[WorkerProcess]:
    """A worker process, once it is running the sync's run."""
    with WorkerProcess.start(
        tmp_path / "worker", db_url, setup.settings.data_dir, **_worker_settings(lease=lease)
    ) as worker:
        worker.wait_ready()
        wait_for(
            "the run to be running",
            lambda: _running(setup.engine, sync_id),
            timeout=30,
            interval=0.02,
            alive=worker.check_alive,
        )
        yield worker


def test_sigterm_lets_the_current_run_and_its_webhook_call_finish_before_the_worker_exits(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_big.csv", _big_file(TERM_ROWS))
    with webhook_receiver() as hook, sync_setup(tmp_path, db_url, sftp) as setup:
        engine = setup.engine
        sync = setup.sync(
            file="userdata_big.csv",
            schedule=ONCE_NOW,
            mapping=BIG_MAPPING,
            webhook_url=hook.url,
            webhook_on="always",
        )
        with _running_worker(tmp_path, db_url, setup, sync.id, lease=3) as worker:
            signalled_at = utcnow()
            assert worker.terminate() == 0, worker.log()
            assert "SIGTERM: finishing the current run and its webhook call" in worker.log()
        [run] = _all_runs(engine, [sync.id])
        assert run.status == "succeeded", _describe(run)
        assert run.finished_at is not None
        assert run.finished_at > signalled_at  # it ran on after the signal
        assert (run.rows_read, run.users_created) == (TERM_ROWS, TERM_ROWS)
        assert _user_count(engine, setup.ws) == TERM_ROWS
        assert run.webhook_delivery == "answered 204"
        [(_, body)] = hook.pending()
        assert json.loads(body)["run_id"] == run.id


def test_a_second_sigterm_stops_the_run_at_once_and_queues_its_retry(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_big.csv", _big_file(TERM_ROWS))
    with sync_setup(tmp_path, db_url, sftp) as setup:
        engine = setup.engine
        sync = setup.sync(file="userdata_big.csv", schedule=ONCE_NOW, mapping=BIG_MAPPING)
        # A lease far longer than the test: the run must not wait for it to run out.
        with _running_worker(tmp_path, db_url, setup, sync.id, lease=600) as worker:
            assert worker.stop_at_once() == 143, worker.log()
            assert "usersync: stopped (SIGTERM)" in worker.log()
        stopped, retry = _all_runs(engine, [sync.id])
        assert (stopped.status, stopped.message) == (
            "failed",
            "the worker was stopped at once (a second SIGTERM or Ctrl-C) while the run was in "
            "progress; nothing was applied",
        ), _describe(stopped)
        assert (retry.status, retry.attempt) == ("queued", 2), _describe(retry)
        assert _user_count(engine, setup.ws) == 0


def test_with_json_logs_every_line_the_worker_writes_is_a_json_object(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_small.csv", _big_file(3))
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_small.csv", schedule=ONCE_NOW, mapping=BIG_MAPPING)
        settings = {**_worker_settings(lease=60), "USERSYNC_LOG_FORMAT": "json"}
        with WorkerProcess.start(
            tmp_path / "worker", db_url, setup.settings.data_dir, **settings
        ) as worker:
            name = worker.wait_ready()
            [run] = wait_for(
                "the run",
                lambda: _finished(setup.engine, sync.id, 1),
                timeout=60,
                alive=worker.check_alive,
            )
            assert worker.terminate() == 0, worker.log()
        entries = [json.loads(line) for line in worker.log().splitlines()]
        assert {tuple(sorted(entry)) for entry in entries} == {
            ("level", "logger", "message", "time")
        }
        messages = [entry["message"] for entry in entries]
        assert messages[0].startswith(f"usersync worker {name}: data in ")
        assert f"run {run.id} (sync {sync.id}, attempt 1) started" in messages
        assert f"run {run.id} succeeded: 3 rows" in messages
        assert any(m.startswith("SIGTERM: finishing the current run") for m in messages)
        assert not [e for e in entries if e["logger"].startswith("asyncssh")]  # its 30 steps
        assert all(
            datetime.fromisoformat(entry["time"]).utcoffset() == timedelta(0) for entry in entries
        )


def _finished(engine: Engine, sync_id: int, count: int) -> list[Run] | None:
    found = _all_runs(engine, [sync_id])
    if len(found) == count and all(run.finished_at is not None for run in found):
        return found
    return None


# --- missed fire times --------------------------------------------------------------------


def test_fire_times_missed_while_nothing_ran_give_one_run(
    tmp_path: Path, db_url: str, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", csv_bytes([{"id": "u-1", "email": "alice@example.com"}]))
    with sync_setup(tmp_path, db_url, sftp) as setup:
        sync = setup.sync(file="userdata_a.csv", schedule={"type": "daily", "time": "01:00"})
        assert sync.next_run_at is not None
        long_ago = sync.next_run_at - timedelta(days=10)  # nine more were missed since
        with setup.engine.begin() as conn:
            conn.execute(sa.update(syncs).where(syncs.c.id == sync.id).values(next_run_at=long_ago))
        worker = setup.worker()
        assert worker.tick() is True
        [run] = setup.runs(sync)
        assert (run.status, run.trigger, run.scheduled_for) == ("succeeded", "schedule", long_ago)
        after = sync_store.get(setup.engine, setup.ws, sync.id).next_run_at
        now = utcnow()
        assert after is not None
        assert now < after <= now + timedelta(days=1)
        assert drain(worker) == 0  # the other nine missed days do not run
        assert len(setup.runs(sync)) == 1
        with setup.engine.connect() as conn:
            tickets = conn.execute(
                sa.select(fires.c.scheduled_for).where(fires.c.sync_id == sync.id)
            )
            assert list(tickets.scalars()) == [long_ago]


PAUSE_ROWS = 100_000


def test_a_paused_worker_whose_run_was_recovered_applies_nothing_when_it_resumes(
    tmp_path: Path, pg_url: str, sftp: SftpFolder
) -> None:
    """A worker that stops answering without dying (paused, cut off from the database) loses
    its run to recovery: "nothing was applied, so it runs again". When it comes back, it must
    not apply the file a second time, nor rewrite its failed run as succeeded."""
    sftp.put("userdata_big.csv", _big_file(PAUSE_ROWS))
    with sync_setup(tmp_path, pg_url, sftp) as setup:
        engine = setup.engine
        sync = setup.sync(
            file="userdata_big.csv",
            schedule=ONCE_NOW,
            mapping=BIG_MAPPING,
            import_unchanged=True,  # the resumed worker would not skip the file as seen
        )
        data_dir = setup.settings.data_dir
        settings = _worker_settings(lease=3)
        with ExitStack() as stack:  # kills (even paused) workers that a failed check leaves
            paused = stack.enter_context(
                WorkerProcess.start(tmp_path / "paused", pg_url, data_dir, **settings)
            )
            paused.wait_ready()
            wait_for(  # connecting or reading: before the apply, which locks the workspace
                "the run to be running with its source recorded",
                lambda: _running(engine, sync.id, source=True),
                timeout=30,
                interval=0.01,
                alive=paused.check_alive,
            )
            paused.process.send_signal(signal.SIGSTOP)
            rescuer = stack.enter_context(
                WorkerProcess.start(tmp_path / "rescuer", pg_url, data_dir, **settings)
            )
            first, retry = wait_for(
                "the paused worker's run to be failed and retried",
                lambda: _finished(engine, sync.id, 2),
                timeout=60,
                interval=0.1,
                alive=rescuer.check_alive,
            )
            assert (first.status, retry.status) == ("failed", "succeeded")
            imported = _users_snapshot(engine, setup.ws)
            assert len(imported) == PAUSE_ROWS
            paused.process.send_signal(signal.SIGCONT)
            assert paused.terminate() == 0, paused.log()  # once its run is over
            assert rescuer.terminate() == 0, rescuer.log()
        runs_after = _all_runs(engine, [sync.id])
        assert [(run.id, run.status) for run in runs_after] == [
            (first.id, "failed"),
            (retry.id, "succeeded"),
        ], [_describe(run) for run in runs_after]
        assert _users_snapshot(engine, setup.ws) == imported  # applied once, by the retry
