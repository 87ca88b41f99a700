from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usersync import reader as reader_module
from usersync.errors import CsvError, HeaderError, UsageError
from usersync.reader import (
    CsvOptions,
    CsvReader,
    Row,
    RowError,
    read_preview,
    sniff_delimiter,
)


def read(data: bytes, **options: str) -> list[Row | RowError]:
    return list(CsvReader(io.BytesIO(data), CsvOptions(**options)))


def rows(data: bytes, **options: str) -> list[tuple[int, list[str]]]:
    items = read(data, **options)
    assert all(isinstance(item, Row) for item in items), items
    return [(item.line, item.values) for item in items if isinstance(item, Row)]


def only_error(items: list[Row | RowError]) -> RowError:
    errors = [item for item in items if isinstance(item, RowError)]
    assert len(errors) == 1, items
    return errors[0]


class LimitedStream(io.BytesIO):
    """Serves its bytes `piece` at a time and fails the test if read past `limit` bytes."""

    def __init__(self, data: bytes, *, limit: int | None = None, piece: int | None = None) -> None:
        super().__init__(data)
        self._limit = len(data) if limit is None else limit
        self._piece = piece

    def read(self, size: int | None = -1, /) -> bytes:
        if self._piece is not None:
            size = self._piece if size is None or size < 0 else min(size, self._piece)
        data = super().read(size)
        assert self.tell() <= self._limit, f"read {self.tell()} bytes, over {self._limit}"
        return data


def header_of(data: bytes, name: str = "file", encoding: str | None = None) -> list[str]:
    return CsvReader(io.BytesIO(data), CsvOptions(encoding=encoding), name=name).columns


def test_reads_rows_with_their_line_numbers() -> None:
    assert rows(b"id,name\n1,Ann\n2,Bob\n") == [(2, ["1", "Ann"]), (3, ["2", "Bob"])]


def test_columns_are_read_lazily_and_stripped() -> None:
    stream = io.BytesIO(b" id , name\t\n1,Ann\n")
    reader = CsvReader(stream)
    assert stream.tell() == 0
    assert reader.columns == ["id", "name"]
    assert [item.line for item in reader] == [2]


def test_quoted_newlines_count_as_physical_lines() -> None:
    data = b'id,note\n1,a\n2,b\n3,"one\ntwo\nthree"\n4,d\n'
    assert rows(data) == [
        (2, ["1", "a"]),
        (3, ["2", "b"]),
        (4, ["3", "one\ntwo\nthree"]),
        (7, ["4", "d"]),
    ]


def test_doubled_quotes_and_quoted_delimiters_are_values() -> None:
    data = b'id,note\n1,"say ""hi"", then go"\n2,""\n'
    assert rows(data) == [(2, ["1", 'say "hi", then go']), (3, ["2", ""])]


def test_bom_and_crlf_line_endings() -> None:
    data = b'\xef\xbb\xbfid,name\r\n1,"a\r\nb"\r\n2,c\r\n'
    reader = CsvReader(io.BytesIO(data))
    assert reader.columns == ["id", "name"]
    assert [(item.line, item.values) for item in reader if isinstance(item, Row)] == [
        (2, ["1", "a\r\nb"]),
        (4, ["2", "c"]),
    ]


def test_a_lone_cr_ends_a_line() -> None:
    assert rows(b"id,name\r1,a\r2,b") == [(2, ["1", "a"]), (3, ["2", "b"])]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_is_detected_by_its_bom(codec: str) -> None:
    text = 'id,name\r\n1,Zoë 𝄞\r\n2,"x\ny"\r\n3,z\r\n'
    bom = b"\xff\xfe" if codec.endswith("le") else b"\xfe\xff"
    reader = CsvReader(io.BytesIO(bom + text.encode(codec)))
    assert reader.columns == ["id", "name"]
    assert [(item.line, item.values) for item in reader if isinstance(item, Row)] == [
        (2, ["1", "Zoë 𝄞"]),
        (3, ["2", "x\ny"]),
        (5, ["3", "z"]),
    ]


