"""The run queue in the metadata database: the part of the worker that decides, in single
transactions, what runs next. Safe with any number of workers on one database.

    enqueue(engine, ws, sync_id)          "run now": a queued run (returns its id)
    fire_if_due(engine, ws, sync_id)      a sync just switched on, due now: its run, now
    schedule_due(engine, now)             each due fire time -> one queued run, exactly once
    claim(engine, worker, now, lease)     the oldest runnable queued run -> running, leased
    renew(engine, run_id, worker, ...)    extend the lease, publish progress; cancel asked?
    cancel(engine, ws, run_id)            a queued run -> failed; a running one: its worker stops
    recover(engine, now)                  runs whose lease expired -> failed (+ a retry)
    retry_later(engine, run, not_before)  a new attempt of a failed run

Exactly once: a fire time becomes a run only by inserting its (sync_id, scheduled_for) row in
`fires` (the primary key refuses a second). One at a time: a run is claimed only while its
sync has no running run, and a partial unique index on runs(sync_id) WHERE status='running'
makes a second impossible even if two workers race. PostgreSQL workers skip rows another
holds (FOR UPDATE SKIP LOCKED); SQLite serializes writers (BEGIN IMMEDIATE).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc

from usersync.enums import RunStatus, RunTrigger
from usersync.errors import Conflict, UsersyncError
from usersync.schema import fires, runs, syncs, utcnow
from usersync.store._bind import Bind, insert_ignoring_conflicts, reading, writing
from usersync.store.runs import Run, RunNotFound, held_by
from usersync.store.syncs import Sync, SyncNotFound, following_fire
from usersync.store.syncs import get as get_sync

SelectT = TypeVar("SelectT", bound=sa.Select[Any])
DUE_BATCH = 20  # syncs scheduled per transaction


def _queued_run(
    conn: sa.Connection,
    sync: Sync,
    *,
    trigger: RunTrigger,
    now: datetime,
    scheduled_for: datetime | None = None,
    attempt: int = 1,
    not_before: datetime | None = None,
    source: str = "",
    dry_run: bool = False,
) -> int:
    run_id = conn.scalar(
        sa.insert(runs)
        .values(
            workspace_id=sync.workspace_id,
            sync_id=sync.id,
            source=source,
            path=sync.path or sync.folder,
            status=RunStatus.QUEUED.value,
            started_at=now,
            trigger=trigger.value,
            scheduled_for=scheduled_for,
            attempt=attempt,
            not_before=not_before,
            dry_run=dry_run,
        )
        .returning(runs.c.id)
    )
    assert run_id is not None
    return int(run_id)


def enqueue(
    bind: Bind, ws: int, sync_id: int, *, now: datetime | None = None, dry_run: bool = False
) -> int:
    """Queue a run of the sync now ("run now"), whatever its schedule; return the run id.
    With `dry_run`, the run reads and checks the file, but applies nothing, leaves the file
    where it is and calls no webhook.
    One queued "run now" of each kind at a time: asking again while it waits returns it."""
    now = now or utcnow()
    with writing(bind) as conn:
        sync = get_sync(conn, ws, sync_id)
        waiting = conn.scalar(
            sa.select(runs.c.id).where(
                runs.c.sync_id == sync_id,
                runs.c.status == RunStatus.QUEUED.value,
                runs.c.trigger == RunTrigger.MANUAL.value,
                runs.c.dry_run.is_(dry_run),
            )
        )
        if waiting is not None:
            return int(waiting)
        return _queued_run(conn, sync, trigger=RunTrigger.MANUAL, now=now, dry_run=dry_run)


def _locking(conn: sa.Connection, query: SelectT) -> SelectT:
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query  # SQLite: the write transaction (BEGIN IMMEDIATE) already excludes others


def schedule_due(bind: Bind, now: datetime | None = None) -> list[int]:
    """Turn the fire times that are due into queued runs; return the new runs' ids.

    Each (sync, fire time) becomes a run once, however many workers call this: the `fires`
    row is the ticket. Fire times missed while nothing ran give one run, not one per miss.
    """
    now = now or utcnow()
    created: list[int] = []
    with writing(bind) as conn:
        due = conn.scalars(
            _locking(
                conn,
                sa.select(syncs.c.id)
                .where(syncs.c.enabled.is_(True), syncs.c.next_run_at <= now)
                .order_by(syncs.c.next_run_at)
                .limit(DUE_BATCH),
            )
        ).all()
        for sync_id in due:
            ws = conn.scalar(sa.select(syncs.c.workspace_id).where(syncs.c.id == sync_id))
            assert ws is not None
            run_id = _fire(conn, get_sync(conn, ws, sync_id), now)
            if run_id is not None:
                created.append(run_id)
    return created


def _fire(conn: sa.Connection, sync: Sync, now: datetime) -> int | None:
    """The sync's due fire time -> a queued run (None when another worker holds its ticket);
    the sync's next fire time moves on either way."""
    fire_time = sync.next_run_at
    assert fire_time is not None
    ticket = conn.scalar(
        insert_ignoring_conflicts(conn, fires, ["sync_id", "scheduled_for"])
        .values(sync_id=sync.id, scheduled_for=fire_time, claimed_at=now)
        .returning(fires.c.sync_id)
    )
    run_id = None
    if ticket is not None:
        run_id = _queued_run(
            conn, sync, trigger=RunTrigger.SCHEDULE, now=now, scheduled_for=fire_time
        )
    conn.execute(
        sa.update(syncs)
        .where(syncs.c.id == sync.id)
        .values(next_run_at=following_fire(sync, fire_time, now))
    )
    return run_id


