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
        with _errors(path, "listing the folder"):
            if not os.path.isdir(path):
                if os.path.exists(path):
                    raise RemotePathNotFound(f"{path} is a file, not a folder")
                raise RemotePathNotFound(f"there is no folder {path} on this machine{SERVER_HINT}")
            with os.scandir(path) as found:
                names = [entry.name for entry in found]
        return [utf8_named(self._entry(posixpath.join(path, name))) for name in names]

    def stat(self, path: str) -> RemoteEntry:
        with _errors(path, "reading its size"):
            return self._entry(path, missing_is_error=True)

    def start_folder(self) -> str:
        return start_folder_of(os.getcwd())

    def open(self, path: str) -> BinaryIO:
        with _errors(path, "opening it"):
            return cast(BinaryIO, open(path, "rb"))  # the caller closes it

    def rename(self, path: str, new_path: str) -> None:
        with _errors(path, f"moving it to {new_path}"):
            os.link(path, new_path)  # fails if new_path exists, as the other stores' rename
            os.unlink(path)

    def remove(self, path: str) -> None:
        with _errors(path, "deleting it"):
            os.unlink(path)

    def close(self) -> None:
        pass

    @staticmethod
    def _entry(path: str, *, missing_is_error: bool = False) -> RemoteEntry:
        """The entry at `path`, following links; a broken link (or one that vanished since
        it was listed) is "other" unless `missing_is_error`."""
        name = posixpath.basename(path.rstrip("/")) or "/"
        try:
            info = os.stat(path)
        except FileNotFoundError:
            if missing_is_error:
                raise RemotePathNotFound(
                    f"there is no file {path} on this machine{SERVER_HINT}"
                ) from None
            return RemoteEntry(name=name, path=path, kind=EntryKind.OTHER)
        if stat_mod.S_ISDIR(info.st_mode):
            kind = EntryKind.DIRECTORY
        elif stat_mod.S_ISREG(info.st_mode):
            kind = EntryKind.FILE
        else:
            kind = EntryKind.OTHER
        modified = datetime.fromtimestamp(info.st_mtime, UTC)
        return RemoteEntry(name=name, path=path, kind=kind, size=info.st_size, modified=modified)


@contextmanager
def _errors(path: str, what: str) -> Iterator[None]:
    """The operating system's errors as usersync's, naming the path and what was being done."""
    try:
        yield
    except FileNotFoundError:
        raise RemotePathNotFound(f"there is no {path} on this machine{SERVER_HINT}") from None
    except PermissionError:
        raise RemotePermissionDenied(f"{path}: permission denied while {what}") from None
    except IsADirectoryError:
        raise RemotePathNotFound(f"{path} is a folder, not a file") from None
    except OSError as error:
        raise SourceError(f"{path}: {error.strerror or error} while {what}") from None
