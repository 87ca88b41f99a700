"""A column-wise fast path for importing a CSV file: pyarrow parses, pyarrow.compute converts.

Why: the exact path (`CsvReader` + `RowMapper`, Python calls per row and per cell) costs about
11 s of CPU for a 200 MB, 2 M row file before any database work, and an import must take at
most 10 s end to end. `columnar_rows` gives the same results several times faster: pyarrow's
multi-threaded streaming CSV reader parses, and whole columns are converted at a time.

What it promises: iterating `columnar_rows` either raises `NeedsExactReader` (possibly after
some batches: the caller then discards everything it got and runs the exact path), or yields,
over all its batches, exactly what the exact path gives for each data row, in file order: an
accepted `(user_id, properties JSON text)` whose JSON loads to the same document, keys in the
same order (the text is the same too, but for how a rare number may be written), or a rejected
row with the same `RowError`s.

How it stays exact:

- Parsing. pyarrow is more lenient than Python's strict `csv` (`a,"b"c,d` is fine to it), so
  while pyarrow reads the stream, each chunk is checked at the byte level against the RFC 4180
  quoting that strict `csv` accepts; anything else gives up. So do ragged rows, invalid UTF-8, a
  NUL byte, bytes that the file's encoding does not define, a field over the exact reader's
  limit and any pyarrow error. (A file in another encoding than UTF-8 is decoded as the exact
  reader decodes it, by the codec's incremental decoder, and reaches pyarrow as UTF-8.) Blank
  lines are skipped by both readers. It also gives up, for speed, on rows so long (hundreds of
  columns) that a batch would hold few of them.
- Line numbers. Only rejected rows carry one: `2 + data row index`, true while no value so far
  held a line break (a rejected row after one gives up at once) and no blank line was skipped
  before it. The blank lines are counted at the end, from the file's line ends: if some came
  before the last row and a row was rejected, it gives up then, after its last batch.
- Conversions. Each typed column goes through vectorized rules that accept only cells the Python
  converter of `mapping.py` accepts, with the same JSON. A cell they leave goes to a broader
  vectorized rule, then to that Python converter itself; a row that still fails is rejected as
  `RowMapper.refusals` says, and a row whose flagged cells convert after all is handed whole to
  `RowMapper.map`, so rejections, their messages and their order are `RowMapper`'s own.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import os
import queue
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from json.encoder import encode_basestring as encode_json_string  # C, keeps non-ASCII
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from usersync.mapping import (
    MAX_USER_ID_LENGTH,
    ColumnMapping,
    CompiledProperty,
    Converter,
    EmptyCells,
    MappedRow,
    PropertyType,
    RowMapper,
)
from usersync.reader import FIELD_SIZE_LIMIT, CsvOptions, Row, RowError, decoding_codec
from usersync.store.model import Change, ChangeColumns

# pyarrow's streaming reader reads up to ~32 blocks ahead of the consumer, so the block size
# bounds memory: 512 KiB blocks keep the RSS flat (~20 MB of read-ahead) and cost no speed
# (measured on 200 MB: peak RSS 248-276 MB with them, 282-302 MB with 1 MiB blocks).
DEFAULT_BLOCK_SIZE = 1 << 19
_READ_SIZE = 1 << 20  # bytes asked of the caller's stream when pyarrow does not say
# A batch ends at `batch_rows` rows or after this much of the file (whole blocks), whichever
# comes first: converting a batch takes several times its size, and 6 K rows of 2 KB are
# 12 MB (a 200 MB file of 2,000 columns peaked at 2.0 GB of RSS with no such limit). 6 K rows
# of the benchmark's 12 columns are 0.6 MB: its batches end at the row count.
_BATCH_BYTES = 2 << 20
# Converting costs some calls per mapped column and batch, whatever the batch's rows: when the
# rows are so long that a batch holds fewer than this many, the exact reader is quicker (on
# files of 50 MB: 0.9 s against 0.3 s for rows of 62 KB, 1.0 s against 0.6 s for 16 KB).
_FEWEST_BATCH_ROWS = 256
_MAX_CARRY = 16 << 20  # a quoted field longer than this is left to the exact reader
_END = 1 << 62  # a slice position past the end of any value

_UTF8_BOM = b"\xef\xbb\xbf"


def _prefer_jemalloc() -> None:
    """Make jemalloc pyarrow's allocator, unless the operator chose one
    (ARROW_DEFAULT_MEMORY_POOL) or this pyarrow lacks it. Its default, mimalloc, keeps more of
    what is freed: reading the 200 MB benchmark file peaked at 197-227 MB of RSS with it,
    159-165 MB with jemalloc, as fast; a whole import into SQLite at 254-268 MB, 232-240 MB."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    with contextlib.suppress(NotImplementedError):
        pa.set_memory_pool(pa.jemalloc_memory_pool())


_prefer_jemalloc()  # once, before any batch: a buffer is freed by the pool it came from
# What str.strip() strips: every code point for which str.isspace() is true (a test checks).
PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _byte_table(marked: bytes) -> bytes:
    """A bytes.translate table that maps the `marked` bytes to 0 and every other byte to 1."""
    return bytes(0 if byte in marked else 1 for byte in range(256))


# The first bytes of the UTF-8 of each character in PY_WHITESPACE: a column with none of them
# has nothing to strip.
_WHITESPACE_LEADS = _byte_table(bytes(sorted({c.encode()[0] for c in PY_WHITESPACE})))
# Control characters that JSON escapes as \uXXXX (or \b, \f): rare, left to Python's encoder.
_OTHER_CONTROLS = _byte_table(bytes(c for c in range(32) if c not in b"\t\n\r"))
_SIMPLE_ESCAPES = ((b"\\", "\\\\"), (b'"', '\\"'), (b"\n", "\\n"), (b"\r", "\\r"), (b"\t", "\\t"))
_TAIL = 4096  # bytes kept from the end of the file, for the blank lines there
_WORKERS = 1  # batches converted side by side (see _batches)

