"""A private asyncio loop on a background thread, so that async I/O libraries can serve
usersync's synchronous code (CLI, importer, worker) without leaking `async` upwards."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from usersync.streams import ChunkReader

T = TypeVar("T")

logger = logging.getLogger(__name__)


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # An I/O library's helper tasks can outlive a request that timed out or a connection that
    # dropped; the caller already got a clear error. The default handler would print their
    # tracebacks to stderr, from a finalizer, at any moment: keep them to a debug line.
    logger.debug("background I/O task ended: %s", context.get("exception") or context["message"])


class LoopThread:
    """Runs coroutines on its own event loop thread; `run` waits for their result."""

    def __init__(self, name: str = "usersync-io") -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet_exception_handler)
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and return its result (its own timeouts bound the wait)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._loop.is_closed():
            return

        async def _drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(_drain(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()


_EOF = object()


class PrefetchingReader(ChunkReader):
    """A blocking binary stream fed by an async `read_chunk(size)` running on `loop`.

    Chunks are fetched ahead into a small bounded queue, so the network transfer overlaps the
    caller's parsing. The chunk size starts small and doubles, so reading just the head of a
    large file (a preview) costs little, while a full read moves in large requests.
    """

    def __init__(
        self,
        loop: LoopThread,
        read_chunk: Callable[[int], Awaitable[bytes]],
        *,
        on_close: Callable[[], Awaitable[None]] | None = None,
        first_chunk: int = 64 * 1024,
        max_chunk: int = 1024 * 1024,
        queue_chunks: int = 4,
    ) -> None:
        super().__init__()
        self._loop = loop
        self._read_chunk = read_chunk
        self._on_close = on_close
        self._first_chunk = first_chunk
        self._max_chunk = max_chunk
        self._queue: asyncio.Queue[object] | None = None
        self._queue_chunks = queue_chunks
        self._task: asyncio.Task[None] | None = None
        self._buffer = memoryview(b"")
        self._finished = False
        self._started = False

    async def _produce(self) -> None:
        assert self._queue is not None
        size = min(self._first_chunk * 2, self._max_chunk)
        try:
            while True:
                data = await self._read_chunk(size)
                if not data:
                    await self._queue.put(_EOF)
                    return
                await self._queue.put(data)
                size = min(size * 2, self._max_chunk)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the reading thread, which raises it
            await self._queue.put(exc)

    async def _next_chunk(self) -> object:
        # The first chunk is fetched on demand: a caller that only wants the head (a preview)
        # never starts the prefetching of the rest.
        if not self._started:
            self._started = True
            try:
                return await self._read_chunk(self._first_chunk) or _EOF
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                return exc
        if self._queue is None:
            self._queue = asyncio.Queue(self._queue_chunks)
            self._task = asyncio.create_task(self._produce())
        return await self._queue.get()

    def read_chunk(self, size: int) -> bytes:
        if not self._buffer:
            if self._finished:
                return b""
            item = self._loop.run(self._next_chunk())
            if item is _EOF:
                self._finished = True
                return b""
            if isinstance(item, BaseException):
                self._finished = True
                raise item
            assert isinstance(item, bytes)
            self._buffer = memoryview(item)
        data = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return bytes(data)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._loop.loop.is_closed():
                self._loop.run(self._shutdown())
        finally:
            super().close()

    async def _shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._on_close is not None:
            await self._on_close()
