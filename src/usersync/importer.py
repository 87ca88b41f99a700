"""One import run: source -> reader -> mapper -> store, and the record of what happened.

This is the one place that composes the pipeline. The store applies every accepted row in one
transaction, so a run that fails at any point (lost connection, file grown past the limit,
too many rejected rows, interrupted) leaves the User 360 store exactly as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO
from zoneinfo import ZoneInfo

from usersync.browse import open_eligible
from usersync.columnar import NeedsExactReader, columnar_rows
from usersync.enums import RunStatus
from usersync.errors import UsersyncError
from usersync.files import MAX_FILE_SIZE, SizeLimitedReader
from usersync.mapping import ColumnMapping, EmptyCells, MappedRow, RowMapper
from usersync.reader import CsvOptions, CsvReader, Row, RowError
from usersync.rejects import RejectLog
from usersync.sources.base import Source
from usersync.spool import Spool
from usersync.store import ConflictMode, UserStore
from usersync.store.model import BeforeCommit, Change

BATCH_ROWS = 10_000
BATCH_BYTES = 4 << 20  # of JSON: a batch ends at whichever limit comes first (wide files)
# Rows per column-wise batch: pyarrow's working set grows with it. Measured end to end on a
# 200 MB file: 8 K rows with one conversion worker peaked at ~280 MB RSS, 16 K rows with two
# at ~350 MB, for 1-2 s less; with the store writing on a thread of its own, 6 K rows keep
# the peak under the 300 MB budget at the same speed.
FAST_BATCH_ROWS = 6_144
PROGRESS_EVERY = 0.25  # seconds between progress reports


class TooManyRejected(UsersyncError):
    exit_code = 5


class FileChanged(UsersyncError):
    exit_code = 5
    transient = True


def _check_unchanged(source: Source, path: str, raw: SizeLimitedReader) -> None:
    """A file rewritten while it was read would import a mix of two versions: refuse it.
    Its size and its modification time must be what they were when the run started."""
    expected, read = raw.expected_size, raw.bytes_read
    now = source.stat(path)
    if expected is not None and (read != expected or now.size != expected):
        raise FileChanged(
            f"{path} changed while it was read (it had {expected:,} bytes when the run "
            f"started, {read:,} were read, it now has {now.size:,}); nothing was imported. "
            "Run the import again once the file is complete."
        )
    before = raw.expected_modified
    if before is not None and now.modified is not None and now.modified != before:
        raise FileChanged(
            f"{path} changed while it was read (the run started with the version modified "
            f"at {before:%Y-%m-%d %H:%M:%S}, and it was modified again at "
            f"{now.modified:%Y-%m-%d %H:%M:%S}); nothing was imported. Run the import again "
            "once the file is complete."
        )


@dataclass(frozen=True)
class ImportSpec:
    path: str
    mapping: ColumnMapping
    conflict: ConflictMode = ConflictMode.UPDATE
    empty_cells: EmptyCells = EmptyCells.IGNORE
    csv: CsvOptions = field(default_factory=CsvOptions)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    dry_run: bool = False
    max_rejected: int | None = None  # more rejected rows than this fails the run
    max_size: int = MAX_FILE_SIZE
    spool_dir: str | None = None  # where the local copy for a second read goes (default TMPDIR)
    digest: bool = False  # compute the file's SHA-256 (RunResult.sha256)
    before_commit: BeforeCommit | None = None  # a last check inside the store's transaction
    skip_unchanged: bool = False  # users the file leaves as they are are not written


@dataclass(frozen=True)
class Progress:
    bytes_read: int
    total_bytes: int | None
    rows_read: int
    rows_rejected: int
    applying: bool = False  # the whole file is read; the store is applying it


@dataclass
class RunResult:
    status: RunStatus = RunStatus.RUNNING
    bytes_read: int = 0
    rows_read: int = 0
    users_created: int = 0
    users_updated: int = 0
    users_unchanged: int = 0  # counted when ImportSpec.skip_unchanged; else among updated
    rows_rejected: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first ones
    error: UsersyncError | None = None  # why the run failed
    file_size: int | None = None
    sha256: str | None = None  # of the whole file, when ImportSpec.digest asked for it
    seconds: float = 0.0

    def applied(self, dry_run: bool) -> bool:
        """Whether the store committed this run's changes (a dry run commits none)."""
        return not dry_run and self.status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL)


ProgressCallback = Callable[[Progress], None]


