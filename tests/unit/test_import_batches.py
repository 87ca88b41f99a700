"""How `run_import` hands a file's changes to the store: in batches bounded by rows and by size.

The file is served from memory and the store only records what it is given (both are seams:
the real SFTP server and databases are in tests/integration); what is under test is the
importer's reading and batching between them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import BinaryIO, cast

import pytest

from usersync import importer
from usersync.enums import RunStatus
from usersync.files import EntryKind, RemoteEntry
from usersync.importer import ImportSpec, run_import
from usersync.mapping import ColumnMapping
from usersync.reader import CsvOptions
from usersync.rejects import RejectLog
from usersync.sources.base import Source
from usersync.store import UserStore
from usersync.store.model import ApplyCounts, Change, ConflictMode

PATH = "/in/userdata_wide.csv"


class FileInMemory:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stat(self, path: str) -> RemoteEntry:
        return RemoteEntry(
            name=path.rsplit("/", 1)[-1],
            path=path,
            kind=EntryKind.FILE,
            size=len(self._data),
            modified=datetime(2026, 1, 1, tzinfo=UTC),
        )

    def open(self, path: str) -> BinaryIO:
        return io.BytesIO(self._data)


class RecordingStore:
    takes_columns = False  # it reads the batches change by change

    def __init__(self) -> None:
        self.batches: list[list[Change]] = []

    def apply(
        self,
        workspace_id: int,
        batches: Iterable[Sequence[Change]],
        mode: ConflictMode,
        dry_run: bool = False,
        before_commit: object = None,
        skip_unchanged: bool = False,
    ) -> ApplyCounts:
        self.batches = [list(batch) for batch in batches]
        return ApplyCounts(created=sum(map(len, self.batches)), updated=0)


# Column-wise, then row by row: the column-wise reader takes only one-byte delimiters.
@pytest.mark.parametrize("delimiter", [",", "\u00a7"])
def test_batches_of_wide_rows_end_at_a_size_not_at_a_row_count(delimiter: str) -> None:
    # Rows of 2 KB: short enough for the column-wise path, which reads 6 K rows a batch.
    wide = "x" * 2_000
    data = "userId,a,b\n" + "".join(f"u{i},{wide},{i}\n" for i in range(10_000))
    data = data.replace(",", delimiter)
    store = RecordingStore()
    with RejectLog() as rejects:
        result = run_import(
            cast(Source, FileInMemory(data.encode())),
            ImportSpec(
                path=PATH,
                mapping=ColumnMapping("userId", {"a": "a", "b": "b"}),
                csv=CsvOptions(delimiter=delimiter),
            ),
            cast(UserStore, store),
            1,
            rejects,
        )
    assert result.status is RunStatus.SUCCEEDED, result.error
    # 10,000 rows of 2 KB are 20 MB: batches of either path's row count would be 12 MB or more.
    assert [user_id for batch in store.batches for user_id, _ in batch] == [
        f"u{i}" for i in range(10_000)
    ]
    assert json.loads(store.batches[-1][-1][1]) == {"a": wide, "b": "9999"}
    sizes = [sum(len(document) for _, document in batch) for batch in store.batches]
    assert len(sizes) >= 5
    assert max(sizes) <= importer.BATCH_BYTES + 1_000_000  # the limit, and a block's rows
