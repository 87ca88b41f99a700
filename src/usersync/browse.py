"""Browsing a remote store for the wizard and the CLI: folders, eligible files, preview."""

from __future__ import annotations

import io
from dataclasses import dataclass

from usersync.files import (
    MAX_FILE_SIZE,
    EntryKind,
    FileListing,
    RemoteEntry,
    SizeLimitedReader,
    classify,
    require_eligible,
)
from usersync.reader import CsvOptions, Preview, read_preview
from usersync.sources.base import Source

PREVIEW_ROWS = 5


@dataclass(frozen=True)
class FolderListing:
    path: str
    folders: list[RemoteEntry]


def list_folders(source: Source, path: str) -> FolderListing:
    entries = source.list_dir(path)
    folders = sorted((e for e in entries if e.kind is EntryKind.DIRECTORY), key=lambda e: e.name)
    return FolderListing(path=path, folders=folders)


def list_files(source: Source, path: str, max_size: int = MAX_FILE_SIZE) -> FileListing:
    return classify(path, source.list_dir(path), max_size)


def open_eligible(
    source: Source, path: str, max_size: int = MAX_FILE_SIZE, *, digest: bool = False
) -> SizeLimitedReader:
    """Open an importable file for reading; raises a FileRuleError if it is not one.
    `digest`: compute the SHA-256 of what is read (`.sha256`)."""
    entry = source.stat(path)
    require_eligible(entry, max_size)
    return SizeLimitedReader(
        source.open(path), path=path, max_size=max_size, expected_size=entry.size, digest=digest
    )


def preview_file(
    source: Source,
    path: str,
    options: CsvOptions | None = None,
    *,
    rows: int = PREVIEW_ROWS,
    max_size: int = MAX_FILE_SIZE,
) -> Preview:
    """The header and the first `rows` records, read from the head of the file only."""
    with open_eligible(source, path, max_size) as raw:
        stream = io.BufferedReader(raw, buffer_size=64 * 1024)
        return read_preview(stream, options or CsvOptions(), rows=rows, name=path)
