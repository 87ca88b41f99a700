"""Files on this machine, for the command line: `usersync import ./userdata_2026-11.csv`, to try
a mapping on a file at hand or to import one fetched by other means. The same file rules,
reading and messages as a server's files, without a network. Only the command line reaches
them: a connection of the web UI or the REST API always names a server.
"""

from __future__ import annotations

import os
import posixpath
import stat as stat_mod
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import BinaryIO, cast

from usersync.errors import RemotePathNotFound, RemotePermissionDenied, SourceError
from usersync.files import EntryKind, RemoteEntry, utf8_named
from usersync.sources.base import ClosesOnExit, start_folder_of

SERVER_HINT = "; for a file on a server, write its URL, e.g. sftp://USER@HOST/PATH"


class LocalSource(ClosesOnExit):
    """The files of this machine: paths are absolute, as the operating system names them."""

    def list_dir(self, path: str) -> list[RemoteEntry]:
        with _errors(path, "listing the folder", missing="folder"):
            try:
                with os.scandir(path) as found:
                    names = [entry.name for entry in found]
            except NotADirectoryError:
                raise RemotePathNotFound(f"{path} is a file, not a folder") from None
        return [utf8_named(_listed(posixpath.join(path, name))) for name in names]

    def stat(self, path: str) -> RemoteEntry:
        with _errors(path, "reading its size", missing="file"):
            return _entry(path, os.stat(path))

    def start_folder(self) -> str:
        return start_folder_of(os.getcwd())

    def open(self, path: str) -> BinaryIO:
        with _errors(path, "opening it", missing="file"):
            return cast(BinaryIO, open(path, "rb"))  # the caller closes it

    def rename(self, path: str, new_path: str) -> None:
        with _errors(path, f"moving it to {new_path}", missing="file"):
            os.link(path, new_path)  # fails if new_path exists, as the other stores' rename
            os.unlink(path)

    def remove(self, path: str) -> None:
        with _errors(path, "deleting it", missing="file"):
            os.unlink(path)

    def close(self) -> None:
        pass


def _listed(path: str) -> RemoteEntry:
    """A folder's entry at `path`, following links: a broken link (or one that went since it
    was listed) is "other", as the servers' listings have it."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return RemoteEntry(name=posixpath.basename(path), path=path, kind=EntryKind.OTHER)
    return _entry(path, info)


def _entry(path: str, info: os.stat_result) -> RemoteEntry:
    if stat_mod.S_ISDIR(info.st_mode):
        kind = EntryKind.DIRECTORY
    elif stat_mod.S_ISREG(info.st_mode):
        kind = EntryKind.FILE
    else:
        kind = EntryKind.OTHER
    return RemoteEntry(
        name=posixpath.basename(path.rstrip("/")) or "/",
        path=path,
        kind=kind,
        size=info.st_size,
        modified=datetime.fromtimestamp(info.st_mtime, UTC),
    )


@contextmanager
def _errors(path: str, what: str, *, missing: str) -> Iterator[None]:
    """The operating system's errors as usersync's, naming the path, what was being done, and
    what is `missing` ("file", "folder") when nothing is there."""
    try:
        yield
    except FileNotFoundError:
        raise RemotePathNotFound(
            f"there is no {missing} {path} on this machine{SERVER_HINT}"
        ) from None
    except PermissionError:
        raise RemotePermissionDenied(f"{path}: permission denied while {what}") from None
    except IsADirectoryError:
        raise RemotePathNotFound(f"{path} is a folder, not a file") from None
    except OSError as error:
        raise SourceError(f"{path}: {error.strerror or error} while {what}") from None
