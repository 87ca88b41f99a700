"""One import run: source -> reader -> mapper -> store, and the record of what happened.

This is the one place that composes the pipeline. The store applies every accepted row in one
transaction, so a run that fails at any point (lost connection, file grown past the limit,
too many rejected rows, interrupted) leaves the User 360 store exactly as it was.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from usersync.browse import open_eligible
from usersync.enums import RunStatus
from usersync.errors import UsersyncError
from usersync.files import MAX_FILE_SIZE
from usersync.mapping import ColumnMapping, EmptyCells, MappedRow, RowMapper
from usersync.reader import CsvOptions, CsvReader, Row, RowError
from usersync.rejects import RejectLog
from usersync.sources.base import Source
from usersync.store import ConflictMode, UserChange, UserStore

BATCH_ROWS = 10_000
PROGRESS_EVERY = 0.25  # seconds between progress reports


class TooManyRejected(UsersyncError):
    exit_code = 5


class FileChanged(UsersyncError):
    exit_code = 5
    transient = True


def _check_unchanged(source: Source, path: str, expected: int | None, read: int) -> None:
    """A file rewritten while it was read would import a mix of two versions: refuse it."""
    now = source.stat(path).size
    if expected is not None and (read != expected or now != expected):
        raise FileChanged(
            f"{path} changed while it was read (it had {expected:,} bytes when the run "
            f"started, {read:,} were read, it now has {now:,}); nothing was imported. Run "
            "the import again once the file is complete."
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
    rows_rejected: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first ones
    error: UsersyncError | None = None  # why the run failed
    file_size: int | None = None
    seconds: float = 0.0


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
        result.users_created = result.users_updated = 0
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
    with open_eligible(source, spec.path, spec.max_size) as raw:
        result.file_size = raw.expected_size
        stream = io.BufferedReader(raw, buffer_size=1024 * 1024)
        reader = CsvReader(stream, spec.csv, name=spec.path)
        mapper = RowMapper(
            spec.mapping, reader.columns, zone=spec.zone, empty_cells=spec.empty_cells
        )

        def report(applying: bool = False) -> None:
            result.bytes_read = raw.bytes_read
            result.rows_rejected = rejects.rows
            if progress is not None:
                progress(
                    Progress(
                        raw.bytes_read, raw.expected_size, result.rows_read, rejects.rows, applying
                    )
                )

        def batches() -> Iterator[list[UserChange]]:
            batch: list[UserChange] = []
            next_report = time.monotonic() + PROGRESS_EVERY
            limit = spec.max_rejected
            for item in reader:
                result.rows_read += 1
                mapped = mapper.map(item) if isinstance(item, Row) else [item]
                if isinstance(mapped, MappedRow):
                    batch.append(UserChange(mapped.user_id, mapped.properties_json))
                    if len(batch) < BATCH_ROWS:
                        continue
                    yield batch
                    batch = []
                else:
                    rejects.add(mapped)
                    if limit is not None and rejects.rows > limit:
                        raise TooManyRejected(
                            f"{spec.path}: more than {limit} rows were rejected (the limit set "
                            f"by --max-rejected); the last at line {mapped[0].line}: "
                            f"{mapped[0].message}. Nothing was imported."
                        )
                if time.monotonic() >= next_report:
                    report()
                    next_report = time.monotonic() + PROGRESS_EVERY
            _check_unchanged(source, spec.path, raw.expected_size, raw.bytes_read)
            report()
            if batch:
                yield batch
            report(applying=True)

        counts = store.apply(workspace_id, batches(), spec.conflict, dry_run=spec.dry_run)
        result.users_created = counts.created
        result.users_updated = counts.updated
        result.bytes_read = raw.bytes_read