def run_import(
    source: Source,
    spec: ImportSpec,
    store: UserStore,
    workspace_id: int,
    rejects: RejectLog,
    *,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Import `spec.path` from `source` into the workspace's users.

    Never raises a UsersyncError: a failure is returned as `status=FAILED` with `error` set.
    Rejected rows go to `rejects` (all of them) and `RunResult.errors` (the first ones).
    """
    result = RunResult()
    started = time.monotonic()
    try:
        _run(source, spec, store, workspace_id, rejects, result, progress)
        result.status = RunStatus.PARTIAL if result.rows_rejected else RunStatus.SUCCEEDED
    except UsersyncError as error:
        result.status = RunStatus.FAILED
        result.error = error
        result.users_created = result.users_updated = result.users_unchanged = 0
    finally:
        result.errors = list(rejects.first)
        result.rows_rejected = rejects.rows
        result.seconds = time.monotonic() - started
    return result


def _run(
    source: Source,
    spec: ImportSpec,
    store: UserStore,
    workspace_id: int,
    rejects: RejectLog,
    result: RunResult,
    progress: ProgressCallback | None,
) -> None:
    with open_eligible(source, spec.path, spec.max_size, digest=spec.digest) as raw:
        result.file_size = raw.expected_size
        run = _Pipeline(source, spec, raw, rejects, result, progress)

        def apply(batches: Iterable[Sequence[Change]]) -> None:
            counts = store.apply(
                workspace_id,
                batches,
                spec.conflict,
                dry_run=spec.dry_run,
                before_commit=spec.before_commit,
                skip_unchanged=spec.skip_unchanged,
            )
            result.users_created = counts.created
            result.users_updated = counts.updated
            result.users_unchanged = counts.unchanged
            result.sha256 = raw.sha256

        try:
            with Spool(raw, directory=spec.spool_dir) as spool:
                columns = CsvReader(spool.replay(), spec.csv, name=spec.path).columns
                try:
                    apply(run.fast(spool.replay(), columns, store.takes_columns))
                except NeedsExactReader:
                    # Nothing was applied (the store rolled back): read the local copy exactly.
                    run.restart()
                    with spool.finish() as local:
                        apply(run.exact(local))
        finally:
            result.bytes_read = raw.bytes_read  # a failed run too says how far it read


class _Pipeline:
    """The reading side of one run: batches of changes for the store, rejects on the side,
    progress on the way, and the last checks before the store may commit."""

    def __init__(
        self,
        source: Source,
        spec: ImportSpec,
        raw: SizeLimitedReader,
        rejects: RejectLog,
        result: RunResult,
        progress: ProgressCallback | None,
    ) -> None:
        self._source = source
        self._spec = spec
        self._raw = raw
        self._rejects = rejects
        self._result = result
        self._progress = progress
        self._next_report = 0.0

    def restart(self) -> None:
        self._result.rows_read = 0
        self._rejects.clear()

    def report(self, *, applying: bool = False, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_report:
            return
        self._next_report = now + PROGRESS_EVERY
        self._result.bytes_read = self._raw.bytes_read
        self._result.rows_rejected = self._rejects.rows
        if self._progress is not None:
            self._progress(
                Progress(
                    self._raw.bytes_read,
                    self._raw.expected_size,
                    self._result.rows_read,
                    self._rejects.rows,
                    applying,
                )
            )

    def reject(self, errors: list[RowError]) -> None:
        self._rejects.add(errors)
        limit = self._spec.max_rejected
        if limit is not None and self._rejects.rows > limit:
            raise TooManyRejected(
                f"{self._spec.path}: more than {limit} rows were rejected (the limit set by "
                f"--max-rejected); the last at line {errors[0].line}: {errors[0].message}. "
                "Nothing was imported."
            )

    def finish(self) -> None:
        """The whole file is read: check it did not change meanwhile."""
        _check_unchanged(self._source, self._spec.path, self._raw)
        self.report(force=True)

    def exact(self, stream: BinaryIO) -> Iterator[list[MappedRow]]:
        """Row by row with `CsvReader` and `RowMapper`: any encoding, any CSV."""
        spec = self._spec
        reader = CsvReader(stream, spec.csv, name=spec.path)
        mapper = RowMapper(
            spec.mapping, reader.columns, zone=spec.zone, empty_cells=spec.empty_cells
        )
        batch: list[MappedRow] = []
        size = 0
        for item in reader:
            self._result.rows_read += 1
            mapped = mapper.map(item) if isinstance(item, Row) else [item]
            if isinstance(mapped, MappedRow):
                batch.append(mapped)  # already the (user_id, properties JSON) pair the store takes
                size += len(mapped.properties_json)
                if len(batch) >= BATCH_ROWS or size >= BATCH_BYTES:
                    yield batch
                    batch, size = [], 0
                    self.report()
            else:
                self.reject(mapped)
        self.finish()
        if batch:
            yield batch
        self.report(applying=True, force=True)

    def fast(
        self, stream: BinaryIO, columns: list[str], as_columns: bool
    ) -> Iterator[Sequence[Change]]:
        """Column-wise with pyarrow; raises NeedsExactReader where it cannot be exact. With
        `as_columns`, batches without rejected rows come as ChangeColumns."""
        spec = self._spec
        for batch in columnar_rows(
            stream,
            columns,
            spec.csv,
            spec.mapping,
            zone=spec.zone,
            empty_cells=spec.empty_cells,
            batch_rows=FAST_BATCH_ROWS,
            as_columns=as_columns,
        ):
            self._result.rows_read += batch.rows
            for errors in batch.rejected:
                self.reject(errors)
            if batch.changes:
                yield batch.changes
            self.report()
        self.finish()
        self.report(applying=True, force=True)
