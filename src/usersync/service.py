"""Use cases that web, CLI and worker share. This layer owns the database: it opens the store,
records runs and their rejected rows, and keeps the property catalog."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import shlex
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from usersync import db, runqueue
from usersync.config import Settings, make_private_dir
from usersync.enums import RunStatus
from usersync.errors import UsageError, UsersyncError
from usersync.heartbeat import Heartbeat, worker_name
from usersync.importer import ImportSpec, ProgressCallback, RunResult, run_import
from usersync.mapping import PropertyType, check_property_name
from usersync.rejects import RejectLog
from usersync.schema import utcnow
from usersync.sources.connect import Credentials, open_source
from usersync.sources.hostkeys import HostKeyPolicy
from usersync.sources.urls import RemoteLocation
from usersync.store import UserRecord, UserStore, properties, runs, workspaces

DEFAULT_WORKSPACE = "default"


@contextmanager
def open_database(settings: Settings) -> Iterator[Engine]:
    """The migrated database that settings name; disposed of on exit."""
    if settings.db_url is None:  # the embedded default lives in the data folder: make it
        make_private_dir(settings.data_dir)
    engine = db.create_engine_for(settings.database_url)
    try:
        db.migrate(engine)
        yield engine
    finally:
        engine.dispose()


def workspace_id(engine: Engine, name: str) -> int:
    """The id of workspace `name`; the default workspace is made when missing, any other
    name must have been created with `usersync workspace create` (a mistyped name must not
    make a workspace of its own and import into it)."""
    if name == DEFAULT_WORKSPACE:
        return int(workspaces.get_or_create(engine, name))
    found = workspaces.get_id(engine, name)
    if found is None:
        raise UsageError(
            f"there is no workspace named {name!r}; create it first: "
            f"usersync workspace create {shlex.quote(name)}"
        )
    return int(found)


@dataclass(frozen=True)
class ImportOutcome:
    run_id: int
    result: RunResult
    unrecorded: str | None = None  # why the run's record is not this outcome, if it is not


def resolve_types(
    engine: Engine, ws: int, mapped: Mapping[str, str], asked: Mapping[str, PropertyType]
) -> dict[str, PropertyType]:
    """Each mapped property's type: as asked, else as the catalog has it, else string. A type
    that differs from the catalog's is refused before anything runs."""
    for name in mapped:
        check_property_name(name)
    unknown = sorted(set(asked) - set(mapped))
    if unknown:
        raise UsageError(f"--type names properties that are not mapped: {', '.join(unknown)}")
    known = properties.types(engine, ws)
    resolved: dict[str, PropertyType] = {}
    for name in mapped:
        current = PropertyType(known[name]) if name in known else None
        wanted = asked.get(name)
        if wanted is not None and current is not None and wanted != current:
            raise UsageError(
                f"property {name!r} is already {_a(current)}; "
                f"it cannot be imported as {_a(wanted)}. "
                f"Map the column to a new property name, or drop --type {name}={wanted}."
            )
        resolved[name] = wanted or PropertyType(current or PropertyType.STRING)
    return resolved


def _a(kind: PropertyType) -> str:
    """The type with its article: "a string", "an integer"."""
    return f"{'an' if kind.value[0] in 'aeiou' else 'a'} {kind.value}"


def import_remote_file(
    settings: Settings,
    engine: Engine,
    location: RemoteLocation,
    credentials: Credentials,
    host_keys: HostKeyPolicy,
    spec: ImportSpec,
    *,
    workspace: str = DEFAULT_WORKSPACE,
    progress: ProgressCallback | None = None,
) -> ImportOutcome:
    """Run one import and record it. Never raises for a failed run: see `result.error`."""
    ws = workspace_id(engine, workspace)
    types = resolve_types(engine, ws, spec.mapping.properties, spec.mapping.types)
    spec = dataclasses.replace(spec, mapping=dataclasses.replace(spec.mapping, types=types))
    # The run is held as a worker holds its runs: if this process dies, the run ends failed
    # once its lease runs out; meanwhile it publishes its progress and can be cancelled.
    owner, lease = worker_name(), settings.worker_lease
    run_id = runs.create_run(
        engine,
        ws,
        source=location.origin,
        path=spec.path,
        dry_run=spec.dry_run,
        worker=owner,
        lease_expires_at=utcnow() + timedelta(seconds=lease),
    )
    fence = functools.partial(runqueue.fence, run_id=run_id, worker=owner, lease=lease)
    spec = dataclasses.replace(spec, before_commit=fence)
    result = RunResult(status=RunStatus.FAILED)
    started = time.monotonic()
    with RejectLog() as rejects:
        try:
            source = open_source(location, credentials, host_keys, settings)
        except UsersyncError as error:
            result = RunResult(status=RunStatus.FAILED, error=error)
        else:
            beat = Heartbeat(engine, owner, run_id, lease=lease, listener=progress)
            try:
                with beat:
                    store = UserStore(engine)
                    result = run_import(source, spec, store, ws, rejects, progress=beat.report)
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see cli_output.handle_errors)
                _record_interrupted(engine, run_id, owner)
                raise
            finally:
                source.close()
        result.seconds = time.monotonic() - started  # connecting included
        try:
            recorded = record_outcome(
                engine,
                run_id,
                ws,
                result,
                rejects,
                types,
                dry_run=spec.dry_run,
                path=spec.path,
                owner=owner,
                keep_rejected_runs=settings.keep_rejected_runs,
            )
        except KeyboardInterrupt:  # a second Ctrl-C or SIGTERM, while recording
            if result.applied(spec.dry_run):
                record_applied(
                    engine,
                    run_id,
                    ws,
                    result,
                    types,
                    _INTERRUPTED_AFTER,
                    path=spec.path,
                    owner=owner,
                )
            else:
                _record_interrupted(engine, run_id, owner)
            raise
        except sa_exc.DBAPIError as error:  # the database went away: the outcome still stands
            why = db.unavailable(engine, error).message
            unrecorded = (
                f"run {run_id} could not be recorded, and shows as running until its lease "
                f"runs out: {why}"
            )
            return ImportOutcome(run_id, result, unrecorded)
    if not recorded:
        lapsed = (
            f"run {run_id} was ended as failed by a worker: this process could not renew its "
            "lease in time"
        )
        return ImportOutcome(run_id, result, lapsed)
    return ImportOutcome(run_id, result)


