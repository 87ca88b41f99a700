"""The columnar fast path gives the exact path's results, or gives up; and it rarely gives up.

The exact path is `CsvReader` + `RowMapper`, row by row. The property tests throw random small
files (quotes, delimiters, line breaks, unicode, control characters, numbers, booleans and dates
of every shape, blank lines, ragged rows, stray quotes, BOMs, CRLF) and mappings at both.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import time
from collections.abc import Generator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from usersync import columnar
from usersync.columnar import NeedsExactReader, columnar_rows
from usersync.errors import CsvError
from usersync.mapping import (
    ColumnMapping,
    EmptyCells,
    MappedRow,
    PropertyType,
    RowMapper,
    converter_for,
)
from usersync.reader import CsvOptions, CsvReader, Row, RowError

UTC = ZoneInfo("UTC")
DEFAULT = CsvOptions()


@dataclass
class Outcome:
    changes: list[tuple[str, str]]  # accepted rows: (user_id, properties JSON)
    rejected: list[list[RowError]]
    rows: int


def exact_path(
    data: bytes,
    options: CsvOptions,
    mapping: ColumnMapping,
    *,
    zone: ZoneInfo = UTC,
    empty_cells: EmptyCells = EmptyCells.IGNORE,
) -> tuple[list[str], Outcome]:
    """What the importer's row-wise path gives: CsvReader, then RowMapper on each row."""
    reader = CsvReader(io.BytesIO(data), options)
    columns = reader.columns
    mapper = RowMapper(mapping, columns, zone=zone, empty_cells=empty_cells)
    outcome = Outcome([], [], 0)
    for item in reader:
        outcome.rows += 1
        result = mapper.map(item) if isinstance(item, Row) else [item]
        if isinstance(result, MappedRow):
            outcome.changes.append((result.user_id, result.properties_json))
        else:
            outcome.rejected.append(result)
    return columns, outcome


class Pieces(io.BytesIO):
    """A stream that serves at most `piece` bytes a read, and counts what it served."""

    def __init__(self, data: bytes, piece: int | None = None) -> None:
        super().__init__(data)
        self.piece = piece
        self.largest_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        if self.piece is not None:
            size = self.piece if size is None or size < 0 else min(size, self.piece)
        data = super().read(size)
        self.largest_read = max(self.largest_read, len(data))
        return data


def fast_path(
    data: bytes | io.BytesIO,
    columns: list[str],
    options: CsvOptions,
    mapping: ColumnMapping,
    *,
    zone: ZoneInfo = UTC,
    empty_cells: EmptyCells = EmptyCells.IGNORE,
    batch_rows: int = 65_536,
    block_size: int = columnar.DEFAULT_BLOCK_SIZE,
) -> Outcome:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    outcome = Outcome([], [], 0)
    bytes_read = 0
    for batch in columnar_rows(
        stream,
        columns,
        options,
        mapping,
        zone=zone,
        empty_cells=empty_cells,
        batch_rows=batch_rows,
        block_size=block_size,
    ):
        assert batch.rows == len(batch.changes) + len(batch.rejected)
        assert batch.bytes_read >= bytes_read
        bytes_read = batch.bytes_read
        outcome.changes += batch.changes
        outcome.rejected += batch.rejected
        outcome.rows += batch.rows
    return outcome


def assert_same(fast: Outcome, exact: Outcome) -> None:
    assert fast.rejected == exact.rejected
    assert fast.rows == exact.rows
    assert [user for user, _ in fast.changes] == [user for user, _ in exact.changes]
    for (_, fast_json), (_, exact_json) in zip(fast.changes, exact.changes, strict=True):
        fast_doc, exact_doc = json.loads(fast_json), json.loads(exact_json)
        assert fast_doc == exact_doc
        assert list(fast_doc) == list(exact_doc)  # the same key order
        assert [type(v) for v in fast_doc.values()] == [type(v) for v in exact_doc.values()]
        assert fast_json == exact_json  # in practice the very same text, too


def both(
    data: bytes,
    mapping: ColumnMapping,
    options: CsvOptions = DEFAULT,
    **kwargs: object,
) -> Outcome:
    """The fast path's outcome, checked against the exact path's (it must not give up)."""
    columns, exact = exact_path(data, options, mapping, **kwargs)  # type: ignore[arg-type]
    fast = fast_path(data, columns, options, mapping, **kwargs)  # type: ignore[arg-type]
    assert_same(fast, exact)
    return fast


