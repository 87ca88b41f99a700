"""Connections in the metadata database: secrets sealed at rest, scoped to a workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.apiclient import KEY_PASSPHRASE, PRIVATE_KEY, PUBLIC_KEY
from tests.syncs import settings_for
from usersync import db
from usersync.errors import Conflict, UsageError
from usersync.schema import connections as connections_table
from usersync.secretbox import SecretBox
from usersync.store import connections, syncs, workspaces
from usersync.store.connections import ConnectionNotFound, NewConnection

PASSWORD = "pw-Zq81-never-stored-in-clear"


def test_secrets_are_sealed_scoped_and_updated(tmp_path: Path, db_url: str) -> None:
    settings = settings_for(tmp_path / "data", db_url)
    engine = db.create_engine_for(db_url)
    try:
        db.migrate(engine)
        box = SecretBox.from_settings(settings)
        ws = workspaces.get_or_create(engine, "default")
        other = workspaces.create(engine, "other")
        new = NewConnection(
            name="acme",
            host="sftp.example.com",
            username="u",
            password=PASSWORD,
            host_key_fingerprint="SHA256:" + "a" * 43 + "=",  # with base64 padding
        )
        conn = connections.create(engine, box, ws, new)
        assert PASSWORD not in repr(new)
        assert conn.has_password
        assert not conn.has_private_key
        assert conn.host_key_fingerprint == "SHA256:" + "a" * 43
        with engine.connect() as c:
            stored = c.execute(sa.select(connections_table)).one()._asdict()
        assert PASSWORD not in repr(stored)
        assert connections.credentials(engine, box, ws, conn.id).password == PASSWORD
        with pytest.raises(ConnectionNotFound):
            connections.get(engine, box, other, conn.id)
        with pytest.raises(Conflict, match="already a connection named 'acme'"):
            connections.create(engine, box, ws, new)

        renamed = connections.update(engine, box, ws, conn.id, {"name": "acme 2"})
        assert renamed.host_key_fingerprint == "SHA256:" + "a" * 43  # same server: still confirmed
        moved = connections.update(engine, box, ws, conn.id, {"host": "sftp2.example.com"})
        assert moved.host_key_fingerprint is None  # another server: confirm its key again
        with pytest.raises(UsageError, match="give a password or a private key"):
            connections.update(engine, box, ws, conn.id, {"password": None})
        with pytest.raises(UsageError, match=r"^private_key: this is not a private key"):
            connections.update(engine, box, ws, conn.id, {"password": None, "private_key": "KEY"})
        with pytest.raises(UsageError, match=r"^key_passphrase: the private key is encrypted"):
            connections.update(engine, box, ws, conn.id, {"private_key": PRIVATE_KEY})
        with pytest.raises(UsageError, match=r"^key_passphrase: it does not decrypt"):
            connections.update(
                engine, box, ws, conn.id, {"private_key": PRIVATE_KEY, "key_passphrase": "no"}
            )
        keyed = connections.update(
            engine,
            box,
            ws,
            conn.id,
            {"password": None, "private_key": PRIVATE_KEY, "key_passphrase": KEY_PASSPHRASE},
        )
        assert (keyed.has_password, keyed.has_private_key) == (False, True)
        assert keyed.public_key == PUBLIC_KEY
        with engine.begin() as bind:  # a key that does not read, kept from an older usersync
            bind.execute(
                sa.update(connections_table)
                .where(connections_table.c.id == conn.id)
                .values(secrets=box.seal({"private_key": "KEY", "public_key": ""}))
            )
        passworded = connections.update(engine, box, ws, conn.id, {"password": "pw"})
        assert (passworded.has_password, passworded.public_key) == (True, None)

        sync = syncs.create(
            engine,
            box,
            ws,
            {
                "connection_id": conn.id,
                "folder": "/in",
                "file": "userdata_a.csv",
                "mapping": {"user_id": "id"},
            },
        )
        with pytest.raises(Conflict, match=f"used by sync {sync.id}"):
            connections.delete(engine, ws, conn.id)
        syncs.delete(engine, ws, sync.id)
        connections.delete(engine, ws, conn.id)
        assert connections.list_all(engine, box, ws) == []
    finally:
        engine.dispose()
