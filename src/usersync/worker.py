"""The worker: turns due fire times into runs, claims runs, executes them, and recovers the
runs of workers that died. `usersync serve` runs one in a background thread; `usersync
worker` runs one alone (scale-out on PostgreSQL: start as many as you like).

    worker = Worker(settings, engine, box)
    worker.run(stop_event)                 # until the event is set; the current run finishes,
                                           # and the webhook calls still to make (up to a minute)
    BackgroundWorker(settings, engine, box).start() / .stop()
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import posixpath
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import Engine

from usersync import db, runqueue, webhooks
from usersync.browse import list_files
from usersync.config import Settings
from usersync.connectivity import open_loaded, source_url
from usersync.enums import AfterImport, FileChoice, RunStatus, RunTrigger
from usersync.errors import RemotePathNotFound, UsersyncError
from usersync.files import RemoteEntry, oldest_first, require_eligible
from usersync.heartbeat import BEAT, Heartbeat, worker_name
from usersync.importer import ImportSpec, Progress, RunResult, run_import
from usersync.mapping import ColumnMapping, EmptyCells, PropertyType
from usersync.outbox import Outbox
from usersync.reader import CsvOptions
from usersync.rejects import RejectLog
from usersync.schedule import resolve_zone
from usersync.schema import runs as runs_table
from usersync.schema import utcnow
from usersync.secretbox import SecretBox
from usersync.service import record_applied, record_outcome, resolve_types
from usersync.sources.base import Source
from usersync.store import ConflictMode, UserStore, connections, runs
from usersync.store.runs import Run
from usersync.store.syncs import Sync, SyncNotFound, webhook_secret
from usersync.store.syncs import get as get_sync

log = logging.getLogger("usersync.worker")

HASH_CHUNK = 1024 * 1024
# How long a stopping worker waits for the webhook calls still to make (seconds).
WEBHOOK_GRACE = 60.0


# A file last modified longer ago than this is not being written: the growing-file guard
# takes no second look. A minute, so that a server's clock a little behind ours cannot make a
# file written right now look quiet.
QUIET_FOR = timedelta(seconds=60)


class _Stopped(UsersyncError):
    transient = True  # tried again, as the run of a worker that died would be


_STOPPED = (
    "the worker was stopped at once (a second SIGTERM or Ctrl-C) while the run was in "
    "progress; nothing was applied"
)
_STOPPED_AFTER_APPLYING = (
    "the worker was stopped at once (a second SIGTERM or Ctrl-C) after the file was applied, "
    "while the run was being recorded: its counts stand, but its rejected rows and what "
    "happens to the file after an import (move, delete) may be missing"
)


@dataclass(frozen=True)
class WorkerOptions:
    poll: float = 1.0  # seconds between looks at the queue when idle
    lease: float = 60.0  # a running run's lease; renewed every third of it (or faster)
    heartbeat: float = 2.0  # seconds between progress reports of a running run
    max_attempts: int = 3  # of a run that fails transiently or whose worker died
    backoff: tuple[float, ...] = (10.0, 60.0, 300.0)  # seconds before attempt 2, 3, ...
    settle: float = 3.0  # seconds between the two looks of the growing-file guard


def options_from(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        poll=settings.worker_poll,
        lease=settings.worker_lease,
        heartbeat=BEAT,
        backoff=settings.retry_backoff,
        max_attempts=len(settings.retry_backoff) + 1,
        settle=settings.settle_seconds,
    )


@dataclass
class _Context:
    run: Run
    sync: Sync
    source: Source
    beat: Heartbeat


@dataclass(frozen=True)
class _Applied:
    """A run whose file the store applied: what recording its outcome takes."""

    run_id: int
    workspace_id: int
    result: RunResult
    types: dict[str, PropertyType]
    entry: RemoteEntry


class Worker:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        box: SecretBox,
        *,
        options: WorkerOptions | None = None,
        name: str | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.box = box
        self.options = options or options_from(settings)
        self.name = name or worker_name()
        self.progress = progress  # told of each run's progress, besides the database
        self.outbox = Outbox(self._notify)  # ended runs' webhook calls, made on its thread
        self._going: tuple[Run, Heartbeat] | None = None  # the run `execute` is at
        # A run whose file the store has applied, until its outcome is recorded.
        self._applied: _Applied | None = None

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set. The run in progress when it is set finishes first, and
        so do the webhook calls still to make, for up to `WEBHOOK_GRACE` seconds."""
        log.info("worker %s started", self.name)
        while not stop.is_set():
            try:
                busy = self.tick()
            except KeyboardInterrupt:  # stop at once (`usersync worker`: a second signal)
                self.give_up(_Stopped(_STOPPED))
                raise
            except db.CONNECTION_ERRORS as error:
                log.warning("worker %s: %s", self.name, db.DatabaseLost(error).message)
                busy = False
            except Exception:  # log it and carry on
                log.exception("worker %s: a round failed; trying again", self.name)
                busy = False
            if not busy:
                stop.wait(self.options.poll)
        if not self.outbox.wait(WEBHOOK_GRACE):
            log.warning(
                "worker %s: stopped with %s webhook calls not made", self.name, self.outbox.pending
            )
        log.info("worker %s stopped", self.name)

    def recover(self) -> None:
        """End the runs of workers that stopped answering; their webhook calls fall to this
        one."""
        for run_id in runqueue.recover(self.engine, max_attempts=self.options.max_attempts):
            self.outbox.post(run_id)

    def tick(self) -> bool:
        """One round: recover lost runs, queue due fire times, claim and execute one run.
        True if it executed one."""
        self.recover()
        runqueue.schedule_due(self.engine)
        run = runqueue.claim(self.engine, self.name, lease=self.options.lease)
        if run is None:
            return False
        self.execute(run)
        return True

    def execute(self, run: Run) -> list[int]:
        """Execute a claimed run to its end; never raises for what a run may meet. The ids
        of the runs it made: this one, and one per further file for file choice "all_new"."""
        log.info("run %s (sync %s, attempt %s) started", run.id, run.sync_id, run.attempt)
        with Heartbeat(
            self.engine,
            self.name,
            run.id,
            lease=self.options.lease,
            interval=self.options.heartbeat,
            listener=self.progress,
        ) as beat:
            self._going = (run, beat)
            try:
                self._execute(run, beat)
            except UsersyncError as error:
                self._fail(beat.run_id, run, error)
            except db.CONNECTION_ERRORS as error:  # recording it may well fail too
                self._fail(beat.run_id, run, db.DatabaseLost(error))
            except Exception as error:
                log.exception("run %s failed unexpectedly", beat.run_id)
                self._fail(beat.run_id, run, UsersyncError(f"internal error: {error}"))
            self._going = None  # not on an interrupt: see give_up
        for run_id in beat.run_ids:
            self.outbox.post(run_id)
        return beat.run_ids

    def give_up(self, error: UsersyncError) -> None:
        """`execute` was interrupted (Ctrl-C, SIGTERM): the run it was at ends failed now
        with `error` (its transaction was rolled back; a transient error queues a retry),
        instead of showing as running until its lease runs out. Without the database, that
        is what happens."""
        if self._going is None:
            return
        run, beat = self._going
        applied, self._going, self._applied = self._applied, None, None
        if applied is not None and applied.run_id == beat.run_id:
            record_applied(
                self.engine,
                applied.run_id,
                applied.workspace_id,
                applied.result,
                applied.types,
                _STOPPED_AFTER_APPLYING,
                path=applied.entry.path,
                file_modified=applied.entry.modified,
                owner=self.name,
            )
            return
        with contextlib.suppress(*db.CONNECTION_ERRORS):
            ended = runs.finish_run(
                self.engine,
                beat.run_id,
                status=RunStatus.FAILED.value,
                message=error.message,
                owner=self.name,
            )
            if ended:  # not if its outcome was recorded already: it stands
                self._retry_if_transient(run, error)

    def _notify(self, run_id: int) -> None:
        """The sync's webhook, if it has one and wants this run's outcome (on the outbox's
        thread)."""
        finished = runs.get_run(self.engine, run_id)
        if finished is None or finished.sync_id is None or finished.status == "queued":
            return
        try:
            sync = get_sync(self.engine, finished.workspace_id, finished.sync_id)
        except SyncNotFound:
            return
        if sync.webhook_url is None or not webhooks.wanted(sync.webhook_on, finished):
            return
        secret = webhook_secret(self.engine, self.box, sync.workspace_id, sync.id)
        delivery = webhooks.send(
            sync.webhook_url,
            secret,
            webhooks.run_summary(finished),
            pauses=self.settings.webhook_retry,
        )
        runs.note_webhook(self.engine, run_id, delivery.detail)

    def _fail(self, run_id: int, run: Run, error: UsersyncError) -> None:
        if not runs.finish_run(
            self.engine,
            run_id,
            status=RunStatus.FAILED.value,
            message=error.message,
            owner=self.name,
        ):
            log.warning("run %s was taken over by another worker: %s", run_id, error.message)
            return  # its retry is the other worker's business now
        log.info("run %s failed: %s", run_id, error.message)
        self._retry_if_transient(run, error)

    def _execute(self, run: Run, beat: Heartbeat) -> None:
        assert run.sync_id is not None, "only runs of a sync are queued"
        try:
            sync = get_sync(self.engine, run.workspace_id, run.sync_id)
        except SyncNotFound:
            raise UsersyncError("its sync was deleted before the run started") from None
        connection, credentials = connections.load(
            self.engine, self.box, sync.workspace_id, sync.connection_id
        )
        run = dataclasses.replace(run, source=source_url(connection))
        _describe_run(self.engine, run.id, source=run.source)
        source = open_loaded(self.settings, connection, credentials)
        try:
            context = _Context(run, sync, source, beat)
            if sync.file_choice == FileChoice.EXACT:
                assert sync.path is not None
                entry = source.stat(sync.path)
                last = _last_successes(self.engine, sync.id, [entry.path])
                self._import_one(context, run.id, entry, last.get(entry.path))
            else:
                self._import_chosen(context)
        finally:
            source.close()

    def _import_chosen(self, context: _Context) -> None:
        sync = context.sync
        listing = list_files(context.source, sync.folder, self.settings.max_file_size)
        # Some FTP servers' listings give no time for some files: ask for each one's (a file
        # without a time would be taken for the newest, and never for one seen before).
        files = [
            f if f.modified is not None else context.source.stat(f.path) for f in listing.files
        ]
        candidates = oldest_first(files)
        if sync.file_choice == FileChoice.NEWEST:
            candidates = candidates[-1:]
        last = _last_successes(self.engine, sync.id, [f.path for f in candidates])
        if sync.file_choice == FileChoice.ALL_NEW:
            candidates = [f for f in candidates if not _same_file(last.get(f.path), f)]
        if not candidates:
            what = "no eligible file" if not listing.files else "no new file"
            runs.finish_run(
                self.engine,
                context.run.id,
                status=RunStatus.SKIPPED.value,
                message=f"{what} in {sync.folder}",
                owner=self.name,
            )
            return
        run_id = context.run.id
        for index, entry in enumerate(candidates):
            if index > 0:  # every further file of this fire time gets a run of its own
                run_id = runqueue.start_followup(
                    self.engine, context.run, self.name, path=entry.path, lease=self.options.lease
                )
                context.beat.run_id = run_id
            if not self._import_one(context, run_id, entry, last.get(entry.path)):
                break
            if context.beat.cancelled:
                break  # the further files wait for the next fire time

    def _import_one(
        self, context: _Context, run_id: int, entry: RemoteEntry, last: Run | None
    ) -> bool:
        """Import one file under run `run_id` (`last`: the sync's latest successful run of
        that path). False when the run was given back to the queue (the file is still
        growing) and no further file should be read now."""
        sync = context.sync
        require_eligible(entry, self.settings.max_file_size)
        unchanged = (
            not sync.import_unchanged
            and context.run.trigger != RunTrigger.MANUAL  # "run now" imports whatever it finds
            and not context.run.dry_run
            and last is not None
            and (_same_file(last, entry) or self._same_content(context, entry, last))
        )
        if unchanged:
            assert last is not None
            runs.finish_run(
                self.engine,
                run_id,
                status=RunStatus.SKIPPED.value,
                message=f"{entry.path} has not changed since run {last.id}",
                path=entry.path,
                file_size=entry.size,
                file_modified=entry.modified,
                file_sha256=last.file_sha256,
                owner=self.name,
            )
            return True
        if self._still_growing(context.source, entry):
            wait = max(self.options.settle * 2, 1.0)
            runqueue.requeue(
                self.engine,
                run_id,
                self.name,
                not_before=utcnow() + timedelta(seconds=wait),
                message=f"{entry.path} is still being written; it is read once it stops changing",
            )
            return False
        _describe_run(self.engine, run_id, path=entry.path, file_size=entry.size)
        self._import_and_record(context, run_id, entry)
        return True

    def _same_content(self, context: _Context, entry: RemoteEntry, last: Run) -> bool:
        """A file touched but not changed (same size, new time) is the same once its
        SHA-256 matches the last successful import's."""
        if last.file_sha256 is None or last.file_size != entry.size:
            return False
        digest = hashlib.sha256()
        with context.source.open(entry.path) as stream:
            while chunk := stream.read(HASH_CHUNK):
                digest.update(chunk)
        return digest.hexdigest() == last.file_sha256

    def _still_growing(self, source: Source, entry: RemoteEntry) -> bool:
        if self.options.settle <= 0:
            return False
        if entry.modified is not None and utcnow() - entry.modified > QUIET_FOR:
            return False  # untouched for a while (by both clocks): nobody is writing it now
        threading.Event().wait(self.options.settle)
        again = source.stat(entry.path)
        if entry.modified is None:  # no time to compare: the size says it
            return again.size != entry.size
        return (again.size, again.modified) != (entry.size, entry.modified)

    def _import_and_record(self, context: _Context, run_id: int, entry: RemoteEntry) -> None:
        sync = context.sync
        ws = sync.workspace_id
        mapping = sync.mapping
        asked = {name: PropertyType(kind) for name, kind in mapping.get("types", {}).items()}
        types = resolve_types(self.engine, ws, mapping["properties"], asked)
        spec = ImportSpec(
            path=entry.path,
            mapping=ColumnMapping(mapping["user_id"], mapping["properties"], types),
            conflict=ConflictMode(sync.conflict),
            empty_cells=EmptyCells(sync.empty_cells),
            skip_unchanged=sync.skip_unchanged_users,
            csv=CsvOptions(encoding=sync.encoding, delimiter=sync.delimiter or ","),
            zone=resolve_zone(sync.timezone),
            max_rejected=sync.max_rejected,
            max_size=self.settings.max_file_size,
            digest=True,
            dry_run=context.run.dry_run,
            before_commit=functools.partial(
                runqueue.fence, run_id=run_id, worker=self.name, lease=self.options.lease
            ),
        )
        with RejectLog() as rejects:
            store = UserStore(self.engine)
            result = run_import(
                context.source, spec, store, ws, rejects, progress=context.beat.report
            )
            note = None
            if result.applied(spec.dry_run):  # committed: an interrupt now must not undo that
                self._applied = _Applied(run_id, ws, result, types, entry)
                note = self._after_import(context, entry)
            recorded = record_outcome(
                self.engine,
                run_id,
                ws,
                result,
                rejects,
                types,
                dry_run=spec.dry_run,
                note=note,
                path=entry.path,
                file_modified=entry.modified,
                owner=self.name,
                keep_rejected_runs=self.settings.keep_rejected_runs,
            )
            self._applied = None
        if not recorded:
            log.warning("run %s was taken over by another worker; its outcome is dropped", run_id)
            return
        log.info("run %s %s: %s rows", run_id, result.status.value, result.rows_read)
        if result.error is not None:
            self._retry_if_transient(context.run, result.error)

    def _after_import(self, context: _Context, entry: RemoteEntry) -> str | None:
        """Move or delete the file once the store has committed; a failure is noted on the
        run (the import stands)."""
        sync = context.sync
        try:
            if sync.after_import == AfterImport.MOVE:
                assert sync.move_to is not None
                return _move(context.source, entry, sync.move_to)
            if sync.after_import == AfterImport.DELETE:
                context.source.remove(entry.path)
                return "deleted from the server"
        except UsersyncError as error:
            return f"imported, but the file could not be {sync.after_import}d: {error.message}"
        return None

    def _retry_if_transient(self, run: Run, error: UsersyncError) -> None:
        if not (error.transient and run.attempt < self.options.max_attempts):
            return
        delays = self.options.backoff or (0.0,)
        delay = delays[min(run.attempt - 1, len(delays) - 1)]
        runqueue.retry_later(self.engine, run, not_before=utcnow() + timedelta(seconds=delay))