def fire_if_due(bind: Bind, ws: int, sync_id: int, *, now: datetime | None = None) -> int | None:
    """Fire the sync's next fire time if it is due already (a sync switched on with "once,
    right away"), without waiting for the scheduler; return the newest run of the sync then,
    whoever queued it (None when it has none)."""
    now = now or utcnow()
    with writing(bind) as conn:
        sync = get_sync(conn, ws, sync_id)
        if sync.enabled and sync.next_run_at is not None and sync.next_run_at <= now:
            fired = _fire(conn, sync, now)
            if fired is not None:
                return fired
        newest = conn.scalar(
            sa.select(runs.c.id).where(runs.c.sync_id == sync_id).order_by(runs.c.id.desc())
        )
        return None if newest is None else int(newest)


def claim(
    bind: Bind, worker: str, *, lease: float, now: datetime | None = None, only: int | None = None
) -> Run | None:
    """The oldest queued run that may start (its wait is over and its sync is not running),
    or run `only` if it may, now running under `worker` with a lease of `lease` seconds;
    None when there is none."""
    now = now or utcnow()
    running = sa.alias(runs, "running")
    busy = (
        sa.select(running.c.id)
        .where(running.c.sync_id == runs.c.sync_id, running.c.status == RunStatus.RUNNING.value)
        .exists()
    )
    try:
        with writing(bind) as conn:
            run_id = conn.scalar(
                _locking(
                    conn,
                    sa.select(runs.c.id)
                    .where(
                        runs.c.status == RunStatus.QUEUED.value,
                        sa.or_(runs.c.not_before.is_(None), runs.c.not_before <= now),
                        ~busy,
                        sa.true() if only is None else runs.c.id == only,
                    )
                    .order_by(runs.c.id)
                    .limit(1),
                )
            )
            if run_id is None:
                return None
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status=RunStatus.RUNNING.value,
                    worker=worker,
                    started_at=now,
                    lease_expires_at=now + timedelta(seconds=lease),
                )
            )
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).one()
    except exc.IntegrityError:
        return None  # another worker started this sync a moment ago: try again later
    return Run(**row._asdict())


def start_followup(bind: Bind, run: Run, worker: str, *, path: str, lease: float) -> int:
    """A further file of the same fire time (file choice "all_new"): a new run, already
    running under `worker`, once `run` has finished."""
    now = utcnow()
    with writing(bind) as conn:
        run_id = conn.scalar(
            sa.insert(runs)
            .values(
                workspace_id=run.workspace_id,
                sync_id=run.sync_id,
                source=run.source,
                path=path,
                status=RunStatus.RUNNING.value,
                started_at=now,
                trigger=run.trigger,
                scheduled_for=run.scheduled_for,
                attempt=1,
                worker=worker,
                lease_expires_at=now + timedelta(seconds=lease),
                dry_run=run.dry_run,
            )
            .returning(runs.c.id)
        )
    assert run_id is not None
    return int(run_id)


