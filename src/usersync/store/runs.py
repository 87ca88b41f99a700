"""Runs (executions of an import) and their rejected rows.

    run_id = create_run(engine, workspace_id, source=URL, path=PATH)       # status "running"
    add_run_errors(engine, run_id, rejected)    # (line, column, value, message), any number
    finish_run(engine, run_id, status="partial", rows_read=..., users_created=..., ...)
    get_run(engine, run_id); list_runs(engine, workspace_id); iter_run_errors(engine, run_id)
    delete_old_errors(engine, run, keep=20)     # rejected rows of older runs are let go
    newest_of_syncs(engine, workspace_id)       # {sync_id: its newest run}

Statuses are the strings of usersync.schema.RUN_STATUSES (a StrEnum member will do).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast

import sqlalchemy as sa

from usersync.errors import Gone, NotFound, UsageError
from usersync.schema import RUN_STATUSES, run_errors, runs, utcnow
from usersync.store._bind import Bind, reading, writing
from usersync.store._sqlite_insert import driver, insert_rows

if TYPE_CHECKING:  # loaded by the engine for PostgreSQL; SQLite users never need it
    import psycopg

ERROR_BATCH = 1000  # rejected rows written (and read back) per statement


class RunNotFound(NotFound):
    pass


@dataclass(frozen=True)
class Run:
    id: int
    workspace_id: int
    sync_id: int | None
    source: str
    path: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    bytes_read: int
    rows_read: int
    users_created: int
    users_updated: int
    rows_rejected: int
    message: str | None
    file_size: int | None
    file_modified: datetime | None
    dry_run: bool
    trigger: str = "cli"
    scheduled_for: datetime | None = None
    attempt: int = 1
    not_before: datetime | None = None
    worker: str | None = None
    lease_expires_at: datetime | None = None
    file_sha256: str | None = None
    errors_deleted_at: datetime | None = None  # its rejected rows are no longer kept
    webhook_delivery: str | None = None  # what its sync's webhook answered ("answered 204")
    cancel_requested_at: datetime | None = None  # someone asked to cancel it while it ran
    users_unchanged: int = 0  # users the file left as they were, when its sync skips them

    @property
    def progress(self) -> float | None:
        """How much of the file is read, 0 to 1, once the run knows the file's size."""
        if self.file_size:
            return min(self.bytes_read / self.file_size, 1.0)
        if self.status in ("succeeded", "partial"):
            return 1.0
        return None


class RunError(NamedTuple):
    """A rejected row: 1-based physical line, the column and value at fault (if one), why."""

    line: int | None
    column: str | None
    value: str | None
    message: str


# A RunError's fields as a plain tuple: what add_run_errors takes fastest (no object per row).
RunErrorFields = tuple[int | None, str | None, str | None, str]


class RowErrorLike(Protocol):
    """Anything with the four fields, e.g. usersync.reader.RowError."""

    @property
    def line(self) -> int | None: ...
    @property
    def column(self) -> str | None: ...
    @property
    def value(self) -> str | None: ...
    @property
    def message(self) -> str: ...


