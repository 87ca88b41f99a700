"""Calling the REST API in-process for tests, as a script would call it over HTTP.

    with running_app(settings, run_worker=False) as app:       # lifespan: database, worker
        api = Api(app, token)                                 # Authorization: Bearer token
        api.post("/api/connections", json={...}).json()
        api.bodies                                            # every answer it was given

Each test works in workspaces of its own (`new_workspace`), so one app (one migrated
database) can serve a whole module. `Api.bodies` is shared by the clients of one `Recorder`:
the secret-leak check scans everything the API answered during the test.
"""

from __future__ import annotations

import logging
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.exceptions import StarletteDeprecationWarning

from usersync.config import Settings, load_settings
from usersync.store import tokens, workspaces
from usersync.web.app import create_app
from usersync.web.deps import Services

with warnings.catch_warnings():
    # Starlette would rather drive its TestClient with httpx2; httpx works the same here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient as TestClient

SECRET_KEY = Fernet.generate_key().decode()


def api_settings(data_dir: Path, db_url: str, **env: str) -> Settings:
    """Settings for a test app: its own data folder and database, short timeouts, a worker
    that looks at the queue often and does not wait for files to settle."""
    return load_settings(
        {
            "USERSYNC_DATA_DIR": str(data_dir),
            "USERSYNC_DB": db_url,
            "USERSYNC_SECRET_KEY": SECRET_KEY,
            "USERSYNC_CONNECT_TIMEOUT": "5",
            "USERSYNC_IO_TIMEOUT": "5",
            "USERSYNC_WORKER_POLL": "0.1",
            "USERSYNC_SETTLE_SECONDS": "0",
            **env,
        }
    )


@dataclass
class RunningApp:
    app: FastAPI
    client: TestClient

    @property
    def services(self) -> Services:
        services = self.app.state.services
        assert isinstance(services, Services)
        return services

    @property
    def engine(self) -> Engine:
        return self.services.engine


@contextmanager
def running_app(settings: Settings, *, run_worker: bool = False) -> Iterator[RunningApp]:
    """The app, started (database open, worker running if asked) until the block ends.
    Server errors come back as 500 answers, as a client would see them."""
    app = create_app(settings, run_worker=run_worker)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield RunningApp(app, client)


@contextmanager
def app_on_database(
    kind: str, data_dir: Path, request: pytest.FixtureRequest, *, run_worker: bool = False
) -> Iterator[RunningApp]:
    """A running app on a fresh database of `kind` ("sqlite" or "postgresql", the latter in
    the session's PostgreSQL server), dropped afterwards."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        settings = api_settings(data_dir, f"sqlite:///{data_dir / 'usersync.db'}")
        with running_app(settings, run_worker=run_worker) as running:
            yield running
        return
    postgres = request.getfixturevalue("postgres")
    url = postgres.create_database()
    try:
        with running_app(api_settings(data_dir, url), run_worker=run_worker) as running:
            yield running
    finally:
        postgres.drop_database(url.rsplit("/", 1)[1])


@contextmanager
def no_secrets_shown(caplog: pytest.LogCaptureFixture, *secrets: str) -> Iterator[Recorder]:
    """A Recorder for the block; after it, neither an answer nor a usersync log line of the
    block may contain any of `secrets`."""
    caplog.set_level(logging.DEBUG, logger="usersync")
    recorder = Recorder()
    yield recorder
    recorder.bodies.append(caplog.text)
    leaked = recorder.leaks(*secrets)
    assert not leaked, f"secrets shown in an answer or a log line: {leaked}"


@dataclass
class Recorder:
    """Every response body the API gave during one test, to scan for secrets."""

    bodies: list[str] = field(default_factory=list)

    def leaks(self, *secrets: str) -> list[str]:
        """The secrets (or their non-trivial lines, for keys) that some answer contains."""
        found = []
        for secret in secrets:
            parts = [line for line in secret.splitlines() if len(line.strip()) >= 16] or [secret]
            if any(part in body for part in parts for body in self.bodies):
                found.append(secret[:12] + "...")
        return found


class Api:
    """A client of the running app with one workspace's token (or none)."""

    def __init__(self, running: RunningApp, token: str | None, recorder: Recorder) -> None:
        self.running = running
        self.token = token
        self.recorder = recorder

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        response: httpx.Response = self.running.client.request(
            method, url, headers=headers, **kwargs
        )
        self.recorder.bodies.append(response.text)
        self.recorder.bodies.append(str(response.headers))
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    @property
    def workspace_id(self) -> int:
        """The id of the workspace the token belongs to."""
        assert self.token is not None
        ws = tokens.authenticate(self.running.engine, self.token)
        assert ws is not None
        return ws

    def as_token(self, token: str | None) -> Api:
        """The same app and recorder, another token."""
        return Api(self.running, token, self.recorder)


@dataclass(frozen=True)
class Workspace:
    id: int
    name: str
    token: str


def new_workspace(engine: Engine, prefix: str = "ws") -> Workspace:
    """A fresh workspace (unique name) with a token of its own."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    ws = workspaces.create(engine, name)
    return Workspace(ws, name, tokens.create_token(engine, ws, name="tests").token)


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON of an answer that must have `status`."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The `{"code", "message"}` of an error answer that must have `status`."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str), body
    assert error["code"], body
    assert isinstance(error["message"], str), body
    assert error["message"], body
    return error


# Secrets the tests give the API; no answer may ever contain them (see `Recorder.leaks`).
PASSWORD = "pw-Quokka-7d1e2b9c-never-shown"
KEY_PASSPHRASE = "kp-Axolotl-51c0ffee-never-shown"
WEBHOOK_SECRET = "wh-Pangolin-2b8e77a1-never-shown"
# A real key (usersync refuses one it cannot read), encrypted with KEY_PASSPHRASE; 50 bcrypt
# rounds instead of 128, so that the many connections the tests make are quick to seal.
_KEY = asyncssh.generate_private_key("ssh-ed25519", comment="tests")
PRIVATE_KEY = _KEY.export_private_key("openssh", passphrase=KEY_PASSPHRASE, rounds=50).decode()
PUBLIC_KEY = _KEY.export_public_key("openssh").decode().strip()  # what the API shows of it
SECRETS = (PASSWORD, KEY_PASSPHRASE, WEBHOOK_SECRET, PRIVATE_KEY)


def connection_body(**overrides: Any) -> dict[str, Any]:
    """A connection to a port where nothing listens, with every kind of secret."""
    body: dict[str, Any] = {
        "name": f"conn-{uuid.uuid4().hex[:8]}",
        "host": "127.0.0.1",
        "port": 9,
        "username": "importer",
        "password": PASSWORD,
        "private_key": PRIVATE_KEY,
        "key_passphrase": KEY_PASSPHRASE,
    }
    body.update(overrides)
    return body


def sync_body(connection_id: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "connection_id": connection_id,
        "folder": "/in",
        "file": "userdata_a.csv",
        "mapping": {"user_id": "userId", "properties": {"email": "email", "age": "age"}},
    }
    body.update(overrides)
    return body


FINISHED = ("succeeded", "partial", "failed", "skipped")


def wait_for_run(api: Api, run_id: int, timeout: float = 60.0) -> dict[str, Any]:
    """The run once it has ended, as the API shows it (polled; bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        run: dict[str, Any] = ok(api.get(f"/api/runs/{run_id}"))
        if not seen or seen[-1] != run["status"]:
            seen.append(run["status"])
        if run["status"] in FINISHED:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}: {seen}"
        time.sleep(0.1)
