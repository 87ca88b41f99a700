"""Test helpers for syncs and workers: a database with a workspace and a confirmed
connection to the test sshd, syncs made in one call, and a worker driven round by round."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from tests.servers.sshd import SftpFolder
from usersync import db
from usersync.config import Settings, load_settings
from usersync.connectivity import test_connection
from usersync.secretbox import SecretBox
from usersync.store import connections, runs, syncs, workspaces
from usersync.store.connections import NewConnection
from usersync.store.runs import Run
from usersync.store.syncs import Sync
from usersync.worker import Worker, WorkerOptions

FAST = WorkerOptions(poll=0.05, lease=5.0, heartbeat=0.2, backoff=(0.0, 0.0), settle=0.0)


def settings_for(data_dir: Path, db_url: str, **env: str) -> Settings:
    return load_settings({"USERSYNC_DATA_DIR": str(data_dir), **env}, db_url=db_url)


@dataclass
class SyncSetup:
    settings: Settings
    engine: Engine
    box: SecretBox
    ws: int
    connection_id: int
    sftp: SftpFolder

    def sync(self, **values: Any) -> Sync:
        """A sync of the test connection; `folder` is relative to the test's folder."""
        given: dict[str, Any] = {
            "connection_id": self.connection_id,
            "mapping": {"user_id": "id", "properties": {"email": "email"}},
            "enabled": True,
            **values,
        }
        given["folder"] = self.sftp.path(values.get("folder", ""))
        if given.get("move_to"):
            given["move_to"] = self.sftp.path(given["move_to"])
        return syncs.create(self.engine, self.box, self.ws, given)

    def worker(self, options: WorkerOptions = FAST, name: str = "test-worker") -> Worker:
        return Worker(self.settings, self.engine, self.box, options=options, name=name)

    def runs(self, sync: Sync) -> list[Run]:
        """The sync's runs, oldest first."""
        return runs.list_runs(self.engine, self.ws, sync_id=sync.id, limit=1000)[::-1]


@contextmanager
def sync_setup(tmp_path: Path, db_url: str, sftp: SftpFolder, **env: str) -> Iterator[SyncSetup]:
    settings = settings_for(tmp_path / "data", db_url, **env)
    engine = db.create_engine_for(db_url)
    try:
        db.migrate(engine)
        box = SecretBox.from_settings(settings)
        ws = workspaces.get_or_create(engine, "default")
        connection = connections.create(
            engine,
            box,
            ws,
            NewConnection(
                name="test sshd",
                host=sftp.host,
                port=sftp.port,
                username=sftp.username,
                password=sftp.password,
            ),
        )
        offered = test_connection(settings, engine, box, ws, connection.id)
        assert offered.host_key_fingerprint in sftp.host_key_fingerprints
        connections.update(
            engine, box, ws, connection.id, {"host_key_fingerprint": offered.host_key_fingerprint}
        )
        yield SyncSetup(settings, engine, box, ws, connection.id, sftp)
    finally:
        engine.dispose()


def drain(worker: Worker, rounds: int = 50) -> int:
    """Let the worker run until it finds nothing to do, and make its webhook calls; return
    how many runs it executed."""
    for executed in range(rounds):
        if not worker.tick():
            assert worker.outbox.wait(60), "the worker's webhook calls were not made in 60 s"
            return executed
    raise AssertionError(f"the worker was still busy after {rounds} rounds")


def csv_bytes(
    rows: Sequence[Mapping[str, str]], columns: tuple[str, ...] = ("id", "email")
) -> bytes:
    lines = [",".join(columns)] + [",".join(row[c] for c in columns) for row in rows]
    return ("\n".join(lines) + "\n").encode()