def _record_interrupted(engine: Engine, run_id: int, owner: str) -> None:
    """End the run of an import stopped by the user: its transaction was not committed."""
    # Without the database the run ends failed once its lease runs out, as for a kill.
    with contextlib.suppress(sa_exc.DBAPIError):
        runs.finish_run(
            engine,
            run_id,
            status=RunStatus.FAILED.value,
            message="interrupted (Ctrl-C or SIGTERM) while it ran; nothing was applied",
            owner=owner,
        )


_INTERRUPTED_AFTER = (
    "interrupted (Ctrl-C or SIGTERM) after the file was applied, while the run was being "
    "recorded: its counts stand, but its rejected rows may be missing"
)


def record_applied(
    engine: Engine,
    run_id: int,
    ws: int,
    result: RunResult,
    types: Mapping[str, PropertyType],
    message: str,
    *,
    path: str,
    file_modified: datetime | None = None,
    owner: str | None = None,
) -> None:
    """Record a run that was stopped after the store applied its file but before its outcome
    was recorded (its rejected rows are gone with the stopped process): as applied, with
    `message`, so that it is not taken for a run that applied nothing."""
    with RejectLog() as none_kept, contextlib.suppress(sa_exc.DBAPIError):
        record_outcome(
            engine,
            run_id,
            ws,
            result,
            none_kept,
            types,
            dry_run=False,
            note=message,
            path=path,
            file_modified=file_modified,
            owner=owner,
        )


def record_outcome(
    engine: Engine,
    run_id: int,
    ws: int,
    result: RunResult,
    rejects: RejectLog,
    types: Mapping[str, PropertyType],
    *,
    dry_run: bool,
    path: str,
    note: str | None = None,
    file_modified: datetime | None = None,
    owner: str | None = None,
    keep_rejected_runs: int | None = None,
) -> bool:
    """Record a finished import on its run: counts, file facts, rejected rows; add the mapped
    properties to the catalog once they hold values; and, when the run rejected rows, let go
    of those of older runs but the newest `keep_rejected_runs` (None: keep them all)."""
    message = result.error.message if result.error is not None else note
    if owner is not None and not runqueue.owns(engine, run_id, owner):
        return False  # another worker recovered the run: its record is that worker's now
    runs.add_run_errors(engine, run_id, rejects)  # first: a finished run has all of them
    finished = runs.finish_run(
        engine,
        run_id,
        status=result.status.value,
        bytes_read=result.bytes_read,
        rows_read=result.rows_read,
        users_created=result.users_created,
        users_updated=result.users_updated,
        users_unchanged=result.users_unchanged,
        rows_rejected=result.rows_rejected,
        message=message,
        path=path,
        file_size=result.file_size,
        file_modified=file_modified,
        file_sha256=result.sha256,
        owner=owner,
    )
    if not finished:
        return False  # recovered by another worker in between: its record is not ours
    if result.applied(dry_run):
        properties.ensure(engine, ws, {name: kind.value for name, kind in types.items()})
    if keep_rejected_runs is not None and result.rows_rejected:
        run = runs.get_run(engine, run_id)
        if run is not None:
            runs.delete_old_errors(engine, run, keep_rejected_runs)
    return True


def get_user(engine: Engine, workspace: str, user_id: str) -> UserRecord | None:
    return UserStore(engine).get_user(workspace_id(engine, workspace), user_id)


def delete_user(engine: Engine, workspace: str, user_id: str) -> None:
    UserStore(engine).delete_user(workspace_id(engine, workspace), user_id)


def list_users(
    engine: Engine, workspace: str, *, limit: int, after: str | None, search: str | None
) -> list[UserRecord]:
    return UserStore(engine).list_users(
        workspace_id(engine, workspace), limit=limit, after=after, search=search
    )