def test_truncated_utf16_is_a_row_error_not_a_crash() -> None:
    data = b"\xff\xfe" + "id,name\n1,a".encode("utf-16-le") + b"b"
    error = only_error(read(data))
    assert error.line == 2
    assert error.column == "name"
    assert error.value == "a\\x62"
    assert "UTF-16" in error.message


@pytest.mark.parametrize(
    ("encoding", "data", "value"),
    [
        ("latin-1", b"id,name\n1,Ren\xe9e\n", "Renée"),
        ("cp1252", b"id,name\n1,\x93quoted\x94 \x80\n", "“quoted” €"),
        ("UTF-8", b"\xef\xbb\xbfid,name\n1,Ren\xc3\xa9e\n", "Renée"),
        ("utf-16-le", "\ufeffid,name\n1,Renée\n".encode("utf-16-le"), "Renée"),
    ],
)
def test_named_encodings(encoding: str, data: bytes, value: str) -> None:
    reader = CsvReader(io.BytesIO(data), CsvOptions(encoding=encoding))
    assert reader.columns == ["id", "name"]
    assert [(item.line, item.values) for item in reader if isinstance(item, Row)] == [
        (2, ["1", value])
    ]


@pytest.mark.parametrize("codec", ["utf-16", "UTF-32"])
def test_a_codec_that_needs_a_byte_order_mark_asks_for_the_byte_order(codec: str) -> None:
    data = "id,name\n1,a\n".encode(codec.lower() + "-le")
    with pytest.raises(CsvError) as raised:
        list(CsvReader(io.BytesIO(data), CsvOptions(encoding=codec)))
    name = codec.lower()
    assert str(raised.value) == (
        f"file does not start with a byte order mark, which {codec!r} needs: name the byte "
        f"order instead ({name}-le, as Windows writes it, or {name}-be)"
    )
    with_mark = "\ufeffid,name\n1,a\n".encode(name + "-be")
    assert rows(with_mark, encoding=codec) == [(2, ["1", "a"])]


def test_a_codec_that_fails_instead_of_escaping_fails_the_file_with_a_clear_error() -> None:
    with pytest.raises(CsvError, match=r"line 1: cannot decode it as idna: .*check that 'idna'"):
        header_of(b"id,name\n" + b"a" * 70 + b",x\n", encoding="idna")


def test_invalid_utf8_is_a_row_error_naming_line_column_and_bytes() -> None:
    items = read(b"id,name,city\n1,Ann,Oslo\n2,Ren\xe9e,Paris\n3,Bob,Rome\n")
    error = only_error(items)
    assert error.line == 3
    assert error.column == "name"
    assert error.value == "Ren\\xe9e"
    assert "\\xe9" in error.message
    assert error.message == (
        "bytes that are not valid UTF-8 (\\xe9); the file may be in another encoding: "
        "name it (e.g. --encoding cp1252)"
    )
    assert [item.line for item in items] == [2, 3, 4]


def test_undecodable_byte_in_a_named_encoding_names_that_encoding() -> None:
    error = only_error(read(b"id,name\n1,a\x81b\n", encoding="cp1252"))
    assert (error.line, error.column, error.value) == (2, "name", "a\\x81b")
    assert "'cp1252'" in error.message
    assert "--encoding" not in error.message