def gives_up(
    data: bytes, mapping: ColumnMapping, options: CsvOptions = DEFAULT, **kwargs: object
) -> str:
    columns, _ = exact_path(data, options, mapping)
    with pytest.raises(NeedsExactReader) as raised:
        fast_path(data, columns, options, mapping, **kwargs)  # type: ignore[arg-type]
    return raised.value.reason


# -- the property tests -------------------------------------------------------------------------

TRICKY_CELLS = [
    "",
    " ",
    "  x  ",
    "0",
    "-0",
    "+0",
    "007",
    "42",
    "-42",
    "+5",
    " 7 ",
    "1.0",
    "1.",
    ".5",
    "-.5",
    "1.50",
    "0.1",
    "0.0001",
    "0.00001",
    "1e3",
    "1E-5",
    "1.e5",
    "1e400",
    "-1e-400",
    "1e16",
    "123456789012345",
    "1234567890123456",
    "12345678901234567890",
    "9007199254740993",
    "99999999999999999999.0",
    "1234567.891",
    "51255482385.67197",
    "nan",
    "inf",
    "-Infinity",
    "1_000",
    "1_0.5",
    "0x10",
    "١٢",
    "٣.٥",
    "1,5",
    "true",
    "TRUE",
    "yes",
    "YES",
    "No",
    "1",
    "maybe",
    "Ｔrue",
    "2026-02-28",
    "2026-02-30",
    "2024-02-29",
    "2023-02-29",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "20260101",
    "2026-W01-1",
    "2026-1-1",
    "26-01-01",
    "2026-01-01T10:00:00",
    "2026-03-29T02:30:00",
    "2026-10-25T02:30:00+01:00",
    "2026-01-01T10:00:00Z",
    "2026-01-01 10:00",
    "\u3000 5 \u3000",
    "\x1c7\x1f",
    "\xa0true\xa0",
    "a,b",
    'say "hi"',
    "back\\slash",
    "line\nbreak",
    "cr\rx",
    "crlf\r\nx",
    "tab\tx",
    "\x01ctl",
    "\x00",
    "\x7f",
    "é",
    "日本",
    "\U0001f600",
    "\u2028",
    "\ufeffbom",
    "{,}",
]

_cell_text = st.one_of(
    st.sampled_from(TRICKY_CELLS),
    st.text(alphabet=st.sampled_from(list('ab 1.-+eE0",;|\t\n\r\\é日\x01')), max_size=6),
    st.text(max_size=4),
)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, str, int]:
    """A small CSV file (often valid, sometimes not), its delimiter and its column count."""
    delimiter = draw(st.sampled_from([",", ",", ",", ";", "\t", "|"]))
    width = draw(st.integers(2, 4))
    names = [f"c{i}" for i in range(width)]
    if draw(st.booleans()):
        names = [f" {name} " if draw(st.booleans()) else name for name in names]
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    mixed_newlines = draw(st.integers(0, 9)) == 0

    def field(text: str) -> str:
        specials = any(c in text for c in (delimiter, '"', "\r", "\n"))
        style = draw(st.integers(0, 19))
        if style == 0:  # raw, even if that breaks the file
            return text
        if specials or style < 4:
            return '"' + text.replace('"', '""') + '"'
        return text

    lines = [delimiter.join(field(name) for name in names)]
    defects = draw(st.integers(0, 2)) == 0  # blank lines, ragged rows, stray quotes
    for _ in range(draw(st.integers(0, 7))):
        kind = draw(st.integers(0, 19)) if defects else 5
        if kind == 0:
            lines.append("")  # a blank line
        elif kind == 1:
            lines.append(draw(st.sampled_from([" ", "  ", '""', "\t"])))  # a blank-ish line
        elif kind == 2:
            count = draw(st.sampled_from([width - 1, width + 1]))
            lines.append(delimiter.join(field(draw(_cell_text)) for _ in range(count)))
        elif kind == 3:
            lines.append(
                delimiter.join([*(field(draw(_cell_text)) for _ in range(width - 1)), 'a"b'])
            )
        elif kind == 4:
            lines.append(delimiter.join(['"b"c', *(field("x") for _ in range(width - 1))]))
        else:
            lines.append(delimiter.join(field(draw(_cell_text)) for _ in range(width)))
    text = ""
    for i, line in enumerate(lines):
        text += line
        if i < len(lines) - 1 or draw(st.booleans()):
            text += draw(st.sampled_from(["\n", "\r\n", "\r"])) if mixed_newlines else newline
    data = text.encode("utf-8")
    if draw(st.integers(0, 4)) == 0:
        data = codecs.BOM_UTF8 + data
    if draw(st.integers(0, 19)) == 0:  # bytes that are not UTF-8
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + data[at:]
    return data, delimiter, width


