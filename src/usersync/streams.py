"""A base for the small binary streams that wrap one another (size limit, local copy...)."""

from __future__ import annotations

import io
from typing import Any


class ChunkReader(io.RawIOBase):
    """A readable raw stream defined by one method, `read_chunk(size) -> bytes` (b"" at the
    end), so that `io.BufferedReader`, `TextIOWrapper` and pyarrow can all read it."""

    def read_chunk(self, size: int) -> bytes:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        data = self.read_chunk(len(target))
        target[: len(data)] = data
        return len(data)
