"""A webhook receiver on loopback for tests: every POST it gets, headers and body, in a queue.

    with webhook_receiver() as hook:
        ...  # a sync with webhook_url=hook.url runs
        headers, body = hook.next_call()  # waits for it (up to `timeout` seconds)

A worker makes its webhook calls on a thread of its own: `worker.outbox.wait()` (which
`tests.syncs.drain` does) returns once they are answered, so queued here.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.servers import LOOPBACK

Call = tuple[dict[str, str], bytes]


def signature(secret: str, body: bytes) -> str:
    """The X-Usersync-Signature a call with `body` carries when signed with `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Receiver:
    url: str
    calls: queue.Queue[Call]

    def next_call(self, timeout: float = 30) -> Call:
        try:
            return self.calls.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no webhook call reached {self.url} in {timeout} s") from None

    def pending(self) -> list[Call]:
        """The calls received and not taken yet."""
        taken = []
        while not self.calls.empty():
            taken.append(self.calls.get_nowait())
        return taken


@contextmanager
def webhook_receiver(
    *statuses: int, held: threading.Event | None = None, drip: float | None = None
) -> Iterator[Receiver]:
    """A receiver answering its calls with `statuses` in turn, the last one from then on
    (204 when none are given); with `held`, only once that event is set (a slow receiver);
    with `drip`, its headers a byte every `drip` seconds, for up to 10 s (a receiver that
    never stops answering)."""
    calls: queue.Queue[Call] = queue.Queue()
    answers = list(statuses or (204,))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            calls.put((dict(self.headers.items()), body))
            if held is not None:
                held.wait(60)
            status = answers.pop(0) if len(answers) > 1 else answers[0]
            if drip is not None:
                self._drip(status, drip)
                return
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _drip(self, status: int, pause: float) -> None:
            self.wfile.write(f"HTTP/1.1 {status} OK\r\n".encode())
            stop = threading.Event()
            for _ in range(int(10 / pause)):
                try:
                    self.wfile.write(b"X-Slow: 1\r\n")
                    self.wfile.flush()
                except OSError:
                    return  # the caller gave up
                stop.wait(pause)
            self.wfile.write(b"Content-Length: 0\r\n\r\n")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver")
    thread.start()
    try:
        yield Receiver(f"http://{LOOPBACK}:{server.server_address[1]}/hook", calls)
    finally:
        if held is not None:
            held.set()
        server.shutdown()
        server.server_close()
        thread.join()
