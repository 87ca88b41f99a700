"""The protocol every remote store implements: list a folder, stat a path, open a byte stream."""

from __future__ import annotations

from typing import BinaryIO, Protocol

from usersync.files import RemoteEntry


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