@pytest.mark.parametrize(
    ("encoding", "codec"),
    [(None, "utf-8"), ("latin-1", "latin-1"), ("utf-16", "utf-16"), ("utf-16-le", "utf-16-le")],
)
def test_a_nul_character_is_a_row_error_naming_line_column_and_value(
    encoding: str | None, codec: str
) -> None:
    text = "id,name,city\n1,Ann,Oslo\n2,Ann\x00e,Paris\n\x00,Cy,Rome\n4,Bob,Bonn\n"
    items = read(text.encode(codec), **({"encoding": encoding} if encoding else {}))
    errors = [item for item in items if isinstance(item, RowError)]
    assert [(e.line, e.column, e.value) for e in errors] == [
        (3, "name", "Ann\\x00e"),
        (4, "id", "\\x00"),
    ]
    assert all("NUL character" in e.message and "remove it" in e.message for e in errors)
    assert [(item.line, item.values) for item in items if isinstance(item, Row)] == [
        (2, ["1", "Ann", "Oslo"]),
        (5, ["4", "Bob", "Bonn"]),
    ]


def test_undecodable_bytes_in_the_header_fail_the_file() -> None:
    with pytest.raises(CsvError, match=r"line 1: the header row has bytes.*\\xe9"):
        header_of(b"id,pr\xe9nom\n1,a\n")


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (
            gzip.compress(b"userId,name\n" * 1000),
            "is a gzip-compressed file, not CSV text: decompress it (gunzip)",
        ),
        (
            b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb6\xa8",
            "is a ZIP archive (an "
            ".xlsx workbook is one), not CSV text: export the data as CSV (UTF-8)",
        ),
    ],
)
def test_a_known_binary_format_is_named_instead_of_its_bytes(data: bytes, said: str) -> None:
    with pytest.raises(CsvError) as raised:
        header_of(data)
    assert said in str(raised.value)
    assert "\\x" not in str(raised.value)


def test_text_that_starts_like_a_binary_format_is_read_as_csv() -> None:
    assert rows(b"BZh,PK\nu1,x\n") == [(2, ["u1", "x"])]


def test_an_undecodable_header_shows_at_most_200_characters_of_it() -> None:
    with pytest.raises(CsvError) as raised:
        header_of(b"id,name\xff" + b"x" * 5000 + b"\n1,a\n")
    shown = str(raised.value).split("(", 1)[1].split(")", 1)[0]
    assert shown == "id,name\\xff" + "x" * 189 + "…"


def test_utf16_without_bom_read_as_utf8_is_refused_with_a_hint() -> None:
    with pytest.raises(CsvError, match="utf-16-le"):
        header_of("id,name\n1,a\n".encode("utf-16-le"))


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_named_delimiters(delimiter: str) -> None:
    data = f'id{delimiter}name\n1{delimiter}"a{delimiter}b"\n'.encode()
    assert rows(data, delimiter=delimiter) == [(2, ["1", f"a{delimiter}b"])]


@pytest.mark.parametrize("delimiter", ["", ";;", '"', "\n"])
def test_bad_delimiter_is_a_usage_error(delimiter: str) -> None:
    with pytest.raises(UsageError, match="delimiter"):
        CsvOptions(delimiter=delimiter)


@pytest.mark.parametrize("encoding", ["no-such-codec", "base64"])
def test_unknown_or_non_text_encoding_is_a_usage_error(encoding: str) -> None:
    with pytest.raises(UsageError, match="encoding"):
        CsvOptions(encoding=encoding)


def test_row_with_too_many_fields_is_rejected_and_reading_goes_on() -> None:
    items = read(b"a,b,c\n1,2,3,4\n5,6,7\n")
    error = only_error(items)
    assert error.line == 2
    assert "row has 4 fields but the header has 3 columns" in error.message
    assert items[1] == Row(3, ["5", "6", "7"])


def test_row_with_too_few_fields_is_rejected() -> None:
    error = only_error(read(b"a,b,c\n1,2\n"))
    assert error.line == 2
    assert "row has 2 fields but the header has 3 columns" in error.message


def test_stray_quote_is_a_row_error_and_the_next_row_is_read() -> None:
    items = read(b'id,name\n1,"abc"def\n2,ok\n')
    error = only_error(items)
    assert error.line == 2
    assert "quote" in error.message
    assert items[1] == Row(3, ["2", "ok"])


