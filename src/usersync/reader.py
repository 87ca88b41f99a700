"""Stream an RFC 4180 CSV file from a binary stream into rows with physical line numbers.

`CsvReader` decodes the stream (UTF-8 with or without BOM, UTF-16 by its BOM, or a named codec),
reads the header row, then yields a `Row` per data record or a `RowError` per bad one. The C
`csv` parser does the work over an `io.TextIOWrapper(newline="")`, which hands it one physical
line (ended by CRLF, LF or a lone CR) at a time, so `csv.reader.line_num` counts physical lines.
A record's line is the line where it starts. Memory stays flat: only the record being parsed
and a decoded chunk are held, and `FIELD_SIZE_LIMIT` bounds a field that a stray quote left open.

Undecodable bytes never crash the reader and never turn into mojibake: the decoder's error
handler escapes each bad byte as a lone surrogate (U+DC00 + byte), and a row holding one becomes
a `RowError` showing the bytes as \\xNN. So does a row holding a NUL character, which no
property can hold (PostgreSQL cannot store it in text). `read_preview` reads only the head of a
stream; `sniff_delimiter` guesses the delimiter from such a head.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, BinaryIO

from usersync.errors import CsvError, HeaderError, UsageError

if TYPE_CHECKING:
    from _csv import Reader as _CsvReader

FIELD_SIZE_LIMIT = 10 * 1024 * 1024  # characters; bounds memory when a quote is never closed
PREVIEW_READ_LIMIT = 4 * 1024 * 1024  # bytes a preview may read before it gives up on a row
SNIFF_CANDIDATES = (",", ";", "\t", "|")
# In the message of a file read as UTF-8 that is not.
NOT_UTF8 = "the file may be in another encoding"
_TEXT_CHUNK = 64 * 1024  # TextIOWrapper decodes 8 KiB at a time by default; bigger is faster

_HANDLER = "usersync.reader.escape"
_ESCAPED = re.compile("[\udc00-\udcff]")
_SHOWN_AS_BYTES = re.compile("[\udc00-\udcff\x00]")  # escaped bytes and NUL characters
# Undecodable bytes escaped and chunks read with a NUL byte, so far, process-wide; only ever
# grows. A reader checks rows closely only once it has moved (see _note_suspect).
_suspects = 0
_suspects_lock = threading.Lock()


def _note_suspect() -> None:
    # Counting keeps the close check off the hot path for the files that hold neither. Another
    # thread's suspects can only make a reader check when it did not need to, never skip one.
    global _suspects
    with _suspects_lock:
        _suspects += 1


def _escape_undecodable(exc: UnicodeError) -> tuple[str, int]:
    # Like "surrogateescape", but also for bytes < 0x80 (a cut-off UTF-16 code unit), and it
    # counts (_note_suspect).
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _note_suspect()
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC00 + byte) for byte in bad), exc.end


codecs.register_error(_HANDLER, _escape_undecodable)


def _show_escapes(text: str) -> str:
    """`text` with each escaped byte and NUL character written as \\xNN."""

    def byte(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code - 0xDC00 if code else 0:02x}"

    return _SHOWN_AS_BYTES.sub(byte, text)


def decoding_codec(encoding: str | None, head: bytes) -> str:
    """The codec that a file starting with `head` is read with, its `encoding` named or not:
    unnamed, UTF-16 by its byte order mark, else UTF-8; UTF-8 drops a leading BOM (it must not
    end up in the first column's name)."""
    if encoding is None:
        return "utf-16" if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def _nul_is_a_zero_byte(codec: str) -> bool:
    """Whether, in the encoding `codec` names, a NUL character can only come from a 0 byte
    (UTF-16 and UTF-32 have zero bytes everywhere; UTF-7 may spell it +AAA-)."""
    return not codecs.lookup(codec).name.startswith(("utf-16", "utf-32", "utf-7"))


# Delimiters given by name (a tab is hard to type on a command line or in JSON).
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t"}


def named_delimiter(value: str) -> str:
    """The delimiter `value` names ("tab" is a tab), or `value` itself."""
    return DELIMITER_NAMES.get(value, value)


def delimiter_name(delimiter: str) -> str:
    """What `named_delimiter` takes for `delimiter`: "tab" for a tab, else the character."""
    return "tab" if delimiter == DELIMITER_NAMES["tab"] else delimiter


def delimiter_flag(delimiter: str) -> str:
    """`delimiter` as `--delimiter` takes it on a command line: tab, or the character quoted."""
    name = delimiter_name(delimiter)
    return name if name == "tab" else repr(name)


@dataclass(frozen=True)
class CsvOptions:
    encoding: str | None = None  # None: UTF-8 with or without BOM, or UTF-16 by its BOM
    delimiter: str = ","

    def __post_init__(self) -> None:
        if len(self.delimiter) != 1 or self.delimiter in '"\r\n':
            raise UsageError(
                f"the delimiter must be a single character other than a quote or a line break, "
                f"got {self.delimiter!r}; the usual ones are ',', ';', '|' and a tab"
            )
        if self.encoding is not None:
            try:  # refuses codecs that are not text encodings (base64, rot13...) too
                io.TextIOWrapper(io.BytesIO(), encoding=self.encoding)
            except LookupError:
                raise UsageError(
                    f"unknown encoding {self.encoding!r}; name a Python codec such as "
                    f"utf-8, utf-16, latin-1 or cp1252"
                ) from None


DEFAULT_OPTIONS = CsvOptions()


@dataclass(frozen=True, slots=True)
class Row:
    line: int  # 1-based physical line where the row starts
    values: list[str]  # exactly one per column


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str | None
    value: str | None
    message: str


@dataclass(frozen=True)
class Preview:
    columns: list[str]
    rows: list[Row]
    errors: list[RowError]
    # When the rows read as a single column: another delimiter that splits them, if one does.
    other_delimiter: str | None = None


class _ReadLimitReached(Exception):
    pass


class _HeadThenStream(io.RawIOBase):
    """The bytes already peeked from `stream`, then the rest of it; optionally at most `limit`.

    It sits between the caller's stream and the TextIOWrapper, so that closing (or garbage
    collecting) the wrapper never closes the caller's stream.
    """

    def __init__(
        self, head: bytes, stream: BinaryIO, limit: int | None, *, watch_nul: bool
    ) -> None:
        super().__init__()
        self._head = head
        self._stream = stream
        self._left = limit
        self._watch_nul = watch_nul  # note each chunk with a NUL byte (_note_suspect)

    @property
    def name(self) -> object:
        return getattr(self._stream, "name", None)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._read(size)
        if self._watch_nul and b"\0" in data:
            _note_suspect()
        return data

    def _read(self, size: int) -> bytes:
        if self._head:
            data, self._head = self._head, b""
        elif self._left is None:
            return self._stream.read(size)
        elif self._left == 0:
            # Asking for one byte more tells "the file ends here" from "the file goes on".
            if self._stream.read(1):
                raise _ReadLimitReached
            return b""
        else:
            data = self._stream.read(self._left if size < 0 else min(size, self._left))
        if self._left is not None:
            self._left = max(self._left - len(data), 0)
        return data


_SHOWN_HEADER = 200  # characters of an undecodable header row an error shows
_EXPORT_CSV = "export the data as CSV (UTF-8) and import that file"
# Formats a userdata file is mistaken for, by their first bytes (the kinds that would otherwise
# fail as "not valid UTF-8" with a screenful of bytes). Told only when the header row is
# undecodable or holds NUL characters: a CSV file may start with any of the text ones.
_SIGNATURES = (
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it (gunzip) and import the CSV file"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one)", _EXPORT_CSV),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)", _EXPORT_CSV),
    (b"BZh", "a bzip2-compressed file", "decompress it (bunzip2) and import the CSV file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it (unxz) and import the CSV file"),
    (
        b"\x28\xb5\x2f\xfd",
        "a zstd-compressed file",
        "decompress it (unzstd) and import the CSV file",
    ),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract the CSV file and import that"),
    (b"PAR1", "a Parquet file", _EXPORT_CSV),
)
_SIGNATURE_SIZE = max(len(magic) for magic, _, _ in _SIGNATURES)