@st.composite
def mappings(draw: st.DrawFn, columns: list[str]) -> tuple[ColumnMapping, EmptyCells, ZoneInfo]:
    user_id = draw(st.sampled_from(columns))
    chosen = draw(st.lists(st.sampled_from(columns), max_size=len(columns) + 1))
    names = draw(st.sampled_from(["p{}", "ö{}", 'q"{}', "x.{}"]))
    properties = {names.format(i): column for i, column in enumerate(chosen)}
    types = {
        prop: draw(st.sampled_from(list(PropertyType)))
        for prop in properties
        if draw(st.integers(0, 3)) > 0
    }
    zone = draw(st.sampled_from([UTC, ZoneInfo("Europe/Berlin")]))
    empty = draw(st.sampled_from(list(EmptyCells)))
    return ColumnMapping(user_id, properties, types), empty, zone


# A ragged row with bytes that are not UTF-8 makes pyarrow fail inside its own row handler
# (it reports that as unraisable, then stops with ArrowInvalid, and the fast path gives up).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(file=csv_files(), data=st.data())
def test_fast_path_equals_exact_path_or_gives_up(
    file: tuple[bytes, str, int], data: st.DataObject
) -> None:
    content, delimiter, _ = file
    encoding = data.draw(
        st.sampled_from(
            [None, None, None, "utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16-le", "sjis"]
        )
    )
    options = CsvOptions(encoding=encoding, delimiter=delimiter)
    try:
        columns = CsvReader(io.BytesIO(content), options).columns
    except CsvError:
        event("the exact reader refuses the header")
        return  # the header is the caller's business: it never calls the fast path then
    mapping, empty_cells, zone = data.draw(mappings(columns))
    exact: Outcome | None
    try:
        _, exact = exact_path(content, options, mapping, zone=zone, empty_cells=empty_cells)
    except (CsvError, ArithmeticError):
        # The exact path fails the run (a field over the limit), or crashes (mapping.py lets
        # an OverflowError out for a datetime near year 1): the fast path must give up.
        exact = None
    piece = data.draw(st.sampled_from([None, None, 1, 3, 7]))
    try:
        fast = fast_path(
            Pieces(content, piece),
            columns,
            options,
            mapping,
            zone=zone,
            empty_cells=empty_cells,
            batch_rows=data.draw(st.sampled_from([1, 2, 3, 65_536])),
            block_size=data.draw(st.sampled_from([64, 128, 1 << 20, 1 << 20])),
        )
    except NeedsExactReader as exc:
        event(f"gave up: {exc.reason.split(':')[0][:50]}")
        return
    assert exact is not None
    assert_same(fast, exact)
    event(f"same results ({'some' if exact.rejected else 'no'} rows rejected)")


