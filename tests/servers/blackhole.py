"""TCP endpoints that misbehave on purpose: one that never answers, one where nothing listens.

`BlackholeServer` accepts connections on 127.0.0.1 and a free port and never sends (or reads)
a byte, keeping every connection open until `stop()`: a client waiting for an SSH banner or a
login reply hangs until its own timeout fires.

`closed_port()` gives a port where nothing listens right now; `ClosedPort` keeps such a port
reserved (bound, not listening) so that no other process can start listening on it meanwhile:
connecting to it is refused.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from typing import Self

from tests.servers import LOOPBACK, Server, ServerError, free_port


class BlackholeServer(Server):
    """Accepts TCP connections on `host`:`port` and never sends anything.

    Attributes: `host` ("127.0.0.1"), `port`, `accepted` (how many connections it took).
    """

    host = LOOPBACK

    def __init__(self) -> None:
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._port: int | None = None

    def start(self) -> Self:
        if self._listener is not None:
            raise ServerError("the BlackholeServer is already running")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((LOOPBACK, 0))
            listener.listen(128)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._serve, name=f"blackhole-{self._port}", daemon=True
        )
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stopping.is_set():
                if not selector.select(timeout=0.05):
                    continue
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    conn, _ = self._listener.accept()
                    with self._lock:
                        if self._stopping.is_set():
                            conn.close()
                        else:
                            self._conns.append(conn)

    def stop(self) -> None:
        """Close the listener and every accepted connection."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                raise ServerError("the BlackholeServer thread did not stop within 5 s")
            self._thread = None
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("the BlackholeServer is not started")
        return self._port

    @property
    def accepted(self) -> int:
        """How many connections are being held open."""
        with self._lock:
            return len(self._conns)


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, read, closed: another process could
    take it later; `ClosedPort` cannot be taken)."""
    return free_port()


class ClosedPort(Server):
    """Reserves a port on 127.0.0.1 where nothing listens: the socket is bound, never
    `listen()`s, so connections are refused and no other process can listen there.

    `port` is valid from construction until `close()` (or the end of the `with` block).
    """

    host = LOOPBACK

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.bind((LOOPBACK, 0))
        except OSError:
            self._sock.close()
            raise
        self.port: int = self._sock.getsockname()[1]

    def start(self) -> Self:
        """Nothing to do: the port is reserved from construction."""
        return self

    def stop(self) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()
