"""The demo's sample files: every row of userdata_customers.csv imports with the demo
mapping, and userdata_with_errors.csv rejects exactly the rows it was made to reject."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from usersync import demo
from usersync.enums import PropertyType
from usersync.files import EntryKind, HiddenReason, RemoteEntry, classify
from usersync.mapping import ColumnMapping, MappedRow, RowMapper
from usersync.reader import CsvReader, Row, RowError


def mapped(name: str) -> tuple[list[MappedRow], list[RowError]]:
    """The file's rows through the real reader and the demo mapping."""
    mapping = ColumnMapping(
        user_id=demo.COLUMNS[0],
        properties=demo.PROPERTIES,
        types={prop: PropertyType(kind) for prop, kind in demo.TYPES.items()},
    )
    reader = CsvReader(io.BytesIO(demo.sample_files()[name]), name=name)
    mapper = RowMapper(mapping, reader.columns, zone=ZoneInfo("UTC"))
    accepted: list[MappedRow] = []
    rejected: list[RowError] = []
    for item in reader:
        assert isinstance(item, Row), item
        result = mapper.map(item)
        if isinstance(result, MappedRow):
            accepted.append(result)
        else:
            rejected.extend(result)
    return accepted, rejected


def test_every_customer_imports_once() -> None:
    accepted, rejected = mapped("userdata_customers.csv")
    assert rejected == []
    assert len(accepted) == 50
    assert len({row.user_id for row in accepted}) == 50


def test_the_errors_file_rejects_the_three_rows_made_bad() -> None:
    accepted, rejected = mapped("userdata_with_errors.csv")
    assert len(accepted) == 9
    assert [(e.line, e.column, e.value) for e in rejected] == [
        (5, "age", "abc"),
        (8, "signup_date", "2026-02-30"),
        (11, "newsletter", "maybe"),
    ]


def test_the_archived_export_imports() -> None:
    accepted, rejected = mapped("archive/2026/userdata_2026_01.csv")
    assert rejected == []
    assert [row.user_id for row in accepted] == [f"u-{n}" for n in range(1001, 1011)]


def test_the_samples_are_the_same_every_time() -> None:
    assert demo.sample_files() == demo.sample_files()


def test_only_the_two_userdata_files_at_the_top_are_eligible() -> None:
    top = [name for name in demo.sample_files() if "/" not in name]
    listing = classify("/", [RemoteEntry(n, f"/{n}", EntryKind.FILE, size=1) for n in top])
    assert [f.name for f in listing.files] == [
        "userdata_customers.csv",
        "userdata_with_errors.csv",
    ]
    assert [(h.entry.name, h.reason) for h in listing.hidden] == [
        ("readme.txt", HiddenReason.NOT_CSV)
    ]