_numberish = st.one_of(
    st.sampled_from(TRICKY_CELLS),
    st.text(alphabet=st.sampled_from(list("0123456789.-+eE_ xinfaTW:")), min_size=1, max_size=12),
    st.floats(allow_nan=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.{abs(hash(f)) % 18}f}"),
    st.integers(-(10**20), 10**20).map(str),
    st.dates().map(str),
)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(
        [PropertyType.INTEGER, PropertyType.NUMBER, PropertyType.BOOLEAN, PropertyType.DATE]
    ),
    cells=st.lists(_numberish.map(str.strip), min_size=1, max_size=30),
)
def test_vectorized_rules_accept_only_what_python_accepts_and_write_the_same(
    kind: PropertyType, cells: list[str]
) -> None:
    # Tier 1 and tier 2 of each typed conversion, on their own: every cell they accept, the
    # Python converter accepts, with the same JSON text.
    convert = converter_for(kind, UTC)
    assert convert is not None
    text = pa.array(cells, pa.string())
    for tier in (columnar._usual_forms, columnar._other_forms):
        for cell, json_text in zip(cells, tier(kind, text).to_pylist(), strict=True):
            if json_text is not None:
                assert json_text == convert(cell), (tier.__name__, cell)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list('ab,;"\r\n ')), max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=6),
    delimiter=st.sampled_from([",", ";"]),
)
def test_the_quote_check_accepts_what_strict_csv_reads(
    text: str, cuts: list[int], delimiter: str
) -> None:
    # Fed in chunks cut anywhere, the byte-level check agrees with strict csv on the whole.
    try:
        list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
        strict_reads_it = True
    except csv.Error:
        strict_reads_it = False
    data = text.encode()
    checker = columnar._QuoteChecker(delimiter.encode())
    start = 0
    for cut in sorted({min(cut, len(data)) for cut in cuts}):
        if cut > start:
            checker.feed(data[start:cut])
            start = cut
    if start < len(data):
        checker.feed(data[start:])
    checker.finish()
    assert (checker.violation is None) == strict_reads_it


def test_pyarrow_allocates_from_jemalloc() -> None:
    # It gives freed memory back sooner than pyarrow's default allocator: a lower peak RSS.
    assert pa.default_memory_pool().backend_name == "jemalloc"