_BOOLEAN_WORDS = pa.array(["true", "yes", "1", "false", "no", "0"])  # the first 3 are true
_INTEGER = r"^[+-]?(?:[0-9]{1,18}|[0-9]{1,15}\.0*)$"  # fits int64; "15 digits.0" is exact
_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"  # float()'s ASCII syntax
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# repr(float) is fixed-point for 1e-4 <= |x| < 1e16; pyarrow writes the same shortest digits,
# fixed-point or with an exponent by a rule of its own: the two agree when both are fixed.
_FIXED_LOW, _FIXED_HIGH = 1e-4, 1e16
_EXACT_INT = float(2**53)  # the converter writes a whole float below this as an integer


class NeedsExactReader(Exception):
    """The fast path cannot guarantee the exact path's results for this file; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ColumnarBatch:
    changes: Sequence[Change]  # (user_id, properties JSON text) of accepted rows, file order
    rejected: list[list[RowError]]  # one list per rejected row, as RowMapper gives, file order
    rows: int  # data records consumed in this batch (accepted + rejected)
    bytes_read: int  # total bytes consumed from the stream so far


# -- reading ---------------------------------------------------------------------------------


class _QuoteChecker:
    """Checks, chunk by chunk, that the bytes follow the quoting that strict `csv` accepts.

    A quote right after a delimiter, a line end or the start of the file opens a quoted field;
    inside it quotes come in pairs, and the closing quote must be followed by a delimiter, a
    line end or the end of the file. Any other quote is a plain character of an unquoted field
    (`a"b`). pyarrow and strict `csv` read such bytes the same way; anything else (`"b"c`,
    which strict `csv` refuses and pyarrow reads as `bc`; an unclosed quote) sets `violation`.
    A quoted field still open at the end of a chunk is carried over, to be checked again with
    what follows.
    """

    def __init__(self, delimiter: bytes) -> None:
        ends = rb"[" + re.escape(delimiter) + rb"\r\n]"
        quoted = rb'"[^"]*+(?:""[^"]*+)*+"'  # possessive: the C engine never backtracks

        def tokens(last: bool) -> re.Pattern[bytes]:
            follows = rb"(?=" + ends + (rb"|\Z)" if last else rb")")
            field = rb"(?<=" + ends + rb")" + quoted + follows
            literal = rb"(?<!" + ends + rb')"'  # a quote in an unquoted field
            return re.compile(rb'(?:[^"]++|' + field + rb"|" + literal + rb")*+")

        self._tokens = tokens(last=False)
        self._last_tokens = tokens(last=True)
        self._quoted = re.compile(quoted)
        self._ends = frozenset(delimiter + b"\r\n")
        self._carry = b"\n"  # one byte of context first: the file starts like a new line
        self.violation: str | None = None

    def feed(self, chunk: bytes) -> None:
        if self.violation is not None:
            return
        # Up to the first quote there is nothing to check, after the last one only what
        # follows it: the regex engine walks bytes much slower than memchr finds a quote.
        first = chunk.find(b'"') if len(self._carry) == 1 else 0
        if first < 0:
            self._carry = chunk[-1:]  # no quote, no quoted field going on: nothing to check
            return
        if first > 0:  # the byte before the quote is in the chunk: no need to copy it
            data, start = chunk, first
        else:
            data, start = self._carry + chunk, 1
        stop = min(data.rfind(b'"') + 2, len(data))
        match = self._tokens.match(data, start, stop)
        end = stop if match is None else match.end()  # it always matches, if only emptily
        if end == stop:
            self._carry = data[-1:]
            return
        # data[end] opens a quoted field that is not complete or not followed by a delimiter.
        if data[end - 1] not in self._ends:  # cannot be: such a quote is a plain character
            self.violation = "a quote the check does not understand"
            return
        closed = self._quoted.match(data, end)
        if closed is not None and closed.end() < len(data):
            self.violation = "a closing quote followed by more text in the same field"
            return
        if len(data) - end > _MAX_CARRY:
            self.violation = f"a quoted field over {_MAX_CARRY} bytes long, or never closed"
            return
        self._carry = data[end - 1 :]  # the field may go on: decide with the next chunk

    def finish(self) -> None:
        if self.violation is None and len(self._carry) > 1:
            match = self._last_tokens.match(self._carry, 1)
            if match is None or match.end() != len(self._carry):
                self.violation = "a quote that is never closed"
        self._carry = b""


class _Source:
    """What pyarrow reads: the caller's stream (minus a UTF-8 BOM), checked on its way through.

    pyarrow calls `read` from its own I/O thread. Once `stop` returns, the caller's stream is
    never touched again, even by a read-ahead still in flight. On the way, it counts the line
    ends (CRLF, LF or a lone CR, as the exact reader does) and keeps the tail of the file: at
    the end they tell whether blank lines were skipped before the last rows.
    """

    def __init__(
        self,
        stream: BinaryIO,
        head: bytes,
        head_size: int,
        delimiter: bytes,
        codec: str | None = None,
    ) -> None:
        self._stream = stream
        self._head = head
        # The file's encoding, unless it is UTF-8: its text is passed on as UTF-8.
        self._decoder = None if codec is None else codecs.getincrementaldecoder(codec)()
        self.undecodable = False  # bytes that the encoding does not define: the exact reader
        self._lock = threading.Lock()
        self._stopped = False
        self._last = b""  # the last byte read: a CR there and an LF next are one line end
        self.quotes = _QuoteChecker(delimiter)
        self.nul = False  # a NUL byte was read: the exact reader rejects its row
        self.bytes_read = head_size
        self.eof = False
        self.line_ends = 0
        self.tail = b""  # the last bytes of the file (after the BOM)
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True  # the caller's stream stays open: it is the caller's

    def stop(self) -> None:
        with self._lock:
            self._stopped = True

    def read(self, size: int | None = -1) -> bytes:
        with self._lock:
            if self._stopped or self.eof:
                return b""
            chunk = self._next_chunk(_READ_SIZE if size is None or size < 0 else size)
            if self.undecodable:
                self.eof = True  # as for a NUL byte, below
                return b""
            if not chunk:
                self.eof = True
                self.quotes.finish()
                return b""
            self.quotes.feed(chunk)
            self.nul = b"\0" in chunk  # then eof: no chunk is read after it
            if self.quotes.violation is not None or self.nul:
                self.eof = True  # nothing after it matters: let pyarrow stop
                return b""
            self._count_lines(chunk)
            return chunk

    def _next_chunk(self, size: int) -> bytes:
        """The file's next bytes as UTF-8 (the head first); b"" at its end."""
        while True:
            if self._head:
                chunk, self._head = self._head, b""
            else:
                chunk = self._read(size)
            if self._decoder is None:
                return chunk
            try:
                text = self._decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                self.undecodable = True
                return b""
            if text or not chunk:  # a chunk may end inside a character: then read on
                return text.encode()

    def _read(self, size: int) -> bytes:
        # pyarrow may take a short read for the end of the file: fill the chunk unless it is.
        pieces = []
        left = size
        while left > 0:
            piece = self._stream.read(left)
            if not piece:
                break
            pieces.append(piece)
            left -= len(piece)
        chunk = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self.bytes_read += len(chunk)
        return chunk

    def _count_lines(self, chunk: bytes) -> None:
        ends = chunk.count(b"\n")
        if b"\r" in chunk:
            ends += chunk.count(b"\r") - chunk.count(b"\r\n")
        if self._last == b"\r" and chunk[:1] == b"\n":
            ends -= 1
        self.line_ends += ends
        self._last = chunk[-1:]
        self.tail = chunk[-_TAIL:] if len(chunk) >= _TAIL else (self.tail + chunk)[-_TAIL:]

    def trailing_blank_lines(self) -> int:
        """Blank lines after the last row (at least: more than the tail shows are not seen)."""
        body = self.tail.rstrip(b"\r\n")
        if len(body) == len(self.tail):
            return 0
        return max(_line_ends(self.tail[len(body) :]) - 1, 0)  # one ends the last row