def _binary_kind(head: bytes) -> tuple[str, str] | None:
    """(what the file is, how to get a CSV file) if its first bytes are a known format's."""
    for magic, kind, fix in _SIGNATURES:
        if head.startswith(magic):
            return kind, fix
    return None


# Codecs that read the byte order from the file's first bytes, and fail without them.
_BYTE_ORDER_MARKS = {
    "utf-16": (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE),
    "utf-32": (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE),
}


def _is_blank(values: list[str]) -> bool:
    # csv.reader gives [] for an empty line; a line of spaces is blank to a reader too.
    return not values or (len(values) == 1 and not values[0].strip())


def _read_head(stream: BinaryIO, size: int) -> bytes:
    head = b""
    while len(head) < size:
        chunk = stream.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


class CsvReader:
    """Rows of one CSV stream, read once, front to back. The caller keeps and closes `stream`."""

    def __init__(
        self,
        stream: BinaryIO,
        options: CsvOptions = DEFAULT_OPTIONS,
        *,
        name: str = "file",
        read_limit: int | None = None,  # stop (with a RowError) after this many bytes
    ) -> None:
        self._stream = stream
        self._options = options
        self._name = name
        self._read_limit = read_limit
        self._csv: _CsvReader | None = None
        self._columns: list[str] = []
        self._suspects_before = 0
        self._check_every_row = False  # for encodings where NUL bytes tell nothing
        self._label = ""
        self._encoding_hint = ""
        self._binary_kind: tuple[str, str] | None = None  # what the first bytes say it is

    @property
    def columns(self) -> list[str]:
        self._start()
        return list(self._columns)

    @property
    def line(self) -> int:
        return 0 if self._csv is None else self._csv.line_num

    def __iter__(self) -> Iterator[Row | RowError]:
        # Header problems are raised here, before any row.
        return self._rows(self._start())

    def _open(self) -> io.TextIOWrapper[_HeadThenStream]:
        named = self._options.encoding
        head = _read_head(self._stream, _SIGNATURE_SIZE)
        self._binary_kind = _binary_kind(head)
        encoding = decoding_codec(named, head)
        if named is None:
            if encoding == "utf-16":
                label = "UTF-16"
                self._encoding_hint = "the file starts with a UTF-16 byte order mark"
            else:
                label = "UTF-8"
                self._encoding_hint = f"{NOT_UTF8}: name it (e.g. --encoding cp1252)"
        else:
            label = named
            codec = codecs.lookup(named).name
            if (marks := _BYTE_ORDER_MARKS.get(codec)) and head and not head.startswith(marks):
                raise CsvError(
                    f"{self._name} does not start with a byte order mark, which {label!r} "
                    f"needs: name the byte order instead ({codec}-le, as Windows writes "
                    f"it, or {codec}-be)"
                )
            self._encoding_hint = f"check that {label!r} is the file's encoding"
        self._label = label
        self._check_every_row = not _nul_is_a_zero_byte(encoding)
        raw = _HeadThenStream(
            head, self._stream, self._read_limit, watch_nul=not self._check_every_row
        )
        text = io.TextIOWrapper(raw, encoding=encoding, errors=_HANDLER, newline="")
        text._CHUNK_SIZE = _TEXT_CHUNK  # type: ignore[attr-defined]
        return text

    def _start(self) -> _CsvReader:
        if self._csv is not None:
            return self._csv
        csv.field_size_limit(FIELD_SIZE_LIMIT)  # process-wide; every reader sets the same value
        self._suspects_before = _suspects
        reader = csv.reader(self._open(), delimiter=self._options.delimiter, strict=True)
        self._csv = reader
        try:
            header = next((values for values in reader if not _is_blank(values)), None)
        except csv.Error as exc:
            raise CsvError(
                f"{self._name}, line {reader.line_num}: cannot read the header row: {exc}"
            ) from None
        except _ReadLimitReached:
            raise CsvError(
                f"{self._name}: no complete header row in its first {self._read_limit} bytes"
            ) from None
        except UnicodeError as exc:  # a codec that fails instead of calling the error handler
            raise self._codec_failed(exc, reader.line_num) from None
        if header is None:
            raise CsvError(
                f"{self._name} is empty: it has no header row; its first line must name the columns"
            )
        self._columns = self._check_header(header, reader.line_num)
        return reader

    def _check_header(self, header: list[str], line: int) -> list[str]:
        where = f"{self._name}, line {line}"
        joined = "".join(header)
        undecodable, nul = _ESCAPED.search(joined) is not None, "\0" in joined
        if self._binary_kind is not None and (undecodable or nul):
            kind, fix = self._binary_kind
            raise CsvError(f"{self._name} is {kind}, not CSV text: {fix}")
        if undecodable:
            shown = _show_escapes(self._options.delimiter.join(header))
            if len(shown) > _SHOWN_HEADER:
                shown = shown[:_SHOWN_HEADER] + "…"
            raise CsvError(
                f"{where}: the header row has bytes that are not valid {self._label} "
                f"({shown}); {self._encoding_hint}"
            )
        if nul:
            raise CsvError(
                f"{where}: the header row contains NUL characters; the file may be UTF-16 "
                f"without a byte order mark: name its encoding (e.g. --encoding utf-16-le)"
            )
        names = [name.strip() for name in header]
        names[0] = names[0].removeprefix("\ufeff").strip()  # a BOM under e.g. utf-16-le
        problems = []
        empty = [str(position) for position, name in enumerate(names, 1) if not name]
        if empty:
            problems.append(f"empty column names at positions {', '.join(empty)}")
        positions: dict[str, list[int]] = {}
        for position, name in enumerate(names, 1):
            if name:
                positions.setdefault(name, []).append(position)
        duplicates = [
            f"{name!r} (positions {', '.join(map(str, at))})"
            for name, at in positions.items()
            if len(at) > 1
        ]
        if duplicates:
            problems.append(f"duplicate column names {', '.join(duplicates)}")
        if problems:
            raise HeaderError(
                f"{where}: the header has {' and '.join(problems)}; "
                f"every column needs a name of its own"
            )
        return names

    def _rows(self, reader: _CsvReader) -> Iterator[Row | RowError]:
        width = len(self._columns)
        # A one-column row may be a blank line of spaces: those take the slow path below.
        fast_width = width if width > 1 else -1
        suspects_before = self._suspects_before
        check_every_row = self._check_every_row
        last = reader.line_num  # the line where the previous record ended
        while True:
            try:
                for values in reader:
                    start = last + 1
                    last = reader.line_num
                    if (
                        len(values) == fast_width
                        and _suspects == suspects_before
                        and not check_every_row
                    ):
                        yield Row(start, values)
                        continue
                    if _is_blank(values):
                        continue
                    if _suspects != suspects_before or check_every_row:
                        error = self._suspect(values, start)
                        if error is not None:
                            yield error
                            continue
                    if len(values) == width:
                        yield Row(start, values)
                    else:
                        yield self._ragged(len(values), start)
                return
            except csv.Error as exc:
                yield self._parse_error(str(exc), last + 1, reader.line_num)
                last = reader.line_num  # csv.reader drops the rest of that line, goes on after
            except UnicodeError as exc:
                raise self._codec_failed(exc, reader.line_num) from None
            except _ReadLimitReached:
                yield RowError(
                    last + 1,
                    None,
                    None,
                    f"stopped reading after {self._read_limit} bytes with this row still "
                    f"incomplete; is a quote never closed?",
                )
                return

    def _codec_failed(self, exc: UnicodeError, line: int) -> CsvError:
        return CsvError(
            f"{self._name}, line {line + 1}: cannot decode it as {self._label}: {exc}; "
            f"{self._encoding_hint}"
        )

    def _suspect(self, values: list[str], line: int) -> RowError | None:
        """The error of a row holding undecodable bytes or a NUL character, if it does."""
        joined = "".join(values)
        if "\0" not in joined and not _ESCAPED.search(joined):
            return None
        for position, value in enumerate(values):
            found = _ESCAPED.findall(value)
            if found:
                message = (
                    f"bytes that are not valid {self._label} "
                    f"({_show_escapes(''.join(found))}); {self._encoding_hint}"
                )
            elif "\0" in value:
                message = (
                    "a NUL character (\\x00), which a value cannot hold; remove it from the file"
                )
            else:
                continue
            column = self._columns[position] if position < len(self._columns) else None
            return RowError(line, column, _show_escapes(value), message)
        return None

    def _ragged(self, count: int, line: int) -> RowError:
        width = len(self._columns)
        if count > width:
            fix = f"quote values that contain {self._options.delimiter!r}"
        else:
            fix = "give every column a value, even an empty one"
        return RowError(
            line,
            None,
            None,
            f"row has {count} field{'s' * (count != 1)} but the header has {width} "
            f"column{'s' * (width != 1)}; {fix}",
        )

    def _parse_error(self, reason: str, line: int, at: int) -> RowError:
        if "field larger than field limit" in reason:
            # csv.reader would go on inside the runaway field: nothing after it can be trusted.
            raise CsvError(
                f"{self._name}, line {line}: a field is over {FIELD_SIZE_LIMIT} characters "
                f"long (reading up to line {at}); probably a quote that is never closed"
            )
        if "unexpected end of data" in reason:
            message = (
                f"a quoted field opened in this row is never closed (the file ends on line "
                f"{at}); close it, and double every quote inside it"
            )
        elif "expected after" in reason:
            message = (
                f"a quote in the middle of a field (line {at}): a value with quotes must be "
                f'quoted as a whole with its quotes doubled, e.g. "say ""hi"""'
            )
        else:
            message = f"cannot read this row: {reason} (line {at})"
        return RowError(line, None, None, message)