def test_python_whitespace_is_what_str_strip_strips() -> None:
    assert set(columnar.PY_WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


# -- ordinary files: the fast path must not give up ---------------------------------------------

COLUMNS = ["userId", "email", "name", "age", "score", "vip", "signup", "seen", "notes"]
MAPPING = ColumnMapping(
    "userId",
    {c: c for c in COLUMNS[1:]},
    {
        "age": PropertyType.INTEGER,
        "score": PropertyType.NUMBER,
        "vip": PropertyType.BOOLEAN,
        "signup": PropertyType.DATE,
        "seen": PropertyType.DATETIME,
    },
)
HEADER = ",".join(COLUMNS)


def csv_bytes(*rows: str, newline: str = "\n", header: str = HEADER) -> bytes:
    return (newline.join([header, *rows]) + newline).encode()


def test_a_clean_file() -> None:
    data = csv_bytes(
        "u1,a@x.com,Ann,42,3.5,true,2026-02-28,2026-07-01T10:00:00,none",
        "u2,b@x.com,Bob,-7,100,No,2024-02-29,2026-07-01T10:00:00+02:00,",
        "u3,c@x.com,Chloé,0,0.25,1,1999-12-31,,x",
    )
    outcome = both(data, MAPPING, zone=ZoneInfo("Europe/Berlin"))
    assert outcome.rows == 3
    assert not outcome.rejected
    assert json.loads(outcome.changes[0][1]) == {
        "email": "a@x.com",
        "name": "Ann",
        "notes": "none",
        "age": 42,
        "score": 3.5,
        "vip": True,
        "signup": "2026-02-28",
        "seen": "2026-07-01T08:00:00Z",
    }


def test_bad_typed_values_are_rejected_with_their_lines() -> None:
    data = csv_bytes(
        "u1,a@x.com,Ann,42,3.5,true,2026-02-28,,",
        "u2,b@x.com,Bob,forty,3.5,maybe,2026-02-30,,",
        "u3,c@x.com,Cy,1.0,1e3,YES,20260101,,",
        " ,d@x.com,Dee,1,2,0,2026-01-01,,",
        "u5,e@x.com,Eve,1,2,0,2026-01-01,yesterday,",
    )
    outcome = both(data, MAPPING)
    assert [user for user, _ in outcome.changes] == ["u1", "u3"]
    assert [[(e.line, e.column, e.value) for e in errors] for errors in outcome.rejected] == [
        [(3, "age", "forty"), (3, "vip", "maybe"), (3, "signup", "2026-02-30")],
        [(5, "userId", " ")],
        [(6, "seen", "yesterday")],
    ]


def test_rejected_cells_are_listed_in_the_mappings_order() -> None:
    # The documents give the properties shortest name first (n, when, again, score_total);
    # the errors name their cells in the mapping's order, two properties of one column
    # together. "12.0" is not how the converter writes a whole number: the fast path flags
    # it, then finds that the row maps after all. "١٢" (Arabic-Indic digits) is no number.
    mapping = ColumnMapping(
        "id",
        {"score_total": "s", "n": "n", "when": "d", "again": "s"},
        {
            "score_total": PropertyType.NUMBER,
            "n": PropertyType.INTEGER,
            "when": PropertyType.DATE,
            "again": PropertyType.NUMBER,
        },
    )
    data = (
        b"id,d,n,s\n"
        + "".join(
            f"u{i},{d},{n},{s}\n"
            for i, (d, n, s) in enumerate(
                [
                    ("soon", "many", "high"),
                    ("2026-01-02", "12.0", "1.5"),
                    ("2026-13-01", "7", "1;5"),
                    ("2026-01-02", "١٢", "x"),
                ]
            )
        ).encode()
    )
    outcome = both(data, mapping)
    assert outcome.changes == [("u1", '{"n":12,"when":"2026-01-02","again":1.5,"score_total":1.5}')]
    assert [[(e.line, e.column, e.value) for e in errors] for errors in outcome.rejected] == [
        [(2, "s", "high"), (2, "s", "high"), (2, "n", "many"), (2, "d", "soon")],
        [(4, "s", "1;5"), (4, "s", "1;5"), (4, "d", "2026-13-01")],
        [(5, "s", "x"), (5, "s", "x"), (5, "n", "١٢")],
    ]
    assert outcome.rejected[0][2].message == (
        "'many' is not a whole number such as 42 (property 'n' is integer)"
    )


def test_long_user_ids_are_decided_as_the_exact_path_does() -> None:
    # 512 characters of 2 bytes pass; the byte length alone would reject them.
    data = csv_bytes(
        "u1,a@x.com,Ann,,,,,,", "é" * 512 + ",,,,,,,,", "y" * 513 + ",,,,,,,,", "u4,,,,,,,,"
    )
    outcome = both(data, MAPPING)
    assert [user for user, _ in outcome.changes] == ["u1", "é" * 512, "u4"]
    assert [[(e.line, e.column) for e in errors] for errors in outcome.rejected] == [
        [(4, "userId")]
    ]


def test_quoted_commas_doubled_quotes_and_escapes() -> None:
    data = csv_bytes(
        'u1,"a,b@x.com","say ""hi"", \\\\ back",1,1,1,2026-01-01,,"tab\there"',
        'u2,"",x,,,,,,""',
    )
    outcome = both(data, MAPPING)
    assert json.loads(outcome.changes[0][1])["name"] == 'say "hi", \\\\ back'
    assert json.loads(outcome.changes[1][1]) == {"name": "x"}


def test_a_bom_and_crlf_line_ends() -> None:
    data = codecs.BOM_UTF8 + csv_bytes(
        "u1,a@x.com,Ann,42,3.5,true,2026-02-28,,",
        "u2,b@x.com,Bob,x,3.5,true,2026-02-28,,",
        newline="\r\n",
    )
    outcome = both(data, MAPPING)
    assert outcome.rejected[0][0].line == 3


def test_a_last_line_without_newline_and_blank_lines_at_the_end() -> None:
    both(csv_bytes("u1,a,b,1,2,no,2026-01-01,,")[:-1], MAPPING)
    outcome = both(csv_bytes("u1,a,b,x,2,no,2026-01-01,,") + b"\n\r\n", MAPPING)
    assert outcome.rejected[0][0].line == 2


def test_a_blank_line_before_accepted_rows_only() -> None:
    outcome = both(
        csv_bytes("u1,a,b,1,2,no,2026-01-01,,", "", "u2,a,b,1,2,no,2026-01-01,,"), MAPPING
    )
    assert len(outcome.changes) == 2


def test_a_multiline_value_after_the_rejected_rows() -> None:
    outcome = both(
        csv_bytes("u1,a,b,x,2,no,2026-01-01,,", 'u2,a,b,1,2,no,2026-01-01,,"two\nlines"'), MAPPING
    )
    assert outcome.rejected[0][0].line == 2
    assert json.loads(outcome.changes[0][1])["notes"] == "two\nlines"


def test_empty_cells_clear_their_properties() -> None:
    outcome = both(
        csv_bytes("u1,,,,,,,,", "u2, ,x, 1 ,,,,,"), MAPPING, empty_cells=EmptyCells.CLEAR
    )
    assert json.loads(outcome.changes[0][1]) == dict.fromkeys(
        ["email", "name", "notes", "age", "score", "vip", "signup", "seen"]
    )
    assert json.loads(outcome.changes[1][1])["email"] == " "


def test_quotes_inside_unquoted_values_are_plain_characters() -> None:
    outcome = both(csv_bytes('u1,a,5\'11" tall,1,1,1,2026-01-01,,a""b', 'u2,x,y,z,,,,,a"'), MAPPING)
    assert json.loads(outcome.changes[0][1])["name"] == "5'11\" tall"
    assert outcome.rejected[0][0].line == 3


def test_other_delimiters_and_unusual_values() -> None:
    mapping = ColumnMapping("id", {"n": "n", "s": "s"}, {"n": PropertyType.NUMBER})
    rows = ["id;n;s", "a;1e20;\x01", "b;0.000015;\u2028", "c;12345678901.5;日本", "d;-0;"]
    both("\n".join(rows).encode(), mapping, CsvOptions(delimiter=";"))
    tabbed = "\n".join(row.replace(";", "\t") for row in rows).encode()
    both(tabbed, mapping, CsvOptions(delimiter="\t"))


def test_many_batches_in_file_order_read_progressively() -> None:
    rows = [f"u{i},e{i},n{i},{i},{i}.5,{i % 2},2026-01-{i % 28 + 1:02d},," for i in range(3000)]
    rows[2500] = "u2500,e,n,not a number,1,1,2026-01-01,,"
    data = csv_bytes(*rows)
    columns, exact = exact_path(data, CsvOptions(), MAPPING)
    stream = Pieces(data)
    batches = list(
        columnar_rows(
            stream,
            columns,
            CsvOptions(),
            MAPPING,
            zone=UTC,
            empty_cells=EmptyCells.IGNORE,
            batch_rows=200,
            block_size=16 * 1024,
        )
    )
    assert len(batches) > 5
    assert all(batch.rows >= 200 for batch in batches[:-1])
    assert batches[-1].bytes_read == len(data)
    assert stream.largest_read <= 16 * 1024  # never the whole file at once
    fast = Outcome(
        [c for b in batches for c in b.changes],
        [r for b in batches for r in b.rejected],
        sum(b.rows for b in batches),
    )
    assert_same(fast, exact)
    assert fast.rejected[0][0].line == 2502


def test_wide_rows_make_batches_of_a_bounded_size() -> None:
    # 3,000 rows of ~3 KB: as many rows as batch_rows asks would be the whole 9 MB file.
    wide = "x" * 1_000
    rows = [f"u{i},{wide}{i},{wide},{i},{i}.5,1,2026-01-01,,{wide}" for i in range(3_000)]
    data = csv_bytes(*rows)
    columns, exact = exact_path(data, CsvOptions(), MAPPING)
    batches = list(
        columnar_rows(
            Pieces(data),
            columns,
            CsvOptions(),
            MAPPING,
            zone=UTC,
            empty_cells=EmptyCells.IGNORE,
            batch_rows=65_536,
        )
    )
    row_bytes = len(data) // 3_000
    assert len(batches) >= 3
    assert all(batch.rows * row_bytes <= 3 << 20 for batch in batches)  # 2 MB and a block
    fast = Outcome(
        [c for b in batches for c in b.changes],
        [r for b in batches for r in b.rejected],
        sum(b.rows for b in batches),
    )
    assert_same(fast, exact)


# -- files the fast path cannot be sure of: it gives up -----------------------------------------

SIMPLE = ColumnMapping("id", {"n": "n"}, {"n": PropertyType.INTEGER})


@pytest.mark.parametrize(
    "encoding",
    ["latin-1", "cp1252", "iso8859-15", "utf-16", "utf-16-le", "utf-32", "shift_jis", "gb18030"],
)
@pytest.mark.parametrize("piece", [None, 1, 3])  # reads that cut characters in two
def test_another_encoding_is_read_as_its_text(encoding: str, piece: int | None) -> None:
    # Decoded on the way: the same values, rejections and lines as row by row.
    names = {"shift_jis": "\u82b1\u5b50", "gb18030": "\u738b\u82b3\U0001f600"}
    name = names.get(encoding, "Ren\u00e9e")
    text = csv_bytes(
        f"u1,a@x.com,{name},42,3.5,true,2026-02-28,,",
        "u2,b@x.com,\u00c5sa,vierzig,3.5,ja,2026-02-28,,",
        'u3,"c@x.com",Zo\u00eb,1,2,0,2026-01-01,,',
        "u4,d@x.com,Bj\u00f6rn,x,2,0,2026-01-01,,",
    ).decode()
    if encoding in names:
        text = text.replace("\u00c5", "A").replace("\u00eb", "e").replace("\u00f6", "o")
    data = text.encode(encoding)
    columns, exact = exact_path(data, CsvOptions(encoding=encoding), MAPPING)
    fast = fast_path(Pieces(data, piece), columns, CsvOptions(encoding=encoding), MAPPING)
    assert_same(fast, exact)
    assert [user for user, _ in fast.changes] == ["u1", "u3"]
    assert json.loads(fast.changes[0][1])["name"] == text.splitlines()[1].split(",")[2]
    assert [[(e.line, e.column, e.value) for e in errors] for errors in fast.rejected] == [
        [(3, "age", "vierzig"), (3, "vip", "ja")],
        [(5, "age", "x")],
    ]


def test_a_utf16_file_is_read_by_its_byte_order_mark() -> None:
    data = "id,n\r\nu1,\u00e9\r\n".encode("utf-16")  # with a BOM, as Windows writes it
    assert both(data, ColumnMapping("id", {"n": "n"})).changes == [("u1", '{"n":"\u00e9"}')]


def test_in_a_single_byte_encoding_a_bom_is_text() -> None:
    # The bytes of a UTF-8 BOM are three characters of the header to the exact reader.
    data = "\ufeffid,n\nu1,1\n".encode()
    mapping = ColumnMapping("\u00ef\u00bb\u00bfid", {"n": "n"})
    outcome = both(data, mapping, CsvOptions(encoding="latin-1"))
    assert outcome.changes == [("u1", '{"n":"1"}')]


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("cp1252", b"id,n\nu1,1\nu2,\x81\n"),  # 0x81 is not a cp1252 character
        ("utf-16-le", "id,n\nu1,1\n".encode("utf-16-le") + b"\x00\xdc"),  # a lone surrogate
        ("utf-16-le", "id,n\nu1,1\n".encode("utf-16-le") + b"2"),  # half a character
    ],
)
def test_gives_up_on_bytes_the_encoding_does_not_define(encoding: str, data: bytes) -> None:
    reason = gives_up(data, SIMPLE, CsvOptions(encoding=encoding))
    assert reason == "a byte that the file's encoding does not define"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'id,n\nu1,1\nu2,"2"x\n', "quote"),  # a closing quote, then more
        (b'id,n\nu1,"1\nu2,2\n', "never closed"),
        (b"id,n\nu1,1\nu2,2,3\n", "fields"),  # a ragged row
        (b"id,n\nu1,1\nu2\n", "fields"),
        (b"id,n\nu1,1\nu2,\xff\n", "UTF8"),
        (b"id,n\nu1,1\nu2,a\x00b\n", "NUL"),
        (b'id,n\nu1,"two\nlines"\nu2,x\n', "spans several lines"),  # then a rejected row
        (b"id,n\nu1,1\n\nu2,x\n", "blank line"),
        (b"id,n\nu1,1\n  \nu2,x\n", "blank line"),
        (b"\nid,n\nu2,x\n", "blank line"),
    ],
)
def test_gives_up_when_unsure(data: bytes, reason: str) -> None:
    assert reason in gives_up(data, ColumnMapping("id", {"n": "n"}, {"n": PropertyType.INTEGER}))