def _line_ends(text: bytes) -> int:
    return text.count(b"\n") + text.count(b"\r") - text.count(b"\r\n")


class _InvalidRows:
    """pyarrow's invalid_row_handler, for a row whose field count is not the header's.

    A blank row (spaces, or `""`) is skipped, as the exact reader does; it shifts later lines.
    Any other is a ragged row, which the exact reader rejects at a line we cannot know.
    """

    def __init__(self, delimiter: str) -> None:
        self._delimiter = delimiter
        self.blank = False
        self.ragged = False

    def __call__(self, row: Any) -> str:
        if row.actual_columns == 1 and self._is_blank(row.text):
            self.blank = True
        else:
            self.ragged = True
        return "skip"

    def _is_blank(self, text: str) -> bool:
        try:
            values = next(csv.reader([text], delimiter=self._delimiter, strict=True), [])
        except csv.Error:
            return False
        return not values or (len(values) == 1 and not values[0].strip())


# -- the plan --------------------------------------------------------------------------------


@dataclass
class _Plan:
    """The mapping compiled for one file's columns (by `RowMapper`, whose rows it writes)."""

    width: int
    user_id: int
    properties: list[CompiledProperty]
    clear: bool
    mapper: RowMapper
    as_columns: bool  # a batch without rejected rows gives its changes as ChangeColumns

    @classmethod
    def build(
        cls,
        columns: Sequence[str],
        mapping: ColumnMapping,
        zone: ZoneInfo,
        empty_cells: EmptyCells,
        as_columns: bool,
    ) -> _Plan:
        mapper = RowMapper(mapping, columns, zone=zone, empty_cells=empty_cells)
        return cls(
            width=len(columns),
            user_id=mapper.user_id_column,
            properties=mapper.properties,
            clear=empty_cells is EmptyCells.CLEAR,
            mapper=mapper,
            as_columns=as_columns,
        )


@dataclass
class _Lines:
    """Where data rows start: `2 + index`, while no value so far had a line break, and if no
    blank line was skipped; the second is known only at the end, from the count of lines."""

    next_index: int = 0  # data rows before the current batch
    exact: bool = True
    why_not: str = ""
    first_spanning: int | None = None  # in the current batch: rows after it start later
    value_line_ends: int = 0  # line ends inside values (the header's too)
    rejected: bool = False  # some rejected row was given a line number

    def check_blank_lines(self, source: _Source) -> None:
        """At the end: give up if blank lines before the last row shifted a rejected row."""
        if not self.rejected:
            return
        records = 1 + self.next_index  # the header and the data rows
        last_row_ended = source.tail[-1:] in (b"\r", b"\n")
        blank = source.line_ends - records - self.value_line_ends + (not last_row_ended)
        if blank - source.trailing_blank_lines() != 0:
            raise NeedsExactReader(
                "blank lines were skipped before rejected rows, whose lines are then unsure"
            )


# -- the iterator ----------------------------------------------------------------------------


