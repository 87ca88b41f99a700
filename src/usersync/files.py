"""The file rules: which remote entries are importable `userdata_*.csv` files, and why not."""

from __future__ import annotations

import enum
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from usersync.errors import FileTooLarge, NotEligible
from usersync.streams import ChunkReader

MAX_FILE_SIZE = 209_715_200  # 200 MB; a file of exactly this size is eligible
PREFIX = "userdata_"
EXTENSION = ".csv"


class EntryKind(enum.StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    OTHER = "other"  # device, socket, FIFO, broken link...


class HiddenReason(enum.StrEnum):
    NOT_CSV = "not_csv"
    BAD_PREFIX = "bad_prefix"
    TOO_LARGE = "too_large"
    NOT_A_REGULAR_FILE = "not_a_regular_file"
    NAME_NOT_UTF8 = "name_not_utf8"


_EXPLANATIONS = {
    HiddenReason.NOT_CSV: "only .csv files can be imported",
    HiddenReason.BAD_PREFIX: f"the file name must begin with {PREFIX!r} (case-sensitive)",
    HiddenReason.TOO_LARGE: "the file is larger than the size limit",
    HiddenReason.NOT_A_REGULAR_FILE: "it is not a regular file",
    HiddenReason.NAME_NOT_UTF8: (
        "its name is not valid UTF-8 (\ufffd marks the bytes that are not), and usersync "
        "reads files by their UTF-8 names: rename it (convmv renames files to UTF-8)"
    ),
}


@dataclass(frozen=True)
class RemoteEntry:
    """One entry of a remote folder. Links are reported as what they point to."""

    name: str
    path: str
    kind: EntryKind
    size: int | None = None
    modified: datetime | None = None  # aware, UTC
    name_is_utf8: bool = True  # else the name and path show \ufffd for the bytes that are not


def utf8_named(entry: RemoteEntry) -> RemoteEntry:
    """`entry` as a source listed it, its name decoded from UTF-8 with "surrogateescape": as it
    is when the name is UTF-8, else with \ufffd in its name and path and `name_is_utf8` False.
    A name that is not UTF-8 cannot be shown, stored or sent back to the server as text."""
    if is_utf8(entry.path):
        return entry
    return replace(entry, name=_shown(entry.name), path=_shown(entry.path), name_is_utf8=False)


def is_utf8(name: str) -> bool:
    """Whether `name`, decoded with "surrogateescape", was UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True)
class HiddenFile:
    entry: RemoteEntry
    reason: HiddenReason


@dataclass(frozen=True)
class FileListing:
    path: str
    files: list[RemoteEntry]  # by name
    hidden: list[HiddenFile]


_UNKNOWN_TIME = datetime.min.replace(tzinfo=UTC)  # a file whose time no one knows: oldest


def oldest_first(entries: Iterable[RemoteEntry]) -> list[RemoteEntry]:
    """By modification time (a file without one counts as the oldest), then by name."""
    return sorted(entries, key=lambda e: (e.modified or _UNKNOWN_TIME, e.name))


def newest_first(entries: Iterable[RemoteEntry]) -> list[RemoteEntry]:
    """The newest file first (a file without a time last), by name among equal times."""
    by_name = sorted(entries, key=lambda e: e.name)
    return sorted(by_name, key=lambda e: e.modified or _UNKNOWN_TIME, reverse=True)


def explain(reason: HiddenReason, max_size: int = MAX_FILE_SIZE) -> str:
    if reason is HiddenReason.TOO_LARGE:
        return f"the file is larger than the {format_size(max_size)} limit ({max_size:,} bytes)"
    return _EXPLANATIONS[reason]


def hidden_reason(entry: RemoteEntry, max_size: int = MAX_FILE_SIZE) -> HiddenReason | None:
    """Why `entry` is not an importable file, or None when it is one."""
    if not entry.name_is_utf8:
        return HiddenReason.NAME_NOT_UTF8
    if entry.kind is not EntryKind.FILE:
        return HiddenReason.NOT_A_REGULAR_FILE
    if not entry.name.lower().endswith(EXTENSION):
        return HiddenReason.NOT_CSV
    if not entry.name.startswith(PREFIX):
        return HiddenReason.BAD_PREFIX
    if entry.size is not None and entry.size > max_size:
        return HiddenReason.TOO_LARGE
    return None


def _looks_like_data_file(entry: RemoteEntry) -> bool:
    return entry.name.lower().endswith(EXTENSION)


def classify(
    path: str, entries: Iterable[RemoteEntry], max_size: int = MAX_FILE_SIZE
) -> FileListing:
    """Split a folder's entries into importable files and hidden ones with their reason.

    Folders are not files: they are left out, unless named like a CSV file, which a user
    would otherwise look for in vain.
    """
    files: list[RemoteEntry] = []
    hidden: list[HiddenFile] = []
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.kind is EntryKind.DIRECTORY and not _looks_like_data_file(entry):
            continue
        reason = hidden_reason(entry, max_size)
        if reason is None:
            files.append(entry)
        else:
            hidden.append(HiddenFile(entry, reason))
    return FileListing(path=path, files=files, hidden=hidden)


def require_eligible(entry: RemoteEntry, max_size: int = MAX_FILE_SIZE) -> None:
    """Raise NotEligible (or FileTooLarge) unless `entry` is an importable file."""
    reason = hidden_reason(entry, max_size)
    if reason is HiddenReason.TOO_LARGE:
        raise FileTooLarge(
            f"{entry.path}: {entry.size:,} bytes is over the {format_size(max_size)} limit "
            f"({max_size:,} bytes); split the file or raise the limit (USERSYNC_MAX_FILE_SIZE)"
        )
    if reason is not None:
        raise NotEligible(f"{entry.path} cannot be imported: {explain(reason)}", reason=reason)


def require_utf8_path(path: str) -> None:
    """Raise NotEligible when `path` (decoded with "surrogateescape") is not UTF-8: such a
    file is hidden from listings, and cannot be recorded or read back by its name."""
    if not is_utf8(path):
        reason = HiddenReason.NAME_NOT_UTF8
        raise NotEligible(f"{_shown(path)} cannot be imported: {explain(reason)}", reason=reason)


def format_size(size: int) -> str:
    """512 B, 1.5 KB, 200 MB: binary units, one decimal where it says something."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


class SizeLimitedReader(ChunkReader):
    """A binary stream that fails with FileTooLarge once more than `max_size` bytes are read.

    The listing checks the size too, but a file can grow between listing and reading.
    """

    def __init__(
        self,
        raw: BinaryIO,
        *,
        path: str,
        max_size: int = MAX_FILE_SIZE,
        expected_size: int | None = None,
        expected_modified: datetime | None = None,
        digest: bool = False,
    ) -> None:
        super().__init__()
        self._raw = raw
        self._path = path
        self._max_size = max_size
        self.expected_size = expected_size  # the size the listing gave, when known
        self.expected_modified = expected_modified  # and the modification time
        self.bytes_read = 0
        self._digest = hashlib.sha256() if digest else None

    @property
    def sha256(self) -> str | None:
        """The SHA-256 (hex) of the bytes read so far, when asked for with `digest=True`."""
        return None if self._digest is None else self._digest.hexdigest()

    def read_chunk(self, size: int) -> bytes:
        data = self._raw.read(size)
        self.bytes_read += len(data)
        if self._digest is not None:
            self._digest.update(data)
        if self.bytes_read > self._max_size:
            raise FileTooLarge(
                f"{self._path} grew past the {format_size(self._max_size)} limit while it was "
                f"read ({self.bytes_read:,} bytes so far); nothing was imported"
            )
        return data

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()


@contextmanager
def written_whole(path: Path, *, replace: bool = False) -> Iterator[Path]:
    """An empty file beside `path`, readable by its owner only, for the block to write; put
    in `path`'s place when the block ends without an error, so that a reader never sees a part
    of it. An existing `path` is replaced with `replace`, else kept (FileExistsError: a racing
    writer never loses its file). The file beside is gone afterwards, whatever happened."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    try:
        yield Path(temp)
        if replace:
            os.replace(temp, path)
        else:
            os.link(temp, path)  # unlike a rename, refuses an existing `path`
    finally:
        with suppress(FileNotFoundError):
            os.unlink(temp)


def create_file(path: Path, data: bytes, mode: int) -> bool:
    """Write `path` unless it exists, whole or not at all (a reader never sees a part of
    it, a racing writer never replaces it); whether it was written."""
    try:
        with written_whole(path) as temp:
            temp.chmod(mode)
            temp.write_bytes(data)
    except FileExistsError:
        return False
    return True