def _check_status(status: str) -> str:
    if status not in RUN_STATUSES:
        raise ValueError(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")
    return str(status)


def create_run(
    bind: Bind,
    workspace_id: int,
    *,
    source: str,
    path: str,
    sync_id: int | None = None,
    status: str = "running",
    dry_run: bool = False,
    file_size: int | None = None,
    file_modified: datetime | None = None,
    started_at: datetime | None = None,
    worker: str | None = None,
    lease_expires_at: datetime | None = None,
) -> int:
    """Record a new run (default: running, started now); return its id. A running run held
    by `worker` until `lease_expires_at` ends failed if that passes unrenewed."""
    with writing(bind) as conn:
        run_id = conn.scalar(
            sa.insert(runs)
            .values(
                workspace_id=workspace_id,
                sync_id=sync_id,
                source=source,
                path=path,
                status=_check_status(status),
                started_at=started_at or utcnow(),
                dry_run=dry_run,
                file_size=file_size,
                file_modified=file_modified,
                worker=worker,
                lease_expires_at=lease_expires_at,
            )
            .returning(runs.c.id)
        )
    assert run_id is not None
    return int(run_id)


def mark_running(bind: Bind, run_id: int, *, started_at: datetime | None = None) -> None:
    """A queued run starts now."""
    _update(bind, run_id, status="running", started_at=started_at or utcnow())


def held_by(run_id: int, worker: str) -> sa.ColumnElement[bool]:
    """The condition that run `run_id` is running under `worker` (not recovered by another)."""
    return sa.and_(runs.c.id == run_id, runs.c.worker == worker, runs.c.status == "running")


def finish_run(
    bind: Bind,
    run_id: int,
    *,
    status: str,
    bytes_read: int = 0,
    rows_read: int = 0,
    users_created: int = 0,
    users_updated: int = 0,
    rows_rejected: int = 0,
    message: str | None = None,
    users_unchanged: int = 0,
    file_size: int | None = None,
    file_modified: datetime | None = None,
    file_sha256: str | None = None,
    path: str | None = None,
    finished_at: datetime | None = None,
    owner: str | None = None,
) -> bool:
    """Record a run's outcome. `file_*` and `path` are kept when not given. With `owner`
    (a worker's name), only while the run is still running under that worker: False, and
    nothing written, when another worker recovered it meanwhile."""
    values: dict[str, object] = {
        "status": _check_status(status),
        "finished_at": finished_at or utcnow(),
        "bytes_read": bytes_read,
        "rows_read": rows_read,
        "users_created": users_created,
        "users_updated": users_updated,
        "users_unchanged": users_unchanged,
        "rows_rejected": rows_rejected,
        "message": message,
    }
    if file_size is not None:
        values["file_size"] = file_size
    if file_modified is not None:
        values["file_modified"] = file_modified
    if file_sha256 is not None:
        values["file_sha256"] = file_sha256
    if path is not None:
        values["path"] = path
    if owner is not None:
        with writing(bind) as conn:
            result = conn.execute(sa.update(runs).where(held_by(run_id, owner)).values(**values))
            return result.rowcount == 1
    _update(bind, run_id, **values)
    return True


def _update(bind: Bind, run_id: int, **values: object) -> None:
    with writing(bind) as conn:
        result = conn.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))
        if result.rowcount != 1:
            raise RunNotFound(f"there is no run {run_id}")


def _row(error: RowErrorLike | RunErrorFields) -> RunErrorFields:
    if isinstance(error, tuple):
        return error
    return (error.line, error.column, error.value, error.message)


def add_run_errors(
    bind: Bind,
    run_id: int,
    errors: Iterable[RowErrorLike | RunErrorFields],
) -> int:
    """Append rejected rows to the run's list (after any already there); return how many.

    `errors` is consumed as it comes (SQLite: in batches of ERROR_BATCH; PostgreSQL: one
    COPY): a million of them cost no more memory than a thousand.
    """
    with writing(bind) as conn:
        last = conn.scalar(
            sa.select(sa.func.coalesce(sa.func.max(run_errors.c.seq), 0)).where(
                run_errors.c.run_id == run_id
            )
        )
        numbered = (
            (run_id, seq, *_row(error))
            for seq, error in enumerate(errors, start=int(last or 0) + 1)
        )
        if conn.dialect.name == "postgresql":
            return _copy_errors(conn, numbered)
        return _insert_errors(conn, numbered)


# The columns of each row _insert_errors and _copy_errors take, in order. Both go straight to
# the driver: SQLAlchemy's handling of each parameter set took most of the time.
_ERROR_COLUMNS = ", ".join(f'"{name}"' for name in ("run_id", "seq", *RunError._fields))


def _insert_errors(conn: sa.Connection, rows: Iterator[tuple[object, ...]]) -> int:
    """SQLite: ERROR_BATCH rows at a time, many to a statement (1 M rows in 1.35 s)."""
    into = f"INSERT INTO run_errors ({_ERROR_COLUMNS})"
    width = 2 + len(RunError._fields)
    added = 0
    with contextlib.closing(driver(conn).cursor()) as cursor:
        while batch := list(islice(rows, ERROR_BATCH)):
            insert_rows(cursor, into, width, batch)
            added += len(batch)
    return added