def columnar_rows(
    stream: BinaryIO,
    columns: list[str],
    options: CsvOptions,
    mapping: ColumnMapping,
    *,
    zone: ZoneInfo,
    empty_cells: EmptyCells,
    batch_rows: int = 65_536,
    block_size: int = DEFAULT_BLOCK_SIZE,
    as_columns: bool = False,
) -> Iterator[ColumnarBatch]:
    """The rows of `stream` mapped as `RowMapper` would, a batch at a time (see the module).

    `stream` is the whole file from its first byte, `columns` its header as `CsvReader` read
    it. A batch holds at least `batch_rows` rows or `_BATCH_BYTES` of data (but the last),
    made of whole pyarrow blocks of about `block_size` bytes. Raises NeedsExactReader when the
    results might differ from the exact path's, and MappingError, as `RowMapper` does, when
    the mapping names a column the file lacks. With `as_columns`, a batch without rejected rows
    gives its changes as `ChangeColumns` (for a store that writes them column-wise).
    """
    delimiter = _check_options(columns, options)
    plan = _Plan.build(columns, mapping, zone, empty_cells, as_columns)
    head = _read_head(stream)
    # A file in another encoding than UTF-8 is decoded as the exact reader decodes it. Both
    # readers drop a leading UTF-8 BOM; then pyarrow sees the header at the first byte.
    codec = decoding_codec(options.encoding, head)
    if codecs.lookup(codec).name == "utf-8-sig":
        source = _Source(stream, head.removeprefix(_UTF8_BOM), len(head), delimiter)
    else:
        source = _Source(stream, head, len(head), delimiter, codec)
    invalid = _InvalidRows(options.delimiter)
    names = [f"c{i}" for i in range(len(columns))]
    try:
        try:
            reader = pacsv.open_csv(
                source,
                read_options=pacsv.ReadOptions(
                    column_names=names,  # the header row comes as data: it is checked below
                    block_size=max(block_size, 1),
                    use_threads=True,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=options.delimiter,
                    newlines_in_values=True,  # quoted line breaks; costs ~10% of the parsing
                    ignore_empty_lines=True,  # as the exact reader; _Source watches the lines
                    invalid_row_handler=invalid,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    strings_can_be_null=False,  # "NA", "null"... stay text
                ),
            )
        except pa.ArrowException as exc:
            raise NeedsExactReader(f"pyarrow cannot read the file: {exc}") from None
    except BaseException:
        source.stop()
        raise
    yield from _batches(reader, source, invalid, plan, columns, batch_rows, block_size)


def _check_options(columns: Sequence[str], options: CsvOptions) -> bytes:
    delimiter = options.delimiter.encode("utf-8")
    if len(delimiter) != 1 or delimiter == b" ":
        # A space: a line of spaces would be a row, not a blank line; not worth the bother.
        raise NeedsExactReader(f"the delimiter {options.delimiter!r} is not one that it reads")
    if len(columns) < 2:
        # The exact reader tells a blank line of spaces from a value of spaces by a rule of
        # its own; pyarrow cannot.
        raise NeedsExactReader("the file has a single column")
    return delimiter


def _read_head(stream: BinaryIO) -> bytes:
    head = b""
    while len(head) < len(_UTF8_BOM):
        chunk = stream.read(len(_UTF8_BOM) - len(head))
        if not chunk:
            break
        head += chunk
    return head


def _batches(
    reader: Any,
    source: _Source,
    invalid: _InvalidRows,
    plan: _Plan,
    columns: Sequence[str],
    batch_rows: int,
    block_size: int,
) -> Iterator[ColumnarBatch]:
    # pyarrow parses the next blocks while batches are converted: it parses only when asked,
    # so _Prefetch asks from a thread of its own. With _WORKERS above 1, workers convert
    # batches side by side (pyarrow.compute lets go of the GIL) and this thread finishes them
    # in file order. On two cores one is used: more cost ~90 MB of memory for ~10%, and
    # converting the next batch while the caller writes this one measured no faster (the
    # staging writer and the conversion then take turns at the GIL).
    lines = _Lines()
    blocks = _Prefetch(reader)
    workers = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="usersync-columnar")
    converting: deque[Future[_Converted]] = deque()
    try:
        for batch in _coalesce(blocks, columns, lines, batch_rows, block_size, source, invalid):
            converting.append(workers.submit(_convert, batch, plan))
            if len(converting) >= _WORKERS:
                yield _finish(converting.popleft().result(), plan, lines, source, invalid)
        while converting:
            yield _finish(converting.popleft().result(), plan, lines, source, invalid)
        lines.check_blank_lines(source)
    finally:
        for future in converting:
            future.cancel()
        workers.shutdown(wait=True)
        source.stop()
        blocks.stop()
        # The file is read: give the memory pyarrow kept back to the system before the
        # store's merge, which sorts with memory of its own (keeps the peak RSS flat).
        pa.default_memory_pool().release_unused()


class _Prefetch:
    """pyarrow's blocks, read in a thread of their own so that pyarrow parses ahead."""

    def __init__(self, reader: Any, depth: int = 4) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(reader,), name="usersync-columnar-read", daemon=True
        )
        self._thread.start()

    def _run(self, reader: Any) -> None:
        while not self._stopped.is_set():
            try:
                item = reader.read_next_batch()
            except StopIteration:
                item = None
            except Exception as exc:  # the consumer raises it
                item = exc
            while not self._stopped.is_set():
                try:
                    self._queue.put(item, timeout=0.05)
                    break
                except queue.Full:
                    continue
            if item is None or isinstance(item, Exception):
                return

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                item = self._queue.get(timeout=1)
            except queue.Empty:
                if self._thread.is_alive() or not self._queue.empty():
                    continue
                raise NeedsExactReader("the thread reading pyarrow's blocks died") from None
            if item is None:
                return
            if isinstance(item, pa.ArrowException):
                raise NeedsExactReader(f"pyarrow cannot read the file: {item}")
            if isinstance(item, Exception):
                raise item
            yield item

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)


