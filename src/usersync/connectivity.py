"""Reaching a stored connection's server: open a Source with its secrets and its confirmed
host key, or test it.

    source = open_connection(settings, engine, box, ws, connection_id)   # caller closes it
    outcome = test_connection(settings, engine, box, ws, connection_id)

Until a connection's host-key fingerprint is confirmed, nothing is listed or read through it
and no password or key is offered to the server: `test_connection` only fetches the key the
server offers (the SSH handshake checks the host before any login) so the user can confirm
it, then tests the login once it is confirmed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from usersync.config import Settings
from usersync.errors import (
    AuthenticationFailed,
    Conflict,
    ConnectFailed,
    ConnectTimeout,
    HostKeyError,
    UsersyncError,
)
from usersync.files import create_file
from usersync.secretbox import SecretBox
from usersync.sources.base import Source
from usersync.sources.connect import Credentials, open_source
from usersync.sources.hostkeys import HostKeyPolicy
from usersync.sources.urls import RemoteLocation, S3Endpoint, TlsTrust
from usersync.store import connections
from usersync.store.connections import Connection


class HostKeyNotConfirmed(Conflict):
    """The connection's host key has not been confirmed yet (HTTP 409)."""


def location_of(connection: Connection, path: str = "/") -> RemoteLocation:
    options = connection.options
    return RemoteLocation(
        connection.kind,
        connection.host,
        connection.port,
        connection.username,  # for s3: the access key id, which open_source takes from here
        path,
        tls=TlsTrust(verify=bool(options.get("verify_tls", True))),
        s3=S3Endpoint(
            url=options.get("endpoint_url"),
            region=options.get("region"),
            path_style=bool(options.get("path_style", False)),
        ),
    )


def located(settings: Settings, connection: Connection, path: str = "/") -> RemoteLocation:
    """`location_of`, trusting the connection's own certificate authority if it has one
    (kept as a file in the data folder, which the TLS libraries read)."""
    location = location_of(connection, path)
    pem = connection.options.get("ca_pem")
    if not pem:
        return location
    trust = dataclasses.replace(location.tls, ca_file=str(_ca_file(settings, str(pem))))
    return dataclasses.replace(location, tls=trust)


def _ca_file(settings: Settings, pem: str) -> Path:
    """The PEM in a file of the data folder named after its content (written once)."""
    folder = settings.data_dir / "ca"
    path = folder / (hashlib.sha256(pem.encode("utf-8")).hexdigest() + ".pem")
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        create_file(path, pem.encode("utf-8"), 0o644)  # threads may race: one writes it
    return path


def needs_host_key(connection: Connection) -> bool:
    """Whether the server's host key must be confirmed before the connection is used."""
    return connection.kind == "sftp"


def host_key_pending(connection: Connection) -> bool:
    """Whether the connection waits for its host key to be confirmed (nothing is read until
    then)."""
    return needs_host_key(connection) and connection.host_key_fingerprint is None


def source_url(connection: Connection) -> str:
    """How runs name where a file came from (no secrets)."""
    return location_of(connection).origin


def open_connection(
    settings: Settings, engine: Engine, box: SecretBox, ws: int, connection_id: int
) -> Source:
    return open_loaded(settings, *connections.load(engine, box, ws, connection_id))


def open_loaded(settings: Settings, connection: Connection, credentials: Credentials) -> Source:
    """A Source for a connection already read with `connections.load`."""
    if host_key_pending(connection):
        raise HostKeyNotConfirmed(
            f"connection {connection.id} ({connection.name}): its host key is not confirmed "
            "yet. Test the connection, check the fingerprint it shows with the server's "
            "administrator, then confirm it (PATCH host_key_fingerprint)."
        )
    policy = HostKeyPolicy(fingerprint=connection.host_key_fingerprint)
    return open_source(located(settings, connection), credentials, policy, settings)


@dataclass(frozen=True)
class TestOutcome:
    ok: bool
    host_key_fingerprint: str | None
    message: str
    confirmed: bool  # whether that fingerprint is the connection's confirmed one


def test_connection(
    settings: Settings, engine: Engine, box: SecretBox, ws: int, connection_id: int
) -> TestOutcome:
    connection, credentials = connections.load(engine, box, ws, connection_id)
    pinned = connection.host_key_fingerprint
    if host_key_pending(connection):
        # An empty password that is never sent: an empty policy trusts no host key, so the
        # handshake stops at the key, before any login.
        probe = Credentials(password="")
        try:
            source = open_source(located(settings, connection), probe, HostKeyPolicy(), settings)
        except HostKeyError as error:
            return TestOutcome(
                ok=False,
                host_key_fingerprint=error.fingerprint,
                message=(
                    f"The server offered the host key {error.fingerprint}. Check it with the "
                    "server's administrator (ssh-keygen -lf on the server's host key), then "
                    "confirm it to finish connecting."
                ),
                confirmed=False,
            )
        except UsersyncError as error:
            return TestOutcome(False, None, error.message, False)
        source.close()  # unreachable in practice: nothing trusts an unconfirmed key
        return TestOutcome(False, None, "the server's host key could not be read", False)
    try:
        source = open_loaded(settings, connection, credentials)
    except HostKeyError as error:
        return TestOutcome(False, error.fingerprint, error.message, False)
    except (ConnectFailed, ConnectTimeout) as error:
        # No handshake got as far as a host key: none was offered.
        return TestOutcome(False, None, error.message, False)
    except AuthenticationFailed as error:
        message = error.message
        if connection.public_key:  # the usual reason: the key is not authorized yet
            message += (
                f". The server lets the key in once the connection's public key (public_key) "
                f"is in ~/.ssh/authorized_keys of {connection.username!r} on the server"
            )
        return TestOutcome(False, pinned, message, pinned is not None)
    except UsersyncError as error:
        return TestOutcome(False, pinned, error.message, pinned is not None)
    try:
        source.list_dir("/")
    except UsersyncError as error:
        return TestOutcome(False, pinned, f"logged in, but {error.message}", pinned is not None)
    finally:
        source.close()
    return TestOutcome(
        True,
        pinned,
        f"Connected to {location_of(connection).origin}.",
        pinned is not None,
    )