def test_stray_quote_after_a_multiline_field_reports_where_the_row_starts() -> None:
    items = read(b'id,name\n1,"a\nb"c\n2,ok\n')
    error = only_error(items)
    assert error.line == 2
    assert "line 3" in error.message
    assert items[1] == Row(4, ["2", "ok"])


def test_unclosed_quote_is_reported_at_the_line_where_its_row_starts() -> None:
    items = read(b'id,name\n1,a\n2,"never closed\n3,c\n4,d')
    assert items[0] == Row(2, ["1", "a"])
    error = only_error(items)
    assert error.line == 3
    assert "never closed" in error.message
    assert "line 5" in error.message


@pytest.fixture
def small_field_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    original = csv.field_size_limit()
    monkeypatch.setattr(reader_module, "FIELD_SIZE_LIMIT", 1000)
    yield 1000
    csv.field_size_limit(original)  # the limit is process-wide


def test_a_field_over_the_size_limit_fails_the_file_naming_the_line(
    small_field_limit: int,
) -> None:
    data = b'id,name\n1,a\n2,"unclosed\n' + b"3,xxxxxxxxxx\n" * 1000
    reader = iter(CsvReader(LimitedStream(data, limit=200_000)))
    assert next(reader) == Row(2, ["1", "a"])
    with pytest.raises(CsvError, match="line 3: a field is over 1000 characters"):
        next(reader)


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\n\r\n  \n"])
def test_empty_file_fails(data: bytes) -> None:
    with pytest.raises(CsvError, match=r"^report\.csv is empty: "):
        header_of(data, name="report.csv")


def test_header_only_yields_nothing() -> None:
    reader = CsvReader(io.BytesIO(b"id,name\n"))
    assert reader.columns == ["id", "name"]
    assert list(reader) == []


def test_blank_lines_are_skipped_but_counted() -> None:
    data = b"\n\nid,name\n\n1,a\r\n\r\n   \n2,b\n\n"
    assert rows(data) == [(5, ["1", "a"]), (8, ["2", "b"])]


def test_one_column_file_skips_blank_lines_too() -> None:
    assert rows(b"id\n1\n\n  \n2\n") == [(2, ["1"]), (5, ["2"])]


def test_last_line_without_newline_is_read() -> None:
    assert rows(b"id,name\n1,a\n2,b") == [(2, ["1", "a"]), (3, ["2", "b"])]
    assert rows(b'id,name\n1,"a\nb"') == [(2, ["1", "a\nb"])]


def test_duplicate_header_names_are_named() -> None:
    with pytest.raises(HeaderError, match=r"duplicate column names 'email' \(positions 2, 4\)"):
        header_of(b"id,email,name, email \n1,a,b,c\n")


def test_empty_header_names_are_named_by_position() -> None:
    with pytest.raises(HeaderError, match="empty column names at positions 2, 4"):
        header_of(b"id,,name,  \n1,a,b,c\n")


def test_header_error_is_raised_before_any_row() -> None:
    reader = CsvReader(io.BytesIO(b"id,id\n1,2\n"))
    with pytest.raises(HeaderError, match="positions 1, 2"):
        iter(reader)


def test_line_reports_progress() -> None:
    reader = CsvReader(io.BytesIO(b'id,name\n1,"a\nb"\n2,c\n'))
    assert reader.line == 0
    items = iter(reader)
    assert reader.line == 1
    next(items)
    assert reader.line == 3


def test_the_callers_stream_is_left_open() -> None:
    stream = io.BytesIO(b"id\n1\n")
    reader = CsvReader(stream)
    list(reader)
    del reader
    assert not stream.closed


def test_preview_reads_only_the_head() -> None:
    data = b"id,name\n" + b"".join(b"%d,name %d\n" % (n, n) for n in range(100_000))
    stream = LimitedStream(data, limit=100_000)
    preview = read_preview(stream, rows=3)
    assert preview.columns == ["id", "name"]
    assert [(row.line, row.values) for row in preview.rows] == [
        (2, ["0", "name 0"]),
        (3, ["1", "name 1"]),
        (4, ["2", "name 2"]),
    ]
    assert preview.errors == []
    assert stream.tell() < 100_000