def _coalesce(
    blocks: Iterable[Any],
    columns: Sequence[str],
    lines: _Lines,
    batch_rows: int,
    block_size: int,
    source: _Source,
    invalid: _InvalidRows,
) -> Iterator[_Batch]:
    """The data rows, in batches of at least `batch_rows` rows or `_BATCH_BYTES` of the file
    (whole blocks of about `block_size` bytes), all of them read and checked."""
    most_blocks = max(_BATCH_BYTES // block_size, 1)
    header_seen = yielded = False
    pending: list[Any] = []
    pending_rows = 0
    for block in _explained(blocks, source, invalid):
        if not header_seen and block.num_rows:
            _check_reading(source, invalid)  # pyarrow's rows mean nothing after a violation
            _check_header(block, columns, lines)
            block = block.slice(1)
            header_seen = True
        if block.num_rows:
            pending.append(block)
            pending_rows += block.num_rows
        if pending_rows >= batch_rows or len(pending) >= most_blocks:
            _check_reading(source, invalid)  # every byte of these rows has been read by now
            if not yielded and pending_rows < min(batch_rows, _FEWEST_BATCH_ROWS):
                raise NeedsExactReader(
                    f"its rows are long (about {most_blocks * block_size // pending_rows} "
                    "bytes each): the exact reader is quicker for them"
                )
            yielded = True
            yield _Batch(pending)
            pending, pending_rows = [], 0
    _check_reading(source, invalid)
    if not source.eof:
        raise NeedsExactReader("pyarrow stopped before the end of the file")
    if not header_seen:
        raise NeedsExactReader("pyarrow found no header row")
    if pending:
        yield _Batch(pending)


def _explained(blocks: Iterable[Any], source: _Source, invalid: _InvalidRows) -> Iterator[Any]:
    """The blocks; when pyarrow fails, the reason that made it fail if the checks know it."""
    try:
        yield from blocks
    except NeedsExactReader:
        _check_reading(source, invalid)  # e.g. a stray quote, after which pyarrow saw no more
        raise


def _check_reading(source: _Source, invalid: _InvalidRows) -> None:
    if source.quotes.violation is not None:
        raise NeedsExactReader(f"strict CSV reading would fail: {source.quotes.violation}")
    if source.nul:
        raise NeedsExactReader("a NUL byte, which rejects its row")
    if source.undecodable:
        raise NeedsExactReader("a byte that the file's encoding does not define")
    if invalid.ragged:
        raise NeedsExactReader("a row has more or fewer fields than the header")


def _check_header(block: Any, columns: Sequence[str], lines: _Lines) -> None:
    raw = [block.column(i)[0].as_py() for i in range(block.num_columns)]
    names = [name.strip() for name in raw]
    names[0] = names[0].removeprefix("\ufeff").strip()  # as CsvReader does
    if names != list(columns):
        raise NeedsExactReader(f"pyarrow read the header as {names!r}, not {list(columns)!r}")
    lines.value_line_ends += sum(_line_ends(name.encode()) for name in raw)
    if lines.value_line_ends:
        lines.exact = False
        lines.why_not = "the header spans several lines"


# -- converting a batch ----------------------------------------------------------------------


class _Batch:
    """One batch's blocks, and what converting them has found so far.

    A column is joined from its blocks only when it is used: most of a wide file's columns
    are not mapped, and joining them all cost more than the rest of the conversion.
    """

    def __init__(self, blocks: list[Any]) -> None:
        self._blocks = blocks
        self.width: int = blocks[0].num_columns
        self.rows: int = sum(block.num_rows for block in blocks)
        self.bad: Any = None  # boolean array: the rows that RowMapper must decide
        # (step, boolean array): where a typed property's cells may not convert
        self.flagged: list[tuple[int, Any]] = []
        self._columns: dict[int, Any] = {}
        self._data: dict[int, bytes] = {}

    def column(self, column: int) -> Any:
        if column not in self._columns:
            chunks = [block.column(column) for block in self._blocks]
            self._columns[column] = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
        return self._columns[column]

    def data(self, column: int) -> bytes:
        """The bytes of a column's values, all of them back to back (maybe a few more)."""
        if column not in self._data:
            buffer = self.column(column).buffers()[2]
            self._data[column] = b"" if buffer is None else buffer.to_pybytes()
        return self._data[column]

    def every_value(self) -> Any:
        """All the batch's values in one array, column after column (`rows` values each)."""
        chunks = [block.columns for block in self._blocks]
        return pa.concat_arrays([block[i] for i in range(self.width) for block in chunks])


@dataclass
class _Converted:
    batch: _Batch
    user_ids: list[str]
    documents: list[str]  # None in the rows RowMapper decides (they are not read)
    bad_rows: list[int]  # those rows
    changes: Sequence[Change] | None  # the batch's changes, if RowMapper decides none
    first_spanning: int | None  # the first row with a line break in a value
    value_line_ends: int  # line breaks in all its values


def _convert(batch: _Batch, plan: _Plan) -> _Converted:
    """A batch converted, all but what depends on the batches before it (a worker runs it)."""
    try:
        first_spanning, value_line_ends = _check_values(batch)
        user_ids = _strip(batch, plan.user_id)
        # RowMapper decides the rows whose userId is empty or may be too long.
        id_bytes = pc.binary_length(user_ids)
        batch.bad = pc.or_(pc.equal(id_bytes, 0), pc.greater(id_bytes, MAX_USER_ID_LENGTH))
        values = [
            _string_value(batch, prop, plan.clear)
            if prop.convert is None
            else _typed_value(batch, step, prop, prop.convert, plan.clear)
            for step, prop in enumerate(plan.properties)
        ]
        documents = _documents(values, batch.rows)
        bad_rows = pc.indices_nonzero(batch.bad)
    except pa.ArrowException as exc:
        raise NeedsExactReader(f"pyarrow cannot convert a batch: {exc}") from None
    bad: list[int] = bad_rows.to_pylist()
    if not bad and plan.as_columns:
        columns = ChangeColumns(user_ids, documents)
        return _Converted(batch, [], [], bad, columns, first_spanning, value_line_ends)
    ids: list[str] = user_ids.to_pylist()
    texts: list[str] = documents.to_pylist()
    changes = None if bad else list(zip(ids, texts, strict=True))
    return _Converted(batch, ids, texts, bad, changes, first_spanning, value_line_ends)


def _finish(
    converted: _Converted, plan: _Plan, lines: _Lines, source: _Source, invalid: _InvalidRows
) -> ColumnarBatch:
    """A converted batch as Python objects, with the rows RowMapper decides."""
    batch = converted.batch
    lines.value_line_ends += converted.value_line_ends
    if converted.first_spanning is not None and lines.exact:
        lines.first_spanning = converted.first_spanning
        lines.why_not = "a value before it spans several lines"
    changes: Sequence[Change]
    if converted.changes is None:
        changes, rejected = _decide_bad_rows(
            batch,
            converted.user_ids,
            converted.documents,
            converted.bad_rows,
            plan,
            lines,
            source,
            invalid,
        )
    else:
        changes, rejected = converted.changes, []
    lines.next_index += batch.rows
    if lines.first_spanning is not None:
        lines.exact = False
        lines.first_spanning = None
    return ColumnarBatch(changes, rejected, batch.rows, source.bytes_read)


def _check_values(batch: _Batch) -> tuple[int | None, int]:
    """Gives up on a value over the exact reader's limit; says where the first value with a
    line break is, and how many line ends the values hold. All columns at once: a wide file
    has thousands, and a call per column and batch cost more than the conversion."""
    values = batch.every_value()
    buffer = values.buffers()[2]
    data = b"" if buffer is None else buffer.to_pybytes()
    if len(data) > FIELD_SIZE_LIMIT and pc.max(pc.binary_length(values)).as_py() > (
        FIELD_SIZE_LIMIT
    ):
        # The exact reader fails the whole run on such a field: let it say so.
        raise NeedsExactReader(f"a value is over {FIELD_SIZE_LIMIT} characters long")
    if b"\n" not in data and b"\r" not in data:
        return None, 0
    # A value with a line break makes its row span lines: later rows start further on.
    ends = pc.subtract(
        pc.add(pc.count_substring(values, "\n"), pc.count_substring(values, "\r")),
        pc.count_substring(values, "\r\n"),
    )
    spanning = pc.indices_nonzero(pc.greater(ends, 0))
    rows = pa.scalar(batch.rows, pa.uint64())
    first_row = pc.min(pc.subtract(spanning, pc.multiply(pc.divide(spanning, rows), rows)))
    return first_row.as_py(), pc.sum(ends).as_py() or 0


def _strip(batch: _Batch, column: int) -> Any:
    """The column's values as str.strip() leaves them."""
    if batch.data(column).translate(_WHITESPACE_LEADS).find(0) < 0:
        return batch.column(column)  # no whitespace anywhere
    return pc.utf8_trim(batch.column(column), characters=PY_WHITESPACE)


def _string_value(batch: _Batch, prop: CompiledProperty, clear: bool) -> _Value:
    cells = batch.column(prop.column)
    escaped = _escape(cells, batch.data(prop.column)).view(pa.binary())
    return _Value(prop.key, escaped, '"', _empty(pc.binary_length(cells)), clear)


def _escape(cells: Any, data: bytes) -> Any:
    """Each value as the inside of its JSON string, as json's encode_basestring writes it."""
    if data.translate(_OTHER_CONTROLS).find(0) >= 0:
        return pa.array([encode_json_string(v)[1:-1] for v in cells.to_pylist()], pa.string())
    for char, escaped in _SIMPLE_ESCAPES:
        if char in data:
            cells = pc.replace_substring(cells, char.decode(), escaped)
    return cells


def _typed_value(
    batch: _Batch, step: int, prop: CompiledProperty, convert: Converter, clear: bool
) -> _Value:
    text = _strip(batch, prop.column)
    lengths = pc.binary_length(text)
    empty = pc.equal(lengths, 0)
    values = _typed_json(prop.kind, text, empty, convert)
    flagged = pc.and_(pc.invert(empty), pc.is_null(values))
    if pc.any(flagged).as_py():
        batch.flagged.append((step, flagged))
        batch.bad = pc.or_(batch.bad, flagged)
    return _Value(prop.key, values.view(pa.binary()), "", _empty(lengths), clear)


def _empty(lengths: Any) -> Any | None:
    """Where the cells are empty; None when none is (the usual case, and a cheaper one)."""
    empty = pc.equal(lengths, 0)
    return empty if pc.any(empty).as_py() else None


class _Value:
    """One property's JSON values in a batch, ready to be spliced into the documents."""

    def __init__(self, key: str, values: Any, quote: str, empty: Any | None, clear: bool) -> None:
        self.key = key
        self.values = values  # binary; null where a typed cell did not convert
        self.quote = quote  # '"' for a string value, still to be written around it
        self.optional = empty  # where the property is left out of the row's document
        if empty is not None and clear:  # an empty cell clears the property: "key":null
            self.values = pc.if_else(empty, _NULL, _wrap(values, quote, quote))
            self.quote = ""
            self.optional = None

    def piece(self, lead: str, trail: str) -> Any:
        """lead + "key":value + trail where the property is in the row; nothing elsewhere."""
        piece = _wrap(self.values, lead + self.key + self.quote, self.quote + trail)
        return piece if self.optional is None else pc.if_else(self.optional, _NOTHING, piece)


_NULL = pa.scalar(b"null", pa.binary())
_NOTHING = pa.scalar(b"", pa.binary())


def _wrap(values: Any, prefix: str, suffix: str) -> Any:
    """prefix + value + suffix (binary_replace_slice costs a fraction of a join)."""
    if prefix:
        values = pc.binary_replace_slice(values, 0, 0, prefix)
    if suffix:
        values = pc.binary_replace_slice(values, _END, _END, suffix)
    return values


def _documents(values: list[_Value], rows: int) -> Any:
    """Each row's JSON object text, as RowMapper writes it: '{' + ','.join(parts) + '}'.

    pyarrow.compute has no fast way to glue columns: every kernel call and every argument of
    binary_join_element_wise costs about as much per row as a short copy. So the constant text
    between two values (a closing quote, a comma, the next key) is added to the value before it
    in one call, and the properties present in every row (the usual case) need no more. A
    property left out of some rows carries its own comma. (binary_join_element_wise's
    null_handling="skip" would do the commas, but it drops the rows that are all null.)
    """
    if not values:
        return pa.array(["{}"] * rows, pa.string())
    if all(value.optional is not None for value in values):
        joined = _join([value.piece("", ",") for value in values])
        closed = pc.binary_replace_slice(joined, -1, _END, "}")  # the last comma, or nothing
        return pc.binary_replace_slice(closed, 0, 0, "{").view(pa.string())
    # Items: str (constant text), _Value (present in every row), or a piece array.
    items: list[str | _Value | Any] = ["{"]
    fixed_before = False
    for value in values:
        if value.optional is None:
            items += [("," if fixed_before else "") + value.key + value.quote, value]
            items.append(value.quote)
            fixed_before = True
        else:  # before the first fixed value a piece's comma follows it, after it precedes it
            items.append(value.piece("," if fixed_before else "", "" if fixed_before else ","))
    items.append("}")
    merged: list[str | _Value | Any] = []
    for item in items:
        if isinstance(item, str) and merged and isinstance(merged[-1], str):
            merged[-1] += item
        elif not (isinstance(item, str) and not item):
            merged.append(item)
    prefixes: dict[int, str] = {}
    suffixes: dict[int, str] = {}
    constants: dict[int, str] = {}
    for i, item in enumerate(merged):
        if isinstance(item, str):
            if i > 0 and isinstance(merged[i - 1], _Value):
                suffixes[i - 1] = item
            elif i + 1 < len(merged) and isinstance(merged[i + 1], _Value):
                prefixes[i + 1] = item
            else:
                constants[i] = item
    args = []
    for i, item in enumerate(merged):
        if isinstance(item, _Value):
            args.append(_wrap(item.values, prefixes.get(i, ""), suffixes.get(i, "")))
        elif i in constants:
            args.append(pa.scalar(constants[i].encode(), pa.binary()))
        elif not isinstance(item, str):
            args.append(item)
    return _join(args).view(pa.string())


def _join(args: list[Any]) -> Any:
    return args[0] if len(args) == 1 else pc.binary_join_element_wise(*args, _NOTHING)


# -- typed cells -----------------------------------------------------------------------------


def _typed_json(kind: PropertyType, text: Any, empty: Any, convert: Converter) -> Any:
    """The JSON of each typed cell (stripped), or null where it is empty or not of the type.

    Three tiers, each for the non-empty cells that the one before left: a cheap rule for the
    usual forms, a broader vectorized rule, the Python converter itself.
    """
    values = _usual_forms(kind, text)
    pending = pc.and_(pc.invert(empty), pc.is_null(values))
    if not pc.any(pending).as_py():
        return values
    rest = pc.filter(text, pending)
    rest_values = _other_forms(kind, rest)
    left = pc.is_null(rest_values)
    if pc.any(left).as_py():
        results = [_python(convert, cell) for cell in pc.filter(rest, left).to_pylist()]
        rest_values = pc.replace_with_mask(rest_values, left, pa.array(results, pa.string()))
    return pc.replace_with_mask(values, pending, rest_values)


def _python(convert: Converter, text: str) -> str | None:
    try:
        return convert(text)
    except ValueError:
        return None  # RowMapper rejects the row, with its own message
    except Exception as exc:  # the exact path would stumble on it, not reject the row
        raise NeedsExactReader(f"converting {text!r} raised {exc!r}") from None


def _nulls(text: Any) -> Any:
    return pa.nulls(len(text), pa.string())


def _usual_forms(kind: PropertyType, text: Any) -> Any:
    """Tier 1: cells already written as the converter writes them, and booleans and dates."""
    if kind is PropertyType.INTEGER or kind is PropertyType.NUMBER:
        return pc.if_else(_canonical_number(text, kind is PropertyType.NUMBER), text, None)
    if kind is PropertyType.BOOLEAN:
        word = pc.index_in(pc.ascii_lower(text), value_set=_BOOLEAN_WORDS)
        return pc.if_else(pc.less(word, 3), "true", "false")  # null where no word
    if kind is PropertyType.DATE:
        # pyarrow's date32 cast reads exactly YYYY-MM-DD, and refuses impossible days; year
        # 0000 it takes, Python does not. It refuses a whole column for one bad cell, though.
        dated = pc.and_(
            pc.equal(pc.binary_length(text), 10), pc.invert(pc.starts_with(text, "0000"))
        )
        try:
            pc.cast(pc.if_else(dated, text, "2000-01-01"), pa.date32())
        except pa.ArrowInvalid:
            return _nulls(text)
        return pc.if_else(dated, _wrap(text, '"', '"').view(pa.string()), None)
    return _nulls(text)  # datetime: the Python converter reads every cell


def _canonical_number(text: Any, decimals: bool) -> Any:
    """Where the text is exactly what the converter writes for it: an integer with no sign or
    leading zero ("-0" is written "0"), or (`decimals`) a fixed-point decimal of at most 15
    significant digits, no trailing zero and at least 1e-4, which repr() writes the same."""
    length = pc.binary_length(text)
    digits = pc.utf8_ltrim(text, characters="-")
    digits_length = pc.binary_length(digits)
    signs = pc.subtract(length, digits_length)
    zero = pc.equal(digits, "0")
    leading_zero = pc.and_(pc.starts_with(digits, "0"), pc.invert(zero))
    whole = pc.and_(
        pc.and_(pc.ascii_is_decimal(digits), pc.invert(leading_zero)),
        pc.and_(
            pc.less_equal(digits_length, 15 if decimals else 18),  # below 2**53, or in int64
            pc.or_(pc.equal(signs, 0), pc.and_(pc.equal(signs, 1), pc.invert(zero))),
        ),
    )
    if not decimals:
        return whole
    point = pc.and_(
        pc.ascii_is_decimal(pc.replace_substring(digits, ".", "", max_replacements=1)),
        pc.match_substring(digits, "."),
    )
    shape = pc.and_(
        pc.and_(pc.invert(pc.starts_with(digits, ".")), pc.invert(pc.ends_with(digits, "."))),
        pc.and_(
            pc.invert(pc.ends_with(digits, "0")),
            pc.or_(pc.invert(pc.starts_with(digits, "0")), pc.starts_with(digits, "0.")),
        ),
    )
    size = pc.and_(
        pc.and_(pc.less_equal(length, 16), pc.less_equal(signs, 1)),
        pc.invert(pc.starts_with(digits, "0.0000")),  # below 1e-4 repr() uses an exponent
    )
    return pc.or_(whole, pc.and_(pc.and_(point, shape), size))


def _other_forms(kind: PropertyType, text: Any) -> Any:
    """Tier 2, for the few cells tier 1 left: broader rules, JSON as the converter writes it."""
    if kind is PropertyType.INTEGER:
        ok = pc.match_substring_regex(text, _INTEGER)
        digits = pc.replace_substring_regex(pc.if_else(ok, text, "0"), r"\.0*$", "")
        whole = pc.cast(pc.utf8_ltrim(digits, characters="+"), pa.int64())
        return pc.if_else(ok, pc.cast(whole, pa.string()), None)
    if kind is PropertyType.NUMBER:
        return _numbers(text)
    if kind is PropertyType.DATE:
        # strptime rolls an impossible day over (02-30 is 03-02): a date must read back as is.
        ok = pc.and_(pc.match_substring_regex(text, _DATE), pc.invert(pc.starts_with(text, "0000")))
        parsed = pc.strptime(
            pc.if_else(ok, text, "2000-01-01"), format="%Y-%m-%d", unit="s", error_is_null=True
        )
        same = pc.equal(pc.cast(pc.cast(parsed, pa.date32()), pa.string()), text)
        return pc.if_else(pc.and_(ok, same), _wrap(text, '"', '"').view(pa.string()), None)
    return _nulls(text)


def _numbers(text: Any) -> Any:
    ok = pc.match_substring_regex(text, _NUMBER)
    try:
        values = pc.cast(pc.if_else(ok, text, "0"), pa.float64())
    except pa.ArrowInvalid:  # a form pyarrow does not parse: Python decides each cell
        return _nulls(text)
    ok = pc.and_(ok, pc.is_finite(values))
    magnitude = pc.abs(values)
    whole = pc.and_(pc.equal(pc.floor(values), values), pc.less(magnitude, _EXACT_INT))
    as_int = pc.cast(pc.cast(pc.if_else(whole, values, 0.0), pa.int64()), pa.string())
    as_float = pc.cast(values, pa.string())
    fixed = pc.and_(
        pc.and_(pc.greater_equal(magnitude, _FIXED_LOW), pc.less(magnitude, _FIXED_HIGH)),
        pc.invert(pc.match_substring(as_float, "e")),
    )
    return pc.if_else(pc.and_(ok, whole), as_int, pc.if_else(pc.and_(ok, fixed), as_float, None))


# -- rows RowMapper decides ------------------------------------------------------------------


def _decide_bad_rows(
    batch: _Batch,
    ids: list[str],
    documents: list[str],
    bad_rows: list[int],
    plan: _Plan,
    lines: _Lines,
    source: _Source,
    invalid: _InvalidRows,
) -> tuple[list[tuple[str, str]], list[list[RowError]]]:
    """The batch's results when RowMapper decides some rows (it rejects them, mostly).

    Only the flagged cells of a row are tried again, with the exact converters: the other
    cells of the batch converted. A row whose flagged cells all convert after all is mapped
    whole by RowMapper.
    """
    positions = pa.array(bad_rows, pa.int64())
    user_ids = _take(batch.column(plan.user_id), positions)
    mapper = plan.mapper
    where = dict(batch.flagged)
    flagged = [
        (
            step,
            _take(where[step], positions),
            _take(batch.column(plan.properties[step].column), positions),
        )
        for step in mapper.in_error_order(where)
    ]
    first_line = 2 + lines.next_index  # of the batch's first row
    decided: dict[int, MappedRow | list[RowError]] = {}
    mapped_whole: list[int] = []  # the rows whose flagged cells convert after all
    try:
        for k, position in enumerate(bad_rows):
            cells = [(step, values[k]) for step, flags, values in flagged if flags[k]]
            if errors := mapper.refusals(first_line + position, user_ids[k], cells):
                decided[position] = errors
            else:
                mapped_whole.append(position)
        if mapped_whole:
            at = pa.array(mapped_whole, pa.int64())
            columns = [_take(batch.column(i), at) for i in range(batch.width)]
            for k, position in enumerate(mapped_whole):
                row = Row(first_line + position, [column[k] for column in columns])
                decided[position] = mapper.map(row)
    except Exception as exc:  # the exact path would fail the same way: let it
        raise NeedsExactReader(f"RowMapper raised {exc!r}") from None
    changes: list[tuple[str, str]] = []
    rejected: list[list[RowError]] = []
    start = 0
    for position in [*bad_rows, batch.rows]:
        changes.extend(zip(ids[start:position], documents[start:position], strict=True))
        start = position + 1
        if position < batch.rows:
            result = decided[position]
            if isinstance(result, MappedRow):
                changes.append((result.user_id, result.properties_json))
            else:
                _check_line(position, lines, source, invalid)
                rejected.append(result)
    return changes, rejected


def _take(values: Any, positions: Any) -> list[Any]:
    return pc.take(values, positions).to_pylist()  # type: ignore[no-any-return]


def _check_line(position: int, lines: _Lines, source: _Source, invalid: _InvalidRows) -> None:
    """Give up unless the rejected row at `position` starts where the exact reader says."""
    if invalid.blank:
        raise NeedsExactReader("a rejected row may come after a blank line: its line is unsure")
    lines.rejected = True
    if not lines.exact or (lines.first_spanning is not None and position > lines.first_spanning):
        raise NeedsExactReader(f"a rejected row's line is unsure: {lines.why_not}")