def test_gives_up_on_a_single_column() -> None:
    assert "single column" in gives_up(b"id\nu1\n", ColumnMapping("id"))


def test_gives_up_on_a_row_longer_than_a_block() -> None:
    data = b"id,n\nu1," + b"9" * 5000 + b"\n"
    gives_up(data, ColumnMapping("id", {"n": "n"}), block_size=1024)


def test_gives_up_on_rows_too_long_to_convert_quickly() -> None:
    # A batch holds about 2 MB: with rows of 10 KB, fewer than 256 of them.
    data = b"id,n,wide\n" + b"".join(b"u%d,%d,%s\n" % (i, i, b"w" * 10_000) for i in range(300))
    assert "rows are long" in gives_up(data, ColumnMapping("id", {"n": "n"}))


def test_rows_of_a_few_kilobytes_stay_on_the_fast_path() -> None:
    data = b"id,n,wide\n" + b"".join(b"u%d,%d,%s\n" % (i, i, b"w" * 6_000) for i in range(600))
    mapping = ColumnMapping("id", {"n": "n", "wide": "wide"}, {"n": PropertyType.INTEGER})
    outcome = both(data, mapping)
    assert outcome.rows == 600


def test_gives_up_on_a_value_over_the_exact_readers_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(columnar, "FIELD_SIZE_LIMIT", 1000)
    data = b"id,n,other\nu1,1,short\nu2,2," + b"o" * 1500 + b"\n"
    assert "over 1000 characters" in gives_up(data, ColumnMapping("id", {"n": "n"}))