def test_preview_counts_bad_rows_toward_its_rows() -> None:
    preview = read_preview(io.BytesIO(b"id,name\n1,a\n2\n3,c\n4,d\n"), rows=3)
    assert [row.line for row in preview.rows] == [2, 4]
    assert [error.line for error in preview.errors] == [3]


def test_preview_gives_up_on_a_row_that_is_never_complete() -> None:
    data = b'id,name\n1,a\n2,"unclosed\n' + b"3,c\n" * 100_000
    stream = LimitedStream(data, limit=20_000)
    preview = read_preview(stream, read_limit=10_000)
    assert [row.line for row in preview.rows] == [2]
    assert [error.line for error in preview.errors] == [3]
    assert "stopped reading after 10000 bytes" in preview.errors[0].message


def test_preview_of_a_small_file_under_the_read_limit() -> None:
    preview = read_preview(io.BytesIO(b"id\n1\n2"), rows=5, read_limit=7)
    assert [row.values for row in preview.rows] == [["1"], ["2"]]


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (b"id,name,email\n1,a,a@x\n2,b,b@x\n", ","),
        (b"id;name;amount\n1;Smith, J;2,5\n2;Lee;3,0\n", ";"),
        (b"id\tname\n1\ta\n2\tb\n", "\t"),
        (b"id|name\n1|a\n2|b\n", "|"),
        (b"\xef\xbb\xbfid;name\r\n1;a\r\n2;b", ";"),
        ("id;name\n1;ä\n".encode("utf-16"), ";"),
        (b'id;note\n1;"a,b\nc,d"\n2;x\n3;"cut, off', ";"),
        (b"id\n1\n2\n", None),
        (b"", None),
        (b"a,b;c\n1,2;3\n", None),
    ],
)
def test_sniff_delimiter(sample: bytes, expected: str | None) -> None:
    assert sniff_delimiter(sample) == expected


def write_csv(table: list[list[str]], quote_all: bool, terminator: str) -> str:
    # Not csv.writer: on Python 3.11 it leaves a value with a lone CR unquoted when the line
    # terminator is LF, which no reader can read back.
    def field(value: str) -> str:
        if quote_all or any(char in value for char in ',"\r\n'):
            return '"' + value.replace('"', '""') + '"'
        return value

    return "".join(",".join(map(field, values)) + terminator for values in table)


LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what ends a physical line
cell = st.text(  # no NUL: a row holding one is an error (a test of its own)
    alphabet=st.sampled_from(list('ab ,;"\n\r\tzé€𝄞'))
    | st.characters(codec="utf-8", exclude_characters="\x00"),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(min_value=1, max_value=4),
    data=st.data(),
    quote_all=st.booleans(),
    terminator=st.sampled_from(["\n", "\r\n"]),
    piece=st.none() | st.integers(min_value=1, max_value=7),
)
def test_random_tables_read_back_with_their_start_lines(
    width: int,
    data: st.DataObject,
    quote_all: bool,
    terminator: str,
    piece: int | None,
) -> None:
    header = [f"c{n}" for n in range(width)]
    table = data.draw(
        st.lists(st.lists(cell, min_size=width, max_size=width), max_size=12).filter(
            # A one-column row of spaces is a blank line to the reader, on purpose.
            lambda table: all(width > 1 or row[0].strip() for row in table)
        )
    )
    text = write_csv([header], quote_all, terminator)
    expected = []
    for values in table:
        expected.append((len(LINE_BREAK.findall(text)) + 1, values))
        text += write_csv([values], quote_all, terminator)
    stream = LimitedStream(text.encode(), piece=piece)
    reader = CsvReader(stream)
    assert reader.columns == header
    assert [(item.line, item.values) for item in reader if isinstance(item, Row)] == expected
