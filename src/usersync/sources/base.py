"""The protocol every remote store implements: list a folder, stat a path, open a byte stream;
and what every store's implementation shares (its timeouts, `with` closing it)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import BinaryIO, Protocol, Self

from usersync.files import RemoteEntry, is_utf8


@dataclass(frozen=True)
class Timeouts:
    connect: float = 15.0  # TCP connect + handshake + authentication
    io: float = 30.0  # any single request once connected


class Source(Protocol):
    """A connected remote store. Paths are absolute, `/`-separated, as the server names them.

    Implementations translate their library's errors into `usersync.errors` and never block
    forever: every call is bounded by the connection's timeouts.
    """

    def list_dir(self, path: str) -> list[RemoteEntry]:
        """The entries of folder `path` (links reported as what they point to)."""
        ...

    def stat(self, path: str) -> RemoteEntry:
        """The entry at `path`, following links."""
        ...

    def start_folder(self) -> str:
        """The folder a session starts in (the account's home folder, as file clients open
        it), or "/" when the server has none, or cannot say."""
        ...

    def open(self, path: str) -> BinaryIO:
        """A readable binary stream of the file at `path`; the caller closes it."""
        ...

    def rename(self, path: str, new_path: str) -> None:
        """Move the file at `path` to `new_path` (which must not exist yet)."""
        ...

    def remove(self, path: str) -> None:
        """Delete the file at `path`."""
        ...

    def close(self) -> None:
        """Disconnect. Safe to call more than once."""
        ...


def start_folder_of(path: str | None) -> str:
    """The start folder a server gave as `path`, normalized; "/" unless it is an absolute path
    in UTF-8 (what a server may give otherwise cannot be browsed)."""
    if not path or not path.startswith("/") or not is_utf8(path):
        return "/"
    return "/" + posixpath.normpath(path).lstrip("/")


class ClosesOnExit:
    """`with source:` closes the source at the end of the block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
