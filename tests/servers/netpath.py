"""A network path to a local server that a test can cut, as a lost host or a broken network
would: packets go unanswered, with no refusal and no reset.

    with CuttablePath(postgres.port) as path:    # as root
        connect to path.host:path.port           # reaches 127.0.0.1:postgres.port
        path.cut()                               # from now on, packets are lost
        path.mend()

The path crosses a veth pair into a network namespace of its own and back: a relay inside
the namespace listens on `host`:`port` and forwards over the pair to a relay in this
process, which forwards to 127.0.0.1:`target_port`. `cut()` takes the pair's far end down.
Run as a script, this module is the namespace's relay: `netpath.py LISTEN_HOST TARGET_HOST
TARGET_PORT` listens on a free port of LISTEN_HOST and prints "ready PORT".
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Self

from sqlalchemy.engine import make_url

from tests.servers import LOOPBACK, Server, ServerError, require_root

_PREFIX = "ustest"  # of the namespaces: ustest-PID-N
# libpq settings short enough for a test (usersync's defaults take about two minutes):
# probes after 1 s of silence, 1 s apart, 2 unanswered ones end the connection, as do 2 s
# without acknowledgement.
GIVE_UP_FAST = {
    "keepalives_idle": "1",
    "keepalives_interval": "1",
    "keepalives_count": "2",
    "tcp_user_timeout": "2000",
}
_counter = 0


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServerError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


def relay(
    listener: socket.socket,
    target: tuple[str, int],
    stopping: threading.Event,
    opened: list[socket.socket] | None = None,
) -> None:
    """Forward each connection that `listener` accepts to `target`, both ways, until
    `stopping` is set; the sockets it opens go into `opened`, for the caller to close."""
    opened = [] if opened is None else opened
    listener.settimeout(0.2)
    while not stopping.is_set():
        try:
            client, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        opened.append(client)
        try:
            upstream = socket.create_connection(target, timeout=10)
        except OSError:
            continue
        opened.append(upstream)
        upstream.settimeout(None)
        client.settimeout(None)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _remove_stale() -> None:
    """Namespaces left by test processes that died without cleaning up."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        stale = len(parts) == 3 and parts[0] == _PREFIX and parts[1].isdigit()
        if stale and not os.path.exists(f"/proc/{parts[1]}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


class CuttablePath(Server):
    """`host`:`port` reaches 127.0.0.1:`target_port` over a link that `cut()` takes down."""

    def __init__(self, target_port: int) -> None:
        global _counter
        _counter += 1
        self.target_port = target_port
        self.namespace = f"{_PREFIX}-{os.getpid()}-{_counter}"
        tag = secrets.token_hex(3)
        self._outer, self._inner = f"usa{tag}", f"usb{tag}"
        block = secrets.randbelow(16384) * 4  # a /30 in 10.231.0.0/16
        prefix = f"10.231.{block // 256}."
        self._outer_ip, self.host = f"{prefix}{block % 256 + 1}", f"{prefix}{block % 256 + 2}"
        self.port = 0  # the namespace's relay says which, once started
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._relayed: list[socket.socket] = []
        self._relay_thread: threading.Thread | None = None
        self._inner_relay: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        require_root("a network namespace")
        _remove_stale()
        try:
            self._link()
            self._relays()
        except BaseException:
            self.stop()
            raise
        return self

    def _link(self) -> None:
        _ip("netns", "add", self.namespace)
        _ip("link", "add", self._outer, "type", "veth", "peer", "name", self._inner)
        _ip("link", "set", self._inner, "netns", self.namespace)
        _ip("addr", "add", f"{self._outer_ip}/30", "dev", self._outer)
        _ip("link", "set", self._outer, "up")
        inside = ("netns", "exec", self.namespace, "ip")
        _ip(*inside, "addr", "add", f"{self.host}/30", "dev", self._inner)
        _ip(*inside, "link", "set", self._inner, "up")
        _ip(*inside, "link", "set", "lo", "up")

    def _relays(self) -> None:
        self._listener = socket.create_server((self._outer_ip, 0))
        outer_port = self._listener.getsockname()[1]
        target = (LOOPBACK, self.target_port)
        self._relay_thread = threading.Thread(
            target=relay,
            args=(self._listener, target, self._stopping, self._relayed),
            daemon=True,
        )
        self._relay_thread.start()
        command = [sys.executable, __file__, self.host, self._outer_ip, str(outer_port)]
        self._inner_relay = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        assert self._inner_relay.stdout is not None
        ready = self._inner_relay.stdout.readline().split()
        if len(ready) != 2 or ready[0] != b"ready":
            raise ServerError(f"the relay in {self.namespace} did not start")
        self.port = int(ready[1])

    def database_url(self, url: str) -> str:
        """PostgreSQL `url` (of the server on `target_port`) through this path, its libpq
        settings giving up on a silent server within seconds (GIVE_UP_FAST)."""
        through = make_url(url).set(host=self.host, port=self.port, query=GIVE_UP_FAST)
        return through.render_as_string(hide_password=False)

    def cut(self) -> None:
        """From now on, what is sent either way is lost. The namespace's end of the pair goes
        down: this end keeps its address and route and sends into a link without carrier.
        (Taking this end down instead would send the packets along the default route.)"""
        _ip("netns", "exec", self.namespace, "ip", "link", "set", self._inner, "down")

    def mend(self) -> None:
        _ip("netns", "exec", self.namespace, "ip", "link", "set", self._inner, "up")

    def stop(self) -> None:
        self._stopping.set()
        if self._inner_relay is not None:
            self._inner_relay.kill()
            self._inner_relay.wait(timeout=10)
            if self._inner_relay.stdout is not None:
                self._inner_relay.stdout.close()
            self._inner_relay = None
        if self._relay_thread is not None:
            self._relay_thread.join(timeout=5)
            self._relay_thread = None
        for sock in [*self._relayed, *([self._listener] if self._listener else [])]:
            sock.close()
        self._relayed, self._listener = [], None
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self._outer], capture_output=True, check=False)


if __name__ == "__main__":  # the relay inside the namespace
    listen_host, target_host, target_port = sys.argv[1:4]
    server = socket.create_server((listen_host, 0))
    print("ready", server.getsockname()[1], flush=True)
    relay(server, (target_host, int(target_port)), threading.Event())