def test_the_first_row_spanning_lines_is_found_in_any_column() -> None:
    # Column c spans lines at row 3, column d already at row 1: the rejected row 2 comes
    # after a row spanning lines, so its line is unsure.
    data = b'id,n,c,d\nu0,1,a,a\nu1,1,a,"x\ny"\nu2,bad,a,a\nu3,1,"p\nq",a\n'
    mapping = ColumnMapping("id", {"n": "n"}, {"n": PropertyType.INTEGER})
    assert "spans several lines" in gives_up(data, mapping)


def test_gives_up_on_a_header_that_is_not_the_one_given() -> None:
    data = b"id,n\nu1,1\n"
    with pytest.raises(NeedsExactReader, match="header"):
        fast_path(data, ["id", "m"], CsvOptions(), ColumnMapping("id"))


def test_a_blank_line_after_a_rejected_row_gives_up_after_the_last_batch() -> None:
    # Only the count of lines at the end tells that a blank line was skipped somewhere.
    data = b"id,n\nu1,x\n\nu2,2\n"
    batches = columnar_rows(
        io.BytesIO(data),
        ["id", "n"],
        DEFAULT,
        SIMPLE,
        zone=UTC,
        empty_cells=EmptyCells.IGNORE,
    )
    assert next(batches).rejected[0][0].line == 2
    with pytest.raises(NeedsExactReader, match="blank lines"):
        next(batches)