class LeaseLost(UsersyncError):
    """The run's lease lapsed and another worker recovered it: this worker's work on it must
    not be applied."""


def fence(conn: sa.Connection, *, run_id: int, worker: str, lease: float) -> None:
    """In the apply's transaction, just before it commits: the run must still be `worker`'s,
    and its lease is extended so that nobody recovers it before its outcome is written. A run
    someone asked to cancel raises RunCancelled: the import rolls back."""
    extended = conn.execute(  # the UPDATE locks the row on both databases
        sa.update(runs)
        .where(held_by(run_id, worker))
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease))
        .returning(runs.c.cancel_requested_at)
    ).first()
    if extended is None:
        raise LeaseLost(
            f"run {run_id} was taken over by another worker after this one stopped renewing "
            "its lease; this worker's import was rolled back"
        )
    if extended.cancel_requested_at is not None:
        raise RunCancelled(run_id)


class RunCancelled(UsersyncError):
    """Someone asked to cancel the run while it ran: its import stops and applies nothing."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"cancelled while it ran (run {run_id}): nothing was applied")


CANCELLED_BEFORE_START = "cancelled before it started"
CANCELLED_GONE = "cancelled after the process running it had stopped answering; nothing was applied"


def cancel(bind: Bind, ws: int, run_id: int, *, now: datetime | None = None) -> Run:
    """Cancel a workspace's run. A queued run ends failed at once. A running one is marked: its
    worker stops it at its next heartbeat (a couple of seconds) or, at the latest, just before
    its import would commit, and records it failed with nothing applied; one that has already
    committed ends as it would have. A running one whose lease has run out (its process is
    gone) ends failed at once. Conflict for a run that has ended."""
    now = now or utcnow()
    with writing(bind) as conn:
        ours = sa.and_(runs.c.id == run_id, runs.c.workspace_id == ws)
        dropped = conn.execute(
            sa.update(runs)
            .where(ours, runs.c.status == RunStatus.QUEUED.value)
            .values(
                status=RunStatus.FAILED.value,
                finished_at=now,
                message=CANCELLED_BEFORE_START,
                cancel_requested_at=now,
            )
        ).rowcount
        if not dropped:
            conn.execute(
                sa.update(runs)
                .where(
                    ours,
                    runs.c.status == RunStatus.RUNNING.value,
                    runs.c.cancel_requested_at.is_(None),
                )
                .values(cancel_requested_at=now)
            )
            # Its process is gone (the lease ran out unrenewed): end it now, rather than when
            # a worker next looks, as there may be none (a killed `usersync import`).
            conn.execute(
                sa.update(runs)
                .where(
                    ours, runs.c.status == RunStatus.RUNNING.value, runs.c.lease_expires_at < now
                )
                .values(status=RunStatus.FAILED.value, finished_at=now, message=CANCELLED_GONE)
            )
    run = get_run(bind, ws, run_id)  # RunNotFound for another workspace's
    cancelled = run.status == RunStatus.FAILED and run.cancel_requested_at is not None
    if run.status != RunStatus.RUNNING and not cancelled:
        raise Conflict(f"run {run_id} has ended ({run.status}): there is nothing to cancel")
    return run


def owns(bind: Bind, run_id: int, worker: str) -> bool:
    with reading(bind) as conn:
        found = conn.scalar(sa.select(runs.c.id).where(held_by(run_id, worker)))
    return found is not None


class Renewal(NamedTuple):
    owned: bool  # the run is still this worker's
    cancelling: bool  # someone asked to cancel it


def renew(
    bind: Bind,
    run_id: int,
    worker: str,
    *,
    lease: float,
    bytes_read: int | None = None,
    rows_read: int | None = None,
    now: datetime | None = None,
) -> Renewal:
    """Extend the run's lease (and publish its progress), and say whether it is still this
    worker's (not recovered as failed meanwhile) and whether someone asked to cancel it."""
    now = now or utcnow()
    values: dict[str, object] = {"lease_expires_at": now + timedelta(seconds=lease)}
    if bytes_read is not None:
        values["bytes_read"] = bytes_read
    if rows_read is not None:
        values["rows_read"] = rows_read
    with writing(bind) as conn:
        held = conn.execute(
            sa.update(runs)
            .where(held_by(run_id, worker))
            .values(**values)
            .returning(runs.c.cancel_requested_at)
        ).first()
    return Renewal(owned=held is not None, cancelling=held is not None and held[0] is not None)


