"""Running the `usersync` command in-process for tests, as a user would call it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from click.testing import CliRunner

from usersync.cli import main


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def usersync(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


class _Server(Protocol):
    @property
    def client_key_path(self) -> Any: ...
    @property
    def known_hosts_path(self) -> Any: ...


def key_args(server: _Server) -> list[str]:
    """Log in with the test key, trusting the test server's host keys."""
    return ["--key", str(server.client_key_path), "--known-hosts", str(server.known_hosts_path)]