def test_a_header_and_no_rows() -> None:
    assert both(b"id,n\r\n", SIMPLE).rows == 0
    assert both(b"id,n", SIMPLE).rows == 0


def test_an_error_of_the_stream_is_raised_as_it_is() -> None:
    class Failing(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            if self.tell() > 10_000:
                raise ConnectionResetError("the server went away")
            return super().read(size)

    data = b"id,n\n" + b"u1,1\n" * 10_000
    with pytest.raises(ConnectionResetError, match="went away"):
        fast_path(Failing(data), ["id", "n"], DEFAULT, SIMPLE, block_size=1024)


def test_closing_the_batches_early_stops_reading_the_stream() -> None:
    data = b"id,n\n" + b"u1,1\n" * 200_000
    stream = Pieces(data)
    batches = columnar_rows(
        stream,
        ["id", "n"],
        DEFAULT,
        SIMPLE,
        zone=UTC,
        empty_cells=EmptyCells.IGNORE,
        batch_rows=1000,
        block_size=4096,
    )
    next(batches)
    assert isinstance(batches, Generator)
    batches.close()
    position = stream.tell()
    assert position < len(data)
    time.sleep(0.05)  # nothing in the background reads on
    assert stream.tell() == position


def test_giving_up_stops_reading_the_stream() -> None:
    data = b'id,n\nu1,"2"x\n' + b"u,1\n" * 100_000
    stream = Pieces(data)
    with pytest.raises(NeedsExactReader):
        fast_path(stream, ["id", "n"], CsvOptions(), SIMPLE, block_size=4096)
    position = stream.tell()
    assert position < len(data)
    assert stream.read()  # the stream is the caller's again, untouched since
    assert stream.tell() == len(data)