def recover(bind: Bind, *, max_attempts: int, now: datetime | None = None) -> list[int]:
    """Runs whose worker stopped renewing their lease are failed; those of a sync get a new
    attempt (up to `max_attempts`). Returns the failed runs' ids."""
    now = now or utcnow()
    with writing(bind) as conn:
        expired = (
            conn.execute(
                _locking(
                    conn,
                    sa.select(runs.c.id)
                    .where(runs.c.status == RunStatus.RUNNING.value, runs.c.lease_expires_at < now)
                    .order_by(runs.c.id),
                )
            )
            .scalars()
            .all()
        )
        for run_id in expired:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).one()
            run = Run(**row._asdict())
            again = run.attempt < max_attempts and run.cancel_requested_at is None
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status=RunStatus.FAILED.value,
                    finished_at=now,
                    message=(
                        f"the process running it ({run.worker}) stopped answering; nothing "
                        "was applied" + (", so it runs again" if again else "")
                    ),
                )
            )
            if run.sync_id is not None and again:
                _retry(conn, run, now=now, not_before=None)
    return list(expired)


def _retry(
    conn: sa.Connection, run: Run, *, now: datetime, not_before: datetime | None
) -> int | None:
    assert run.sync_id is not None
    try:
        sync = get_sync(conn, run.workspace_id, run.sync_id)
    except SyncNotFound:
        return None
    if not sync.enabled and run.scheduled_for is not None:
        return None  # switched off: its fire times no longer run ("run now" ones still do)
    return _queued_run(
        conn,
        sync,
        trigger=RunTrigger.RETRY,
        now=now,
        scheduled_for=run.scheduled_for,
        attempt=run.attempt + 1,
        not_before=not_before,
        source=run.source,
        dry_run=run.dry_run,
    )


def retry_later(bind: Bind, run: Run, *, not_before: datetime) -> int | None:
    """Queue the next attempt of a failed run, to start no sooner than `not_before`."""
    with writing(bind) as conn:
        return _retry(conn, run, now=utcnow(), not_before=not_before)


def requeue(bind: Bind, run_id: int, worker: str, *, not_before: datetime, message: str) -> None:
    """Give a claimed run back to the queue, to start again no sooner than `not_before`
    (e.g. its file is still being written); one that someone asked to cancel ends instead."""
    held = held_by(run_id, worker)
    with writing(bind) as conn:
        conn.execute(
            sa.update(runs)
            .where(held, runs.c.cancel_requested_at.is_not(None))
            .values(
                status=RunStatus.FAILED.value,
                finished_at=utcnow(),
                message=(
                    f"cancelled while it waited for its file to stop changing (run {run_id}): "
                    "nothing was applied"
                ),
            )
        )
        conn.execute(
            sa.update(runs)
            .where(held, runs.c.cancel_requested_at.is_(None))
            .values(
                status=RunStatus.QUEUED.value,
                worker=None,
                lease_expires_at=None,
                not_before=not_before,
                message=message,
            )
        )


def get_run(bind: Bind, ws: int, run_id: int) -> Run:
    """A workspace's run; RunNotFound for another workspace's."""
    with reading(bind) as conn:
        row = conn.execute(
            sa.select(runs).where(runs.c.id == run_id, runs.c.workspace_id == ws)
        ).first()
    if row is None:
        raise RunNotFound(f"there is no run {run_id}")
    return Run(**row._asdict())
