"""Browsing a remote store for the wizard and the CLI: folders, eligible files, preview."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from typing import Any

from usersync.files import (
    MAX_FILE_SIZE,
    EntryKind,
    FileListing,
    RemoteEntry,
    SizeLimitedReader,
    classify,
    require_eligible,
)
from usersync.reader import CsvOptions, Preview, read_preview, sniff_delimiter
from usersync.sources.base import Source

PREVIEW_ROWS = 5
SNIFF_BYTES = 64 * 1024  # of a file's head read at once, and seen to guess its delimiter


@dataclass(frozen=True)
class FolderListing:
    path: str
    folders: list[RemoteEntry]


def list_folders(source: Source, path: str) -> FolderListing:
    entries = source.list_dir(path)
    # A folder whose name is not UTF-8 cannot be opened by its name: it is left out.
    folders = sorted(
        (e for e in entries if e.kind is EntryKind.DIRECTORY and e.name_is_utf8),
        key=lambda e: e.name,
    )
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
        source.open(path),
        path=path,
        max_size=max_size,
        expected_size=entry.size,
        expected_modified=entry.modified,
        digest=digest,
    )


def preview_file(
    source: Source,
    path: str,
    options: CsvOptions | None = None,
    *,
    rows: int = PREVIEW_ROWS,
    max_size: int = MAX_FILE_SIZE,
) -> Preview:
    """The header and the first `rows` records, read from the head of the file only; when
    they make a single column, the delimiter that the head seems to use instead, if one."""
    options = options or CsvOptions()
    with open_eligible(source, path, max_size) as raw:
        stream = io.BufferedReader(raw, buffer_size=SNIFF_BYTES)
        head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]  # what the preview reads first anyway
        preview = read_preview(stream, options, rows=rows, name=path)
    if len(preview.columns) < 2:
        other = sniff_delimiter(head)
        if other is not None and other != options.delimiter:
            return dataclasses.replace(preview, other_delimiter=other)
    return preview


# What each delimiter `sniff_delimiter` may find is called, in messages.
DELIMITER_WORDS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


# The JSON documents of the contract ("usersync folders|files|preview --json", and the REST
# API's folders/files/preview answers): one builder each, so both always say the same.


def folders_document(listing: FolderListing) -> dict[str, Any]:
    return {
        "path": listing.path,
        "folders": [{"name": f.name, "path": f.path} for f in listing.folders],
    }


def files_document(listing: FileListing) -> dict[str, Any]:
    return {
        "path": listing.path,
        "files": [
            {
                "name": f.name,
                "path": f.path,
                "size": f.size,
                "modified": f.modified.isoformat() if f.modified else None,
            }
            for f in listing.files
        ],
        "hidden": [
            {
                "name": h.entry.name,
                "path": h.entry.path,
                "size": h.entry.size,
                "reason": h.reason.value,
            }
            for h in listing.hidden
        ],
    }


def preview_document(path: str, preview: Preview) -> dict[str, Any]:
    return {
        "path": path,
        "columns": preview.columns,
        "rows": [row.values for row in preview.rows],
        "errors": [
            {"line": e.line, "column": e.column, "value": e.value, "message": e.message}
            for e in preview.errors
        ],
    }