def _describe_run(engine: Engine, run_id: int, **values: object) -> None:
    """What a running run is at, for whoever watches it (source, path, total bytes)."""
    with engine.begin() as conn:
        conn.execute(sa.update(runs_table).where(runs_table.c.id == run_id).values(**values))


def _same_file(last: Run | None, entry: RemoteEntry) -> bool:
    """Whether `last` imported this very file: same size and modification time."""
    return (
        last is not None and last.file_size == entry.size and last.file_modified == entry.modified
    )


def _last_successes(engine: Engine, sync_id: int, paths: list[str]) -> dict[str, Run]:
    """Each path's latest run that read the file whole (succeeded, partial or skipped as
    unchanged), in one query for all the paths."""
    if not paths:
        return {}
    latest = (
        sa.select(sa.func.max(runs_table.c.id))
        .where(
            runs_table.c.sync_id == sync_id,
            runs_table.c.path.in_(paths),
            runs_table.c.status.in_(
                [RunStatus.SUCCEEDED.value, RunStatus.PARTIAL.value, RunStatus.SKIPPED.value]
            ),
            runs_table.c.file_size.is_not(None),
            runs_table.c.dry_run.is_(False),
        )
        .group_by(runs_table.c.path)
    )
    with engine.connect() as conn:
        rows = conn.execute(sa.select(runs_table).where(runs_table.c.id.in_(latest))).all()
    return {row.path: Run(**row._asdict()) for row in rows}


class BackgroundWorker:
    """A Worker on a daemon thread, for `usersync serve`."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        box: SecretBox,
        *,
        options: WorkerOptions | None = None,
    ) -> None:
        self.worker = Worker(settings, engine, box, options=options)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.worker.run, args=(self._stop,), name="usersync-worker", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether its thread is working (it stops only when asked, or on a crash)."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the worker to stop and wait for the run in progress (up to `timeout`)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


def _move(source: Source, entry: RemoteEntry, folder: str) -> str:
    """Move the imported file into `folder`; what to note on the run."""
    target = posixpath.join(folder, entry.name)
    try:
        source.rename(entry.path, target)
    except RemotePathNotFound:
        if not _exists(source, entry.path):
            raise
        # The server named no path: the file is there, so the folder to move it to is not.
        raise RemotePathNotFound(
            f"there is no folder {folder} on the server; create it, or change where the sync "
            "moves its files"
        ) from None
    return f"moved to {target}"


def _exists(source: Source, path: str) -> bool:
    try:
        source.stat(path)
    except UsersyncError:
        return False
    return True