def read_preview(
    stream: BinaryIO,
    options: CsvOptions = DEFAULT_OPTIONS,
    *,
    rows: int = 5,
    name: str = "file",
    read_limit: int = PREVIEW_READ_LIMIT,
) -> Preview:
    """The header and the first `rows` records (good or bad) of `stream`, reading only its head."""
    if rows < 0:
        raise UsageError(f"the number of preview rows must be 0 or more, got {rows}")
    reader = CsvReader(stream, options, name=name, read_limit=read_limit)
    columns = reader.columns
    good: list[Row] = []
    bad: list[RowError] = []
    for item in islice(reader, rows):
        if isinstance(item, Row):
            good.append(item)
        else:
            bad.append(item)
    return Preview(columns, good, bad)


def sniff_delimiter(sample: bytes) -> str | None:
    """Which of `SNIFF_CANDIDATES` splits the head of a file into a steady table, if just one."""
    if sample[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        text = sample[: len(sample) // 2 * 2].decode("utf-16", errors="replace")
    else:
        text = sample.decode("utf-8-sig", errors="replace")
    # The sample ends mid-line (or mid-record) unless the file is that short: drop the cut-off part.
    text = text[: max(text.rfind("\n"), text.rfind("\r")) + 1] or text
    scores: dict[str, float] = {}
    for delimiter in SNIFF_CANDIDATES:
        records = _first_records(text, delimiter, 50)
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        scores[delimiter] = sum(len(record) == width for record in records) / len(records)
    best = max(scores.values(), default=0.0)
    winners = [delimiter for delimiter, score in scores.items() if score == best]
    return winners[0] if best >= 0.9 and len(winners) == 1 else None


def _first_records(text: str, delimiter: str, limit: int) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[list[str]] = []
    try:
        for values in reader:
            if values:
                records.append(values)
                if len(records) == limit:
                    break
    except csv.Error:
        pass  # a bad or cut-off record ends the sample
    return records
