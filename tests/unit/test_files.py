import dataclasses
import io
from datetime import UTC, datetime

import pytest

from usersync.errors import FileTooLarge, NotEligible
from usersync.files import (
    MAX_FILE_SIZE,
    EntryKind,
    HiddenReason,
    RemoteEntry,
    SizeLimitedReader,
    classify,
    format_size,
    hidden_reason,
    newest_first,
    oldest_first,
    require_eligible,
    utf8_named,
)


def file(name: str, size: int = 10, kind: EntryKind = EntryKind.FILE) -> RemoteEntry:
    return RemoteEntry(
        name=name,
        path=f"/in/{name}",
        kind=kind,
        size=size,
        modified=datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("name", "size", "kind", "reason"),
    [
        ("userdata_a.csv", 10, EntryKind.FILE, None),
        ("userdata_a.CSV", 10, EntryKind.FILE, None),
        ("userdata_.Csv", 10, EntryKind.FILE, None),
        ("userdata_a.csv", MAX_FILE_SIZE, EntryKind.FILE, None),
        ("userdata_a.csv", MAX_FILE_SIZE + 1, EntryKind.FILE, HiddenReason.TOO_LARGE),
        ("UserData_a.csv", 10, EntryKind.FILE, HiddenReason.BAD_PREFIX),
        ("users_a.csv", 10, EntryKind.FILE, HiddenReason.BAD_PREFIX),
        ("userdata_a.txt", 10, EntryKind.FILE, HiddenReason.NOT_CSV),
        ("userdata_a.csv.gz", 10, EntryKind.FILE, HiddenReason.NOT_CSV),
        ("userdata_a", 10, EntryKind.FILE, HiddenReason.NOT_CSV),
        ("userdata_a.csv", 0, EntryKind.OTHER, HiddenReason.NOT_A_REGULAR_FILE),
        ("userdata_a.csv", 0, EntryKind.DIRECTORY, HiddenReason.NOT_A_REGULAR_FILE),
    ],
)
def test_hidden_reason_follows_the_file_rules(
    name: str, size: int, kind: EntryKind, reason: HiddenReason | None
) -> None:
    assert hidden_reason(file(name, size, kind)) is reason


def test_not_csv_is_checked_before_the_prefix() -> None:
    assert hidden_reason(file("notes.txt")) is HiddenReason.NOT_CSV


def test_classify_leaves_plain_folders_out_and_sorts_by_name() -> None:
    listing = classify(
        "/in",
        [
            file("userdata_b.csv"),
            file("archive", kind=EntryKind.DIRECTORY),
            file("userdata_x.csv", kind=EntryKind.DIRECTORY),
            file("userdata_a.csv"),
            file("readme.txt"),
        ],
    )
    assert [f.name for f in listing.files] == ["userdata_a.csv", "userdata_b.csv"]
    assert [(h.entry.name, h.reason.value) for h in listing.hidden] == [
        ("readme.txt", "not_csv"),
        ("userdata_x.csv", "not_a_regular_file"),
    ]


def test_a_custom_size_limit_applies() -> None:
    assert hidden_reason(file("userdata_a.csv", 101), max_size=100) is HiddenReason.TOO_LARGE


def test_require_eligible_names_the_path_and_reason() -> None:
    with pytest.raises(NotEligible, match=r"/in/users\.csv.*must begin with 'userdata_'"):
        require_eligible(file("users.csv"))
    with pytest.raises(FileTooLarge, match=r"209,715,201 bytes is over the 200 MB limit"):
        require_eligible(file("userdata_a.csv", MAX_FILE_SIZE + 1))


def test_size_limited_reader_fails_once_the_file_grows_past_the_limit() -> None:
    reader = SizeLimitedReader(io.BytesIO(b"x" * 150), path="/in/userdata_a.csv", max_size=100)
    assert reader.read(100) == b"x" * 100
    with pytest.raises(FileTooLarge, match="grew past"):
        reader.read(100)


def test_size_limited_reader_reads_a_file_of_exactly_the_limit() -> None:
    reader = SizeLimitedReader(io.BytesIO(b"x" * 100), path="/in/userdata_a.csv", max_size=100)
    assert reader.read() == b"x" * 100
    assert reader.bytes_read == 100


def test_format_size() -> None:
    assert format_size(512) == "512 B"
    assert format_size(MAX_FILE_SIZE) == "200 MB"
    assert format_size(1536) == "1.5 KB"


def test_a_name_that_is_not_utf8_is_shown_with_replacement_characters_and_hidden_for_it() -> None:
    listed = file(b"userdata_m\xfcnchen.csv".decode("utf-8", "surrogateescape"))

    entry = utf8_named(listed)

    assert (entry.name, entry.path) == (
        "userdata_m\ufffdnchen.csv",
        "/in/userdata_m\ufffdnchen.csv",
    )
    assert not entry.name_is_utf8
    assert hidden_reason(entry) is HiddenReason.NAME_NOT_UTF8
    with pytest.raises(NotEligible, match="its name is not valid UTF-8"):
        require_eligible(entry)
    named = file("userdata_münchen.csv")
    assert utf8_named(named) is named  # a UTF-8 name, non-ASCII or not, stays as it is
    assert hidden_reason(named) is None


def test_files_by_age_take_their_names_among_equal_times_and_one_without_a_time_is_oldest() -> None:
    day = {n: datetime(2026, 11, n, tzinfo=UTC) for n in (25, 26)}
    entries = [
        dataclasses.replace(file("userdata_c.csv"), modified=day[26]),
        dataclasses.replace(file("userdata_b.csv"), modified=None),
        dataclasses.replace(file("userdata_d.csv"), modified=day[25]),
        dataclasses.replace(file("userdata_a.csv"), modified=day[26]),
    ]

    assert [e.name for e in newest_first(entries)] == [
        *("userdata_a.csv", "userdata_c.csv", "userdata_d.csv", "userdata_b.csv")
    ]
    assert [e.name for e in oldest_first(entries)] == [
        *("userdata_b.csv", "userdata_d.csv", "userdata_a.csv", "userdata_c.csv")
    ]
