"""A local copy of a remote file, made while it is read, so that it can be read again.

The fast column-wise reader may find halfway through that only the exact reader can handle a
file; the file is then read again from this copy, never downloaded twice. The copy sits in a
temporary file (on disk, not in memory) and is deleted when closed.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import BinaryIO

from usersync.errors import UsersyncError
from usersync.streams import ChunkReader


class SpoolFull(UsersyncError):
    """The local copy could not be written (no room on its disk). Nothing was applied."""

    exit_code = 5
    transient = True  # room may be made


class Spool(ChunkReader):
    """Reads `raw` and keeps every byte in a temporary file.

    `replay()` gives a fresh stream over the whole file: first what was already copied, then,
    seamlessly, the rest of `raw`. `finish()` copies the rest of `raw` and gives a stream of
    the complete local file.
    """

    def __init__(self, raw: BinaryIO | io.RawIOBase, *, directory: str | None = None) -> None:
        super().__init__()
        self._raw = raw
        # closed by close(): the spool outlives the statement that made it
        self._directory = directory or tempfile.gettempdir()
        self._file = tempfile.TemporaryFile(dir=self._directory)  # noqa: SIM115
        self.copied = 0

    def read_chunk(self, size: int) -> bytes:
        data = self._raw.read(size)
        self._file.seek(self.copied)
        try:
            self._file.write(data)
        except OSError as exc:
            raise SpoolFull(
                f"no room for the file's local copy in {self._directory} ({exc.strerror}): "
                f"an import keeps one, as large as the file, to read it again if needed; "
                f"free disk space there, or set TMPDIR to a folder with room for it"
            ) from None
        self.copied += len(data)
        return data

    def replay(self) -> BinaryIO:
        """A stream of the file from its first byte."""
        return io.BufferedReader(_Replay(self), buffer_size=1024 * 1024)

    def finish(self) -> BinaryIO:
        """Copy the rest of the remote file; return a stream of the local copy from byte 0."""
        while self.read(1024 * 1024):
            pass
        self._file.flush()
        local = os.fdopen(os.dup(self._file.fileno()), "rb", buffering=1024 * 1024)
        local.seek(0)
        return local

    def read_copied(self, position: int, size: int) -> bytes:
        self._file.seek(position)
        return self._file.read(min(size, self.copied - position))

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            super().close()


class _Replay(ChunkReader):
    def __init__(self, spool: Spool) -> None:
        super().__init__()
        self._spool = spool
        self._position = 0

    def read_chunk(self, size: int) -> bytes:
        if self._position < self._spool.copied:
            data = self._spool.read_copied(self._position, size)
        else:
            data = self._spool.read_chunk(size)
        self._position += len(data)
        return data