def _copy_errors(conn: sa.Connection, rows: Iterator[tuple[object, ...]]) -> int:
    """PostgreSQL: one COPY (1 M rows in 4.7 s, 15.5 s by executemany)."""
    driver = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    added = 0
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY run_errors ({_ERROR_COLUMNS}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
            added += 1
    return added


def _run(row: sa.Row[tuple[object, ...]]) -> Run:
    return Run(**row._asdict())


MAX_DELIVERY = 500  # characters of a webhook call's outcome kept on its run


def note_webhook(bind: Bind, run_id: int, delivery: str) -> None:
    """Record what became of the call that told the sync's webhook of run `run_id`."""
    with writing(bind) as conn:
        conn.execute(
            sa.update(runs)
            .where(runs.c.id == run_id)
            .values(webhook_delivery=delivery[:MAX_DELIVERY])
        )


def get_run(bind: Bind, run_id: int) -> Run | None:
    with reading(bind) as conn:
        row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
    return None if row is None else _run(row)


def list_runs(
    bind: Bind,
    workspace_id: int,
    *,
    sync_id: int | None = None,
    limit: int = 50,
    before: int | None = None,
    status: str | None = None,
) -> list[Run]:
    """The workspace's runs (of one sync, of one status), newest first; page on with
    `before=` the last id seen."""
    if limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")
    query = sa.select(runs).where(runs.c.workspace_id == workspace_id)
    if sync_id is not None:
        query = query.where(runs.c.sync_id == sync_id)
    if status is not None:
        query = query.where(runs.c.status == _check_status(status))
    if before is not None:
        query = query.where(runs.c.id < before)
    with reading(bind) as conn:
        rows = conn.execute(query.order_by(runs.c.id.desc()).limit(limit)).all()
    return [_run(row) for row in rows]


class RunErrorsDeleted(Gone):
    pass


def check_errors_kept(run: Run) -> None:
    """RunErrorsDeleted when the run's rejected rows were let go (`delete_old_errors`)."""
    if run.errors_deleted_at is not None:
        raise RunErrorsDeleted(
            f"the rejected rows of run {run.id} were deleted on "
            f"{run.errors_deleted_at:%Y-%m-%d %H:%M} UTC, to keep those of newer runs "
            "(USERSYNC_KEEP_REJECTED_RUNS says of how many); its counts stay"
        )


def newest_of_syncs(bind: Bind, workspace_id: int) -> dict[int, Run]:
    """The newest run of each of the workspace's syncs that has run, by sync id."""
    newest = (
        sa.select(sa.func.max(runs.c.id))
        .where(runs.c.workspace_id == workspace_id, runs.c.sync_id.is_not(None))
        .group_by(runs.c.sync_id)
    )
    with reading(bind) as conn:
        rows = conn.execute(sa.select(runs).where(runs.c.id.in_(newest.scalar_subquery())))
        found = [_run(row) for row in rows]
    return {run.sync_id: run for run in found if run.sync_id is not None}


def delete_old_errors(bind: Bind, run: Run, keep: int) -> list[int]:
    """Delete the rejected rows of the finished runs that rejected rows, but the newest `keep`
    of them, among the runs of `run`'s sync (or the workspace's imports from the command line,
    when it has none); return the ids of the runs whose rows went. Each run's rows go in a
    transaction of their own, which keeps others' waits short on SQLite."""
    if run.sync_id is None:
        scope = sa.and_(runs.c.workspace_id == run.workspace_id, runs.c.sync_id.is_(None))
    else:
        scope = runs.c.sync_id == run.sync_id
    with reading(bind) as conn:
        older = conn.scalars(
            sa.select(runs.c.id)
            .where(
                scope,
                runs.c.rows_rejected > 0,
                runs.c.finished_at.is_not(None),
                runs.c.errors_deleted_at.is_(None),
            )
            .order_by(runs.c.id.desc())
            .offset(keep)
        ).all()
    for run_id in older:
        with writing(bind) as conn:
            conn.execute(sa.delete(run_errors).where(run_errors.c.run_id == run_id))
            conn.execute(
                sa.update(runs).where(runs.c.id == run_id).values(errors_deleted_at=utcnow())
            )
    return list(older)


def iter_run_errors(bind: Bind, run_id: int) -> Iterator[RunError]:
    """The run's rejected rows in order, read a page at a time (no transaction held between
    pages when `bind` is an Engine, so a slow reader of a big report blocks nobody)."""
    after = 0
    while True:
        with reading(bind) as conn:
            page = conn.execute(
                sa.select(
                    run_errors.c.seq,
                    run_errors.c.line,
                    run_errors.c.column,
                    run_errors.c.value,
                    run_errors.c.message,
                )
                .where(run_errors.c.run_id == run_id, run_errors.c.seq > after)
                .order_by(run_errors.c.seq)
                .limit(ERROR_BATCH)
            ).all()
        for seq, line, column, value, message in page:
            after = seq
            yield RunError(line, column, value, message)
        if len(page) < ERROR_BATCH:
            return
