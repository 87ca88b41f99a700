import asyncio
import io
from collections.abc import Iterator

import pytest

from usersync.errors import RemoteTimeout
from usersync.sources.aio import LoopThread, PrefetchingReader


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread("test")
    yield thread
    thread.close()


class FakeRemoteFile:
    """An async file of `size` bytes that counts what was asked of it."""

    def __init__(self, size: int) -> None:
        self.data = (bytes(range(251)) * (size // 251 + 1))[:size]
        self.position = 0
        self.requested = 0
        self.closed = False

    async def read(self, size: int) -> bytes:
        self.requested += size
        chunk = self.data[self.position : self.position + size]
        self.position += len(chunk)
        return chunk

    async def close(self) -> None:
        self.closed = True


def test_reads_the_whole_stream_in_order(loop: LoopThread) -> None:
    remote = FakeRemoteFile(5_000_000)
    with io.BufferedReader(PrefetchingReader(loop, remote.read, on_close=remote.close)) as stream:
        assert stream.read() == remote.data
    assert remote.closed


def test_reading_the_head_fetches_little_of_a_large_file(loop: LoopThread) -> None:
    remote = FakeRemoteFile(200 * 1024 * 1024)
    reader = PrefetchingReader(loop, remote.read, on_close=remote.close)
    assert reader.read(1000) == remote.data[:1000]
    reader.close()
    # only the first chunk: prefetching starts when a second one is wanted
    assert remote.requested <= 64 * 1024
    assert remote.closed


def test_errors_of_the_remote_read_reach_the_reader(loop: LoopThread) -> None:
    async def failing(size: int) -> bytes:
        raise RemoteTimeout("the server did not answer")

    reader = PrefetchingReader(loop, failing)
    with pytest.raises(RemoteTimeout, match="did not answer"):
        reader.read(10)
    reader.close()


def test_close_cancels_a_pending_read(loop: LoopThread) -> None:
    started = asyncio.Event()

    async def first_then_hang(size: int) -> bytes:
        if started.is_set():
            await asyncio.Event().wait()  # never returns: close() must cancel it
        started.set()
        return b"x" * size

    reader = PrefetchingReader(loop, first_then_hang)
    assert reader.read(10) == b"x" * 10
    reader.close()
    assert reader.closed
