"""Connections: a workspace's integration accounts (host, port, username, secrets).

    conn = connections.create(engine, box, ws, NewConnection(name=..., host=..., ...))
    connections.get(engine, box, ws, conn.id); connections.list_all(engine, box, ws)
    connections.update(engine, box, ws, conn.id, {"host_key_fingerprint": "SHA256:..."})
    connections.credentials(engine, box, ws, conn.id) -> Credentials   (decrypted, for use)

Secrets (password, private key, key passphrase) are sealed by a SecretBox before they reach
the database and are never part of a `Connection`: only whether each is set. Changing where
a connection points (host, port) forgets its confirmed host key.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from usersync.enums import ConnectionKind
from usersync.errors import Conflict, NotFound, UsageError
from usersync.schema import connections, syncs, utcnow
from usersync.secretbox import SecretBox
from usersync.sources.clientkeys import checked_public_key, public_key_of
from usersync.sources.connect import Credentials
from usersync.sources.hostkeys import check_fingerprint
from usersync.sources.urls import DEFAULT_PORTS
from usersync.store._bind import Bind, reading, writing

SECRET_FIELDS = ("password", "private_key", "key_passphrase")
PLAIN_FIELDS = ("name", "kind", "host", "port", "username", "host_key_fingerprint", "options")
# What each kind of store may be told besides host, port and user.
OPTIONS: dict[str, dict[str, type]] = {
    "sftp": {},
    "ftp": {},
    "ftps": {"verify_tls": bool, "ca_pem": str},
    "s3": {
        "endpoint_url": str,
        "region": str,
        "path_style": bool,
        "verify_tls": bool,
        "ca_pem": str,
    },
}
MAX_CA_PEM = 64 * 1024  # characters: a few CA certificates


def check_ca_pem(pem: str) -> str:
    """`pem` if it holds CA certificates in PEM form; a UsageError saying why not otherwise."""
    if len(pem) > MAX_CA_PEM or "-----BEGIN CERTIFICATE-----" not in pem:
        raise UsageError(
            "options.ca_pem: give the certificate authority's certificate in PEM form "
            "(-----BEGIN CERTIFICATE----- ...)"
        )
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError, TypeError) as exc:  # TypeError: not ASCII
        raise UsageError(f"options.ca_pem: the certificate cannot be read ({exc})") from None
    return pem


class ConnectionNotFound(NotFound):
    pass


@dataclass(frozen=True)
class Connection:
    id: int
    workspace_id: int
    name: str
    kind: str
    host: str
    port: int
    username: str
    host_key_fingerprint: str | None
    options: dict[str, Any]
    has_password: bool
    has_private_key: bool
    created_at: datetime
    updated_at: datetime
    # The OpenSSH public key of its private key (for the server's authorized_keys), if any.
    public_key: str | None = None


@dataclass(frozen=True, repr=False)
class NewConnection:
    name: str
    host: str
    username: str
    port: int | None = None  # None: the kind's usual port
    kind: str = ConnectionKind.SFTP.value
    password: str | None = None
    private_key: str | None = None
    key_passphrase: str | None = None
    host_key_fingerprint: str | None = None
    options: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"NewConnection(name={self.name!r}, host={self.host!r}, ...)"


def _check(values: Mapping[str, Any]) -> dict[str, Any]:
    checked = dict(values)
    if "kind" in checked:
        kinds = [kind.value for kind in ConnectionKind]
        if checked["kind"] not in kinds:
            raise UsageError(
                f"kind {checked['kind']!r} is not supported; use one of {', '.join(kinds)}"
            )
    if "port" in checked and not 1 <= int(checked["port"]) <= 65535:
        raise UsageError(f"port {checked['port']} is not between 1 and 65535")
    for name in ("name", "host", "username"):
        if name in checked and not str(checked[name]).strip():
            raise UsageError(f"{name} must not be empty")
    fingerprint = checked.get("host_key_fingerprint")
    if fingerprint:
        checked["host_key_fingerprint"] = check_fingerprint(fingerprint, "host_key_fingerprint")
    return checked


def _check_kind(kind: str, fingerprint: str | None, secrets: Mapping[str, str | None]) -> None:
    """What only an SFTP connection has: a private key, a host key."""
    if not (secrets.get("password") or secrets.get("private_key")):
        raise UsageError("give a password or a private key to log in with")
    if kind == ConnectionKind.SFTP.value:
        return
    secret = "secret access key" if kind == ConnectionKind.S3.value else "password"
    if secrets.get("private_key"):
        raise UsageError(
            f"private_key: {kind} connections log in with a {secret}, not a private key "
            "(remove the key: private_key null)"
        )
    if fingerprint:
        raise UsageError(f"host_key_fingerprint: {kind} connections have no SSH host key")


def _options(kind: str, options: Any) -> dict[str, Any] | None:
    if options is None:
        return None
    allowed = OPTIONS.get(kind, {})
    if not isinstance(options, dict):
        raise UsageError('options: give an object such as {"region": "eu-west-1"}')
    options = {name: value for name, value in options.items() if value is not None}
    for name, value in options.items():
        if name not in allowed:
            known = ", ".join(allowed) or "none"
            raise UsageError(f"options: {kind} connections have no option {name!r} ({known})")
        if not isinstance(value, allowed[name]):
            raise UsageError(f"options.{name}: {value!r} is not a {allowed[name].__name__}")
    if "ca_pem" in options:
        check_ca_pem(options["ca_pem"])
    endpoint = str(options.get("endpoint_url", "https://"))
    if not endpoint.startswith(("http://", "https://")):
        raise UsageError("options.endpoint_url: give an http:// or https:// URL")
    return dict(options) or None


def _connection(row: sa.Row[Any], box: SecretBox) -> Connection:
    return _unsealed(row, box)[0]


def _unsealed(row: sa.Row[Any], box: SecretBox) -> tuple[Connection, Credentials]:
    """The row as a Connection (which secrets are set) and its Credentials: one decryption."""
    secrets = box.open(row.secrets) if row.secrets else {}
    public_key = secrets.get("public_key")  # "": a key that does not read
    if public_key is None and secrets.get("private_key") and not secrets.get("key_passphrase"):
        public_key = public_key_of(secrets["private_key"], None)  # sealed before it was kept
    credentials = Credentials(
        password=secrets.get("password"),
        private_key=secrets.get("private_key"),
        key_passphrase=secrets.get("key_passphrase"),
    )
    return Connection(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        kind=row.kind,
        host=row.host,
        port=row.port,
        username=row.username,
        host_key_fingerprint=row.host_key_fingerprint,
        options=dict(row.options or {}),
        has_password=bool(credentials.password),
        has_private_key=bool(credentials.private_key),
        created_at=row.created_at,
        updated_at=row.updated_at,
        public_key=public_key or None,
    ), credentials


def _seal(box: SecretBox, secrets: Mapping[str, str | None], *, new_key: bool) -> str | None:
    """The secrets, encrypted, with the public key of the private key (read once, here: an
    encrypted key takes its passphrase's key derivation, up to a second).

    `new_key`: the key or its passphrase is being given, and is refused (UsageError) if the
    key does not read with it. A key kept from before that does not read is kept as it was
    (its public key ""), so that another secret can still change."""
    kept = {name: value for name in SECRET_FIELDS if (value := secrets.get(name))}
    if "private_key" in kept:
        key, passphrase = kept["private_key"], kept.get("key_passphrase")
        public_key = (
            checked_public_key(key, passphrase) if new_key else public_key_of(key, passphrase)
        )
        kept["public_key"] = public_key or ""
    return box.seal(kept) if kept else None


def _unique_name(conn: sa.Connection, ws: int, name: str, *, but: int | None = None) -> None:
    query = sa.select(connections.c.id).where(
        connections.c.workspace_id == ws, connections.c.name == name
    )
    if but is not None:
        query = query.where(connections.c.id != but)
    if conn.scalar(query) is not None:
        raise Conflict(f"there is already a connection named {name!r}; choose another name")


def create(bind: Bind, box: SecretBox, ws: int, new: NewConnection) -> Connection:
    given = {name: getattr(new, name) for name in PLAIN_FIELDS}
    given["port"] = new.port or DEFAULT_PORTS.get(new.kind, 22)
    values = _check(given)
    values["options"] = _options(new.kind, new.options)
    _check_kind(
        new.kind,
        values.get("host_key_fingerprint"),
        {name: getattr(new, name) for name in SECRET_FIELDS},
    )
    now = utcnow()
    with writing(bind) as conn:
        _unique_name(conn, ws, new.name)
        connection_id = conn.scalar(
            sa.insert(connections)
            .values(
                workspace_id=ws,
                secrets=_seal(
                    box, {name: getattr(new, name) for name in SECRET_FIELDS}, new_key=True
                ),
                created_at=now,
                updated_at=now,
                **values,
            )
            .returning(connections.c.id)
        )
        assert connection_id is not None
        return get(conn, box, ws, int(connection_id))


def _row(conn: sa.Connection, ws: int, connection_id: int) -> sa.Row[Any]:
    row = conn.execute(
        sa.select(connections).where(
            connections.c.id == connection_id, connections.c.workspace_id == ws
        )
    ).first()
    if row is None:
        raise ConnectionNotFound(f"there is no connection {connection_id}")
    return row


def get(bind: Bind, box: SecretBox, ws: int, connection_id: int) -> Connection:
    with reading(bind) as conn:
        return _connection(_row(conn, ws, connection_id), box)


def list_all(bind: Bind, box: SecretBox, ws: int) -> list[Connection]:
    with reading(bind) as conn:
        rows = conn.execute(
            sa.select(connections)
            .where(connections.c.workspace_id == ws)
            .order_by(connections.c.id)
        ).all()
    return [_connection(row, box) for row in rows]


def update(
    bind: Bind, box: SecretBox, ws: int, connection_id: int, changes: Mapping[str, Any]
) -> Connection:
    """Change some fields. A secret given as "" or None is removed; a secret not given is
    kept. Changing host or port forgets the confirmed host key unless a new one is given."""
    unknown = sorted(set(changes) - set(PLAIN_FIELDS) - set(SECRET_FIELDS))
    if unknown:
        raise UsageError(f"connections have no field {', '.join(unknown)}")
    plain = _check({k: v for k, v in changes.items() if k in PLAIN_FIELDS})
    with writing(bind) as conn:
        row = _row(conn, ws, connection_id)
        if "name" in plain:
            _unique_name(conn, ws, plain["name"], but=connection_id)
        kind = plain.get("kind", row.kind)
        if "options" in plain or "kind" in plain:
            plain["options"] = _options(kind, plain.get("options", row.options))
        moved = any(k in plain and plain[k] != getattr(row, k) for k in ("host", "port", "kind"))
        if moved and "host_key_fingerprint" not in plain:
            plain["host_key_fingerprint"] = None
        values: dict[str, Any] = {**plain, "updated_at": utcnow()}
        secrets: dict[str, str | None] = dict(box.open(row.secrets)) if row.secrets else {}
        secrets.update({k: changes[k] for k in SECRET_FIELDS if k in changes})
        fingerprint = plain.get("host_key_fingerprint", row.host_key_fingerprint)
        _check_kind(kind, fingerprint, secrets)
        if any(name in changes for name in SECRET_FIELDS):
            new_key = any(name in changes for name in ("private_key", "key_passphrase"))
            values["secrets"] = _seal(box, secrets, new_key=new_key)
        conn.execute(sa.update(connections).where(connections.c.id == connection_id), values)
        return get(conn, box, ws, connection_id)


def delete(bind: Bind, ws: int, connection_id: int) -> None:
    with writing(bind) as conn:
        _row(conn, ws, connection_id)
        used = conn.scalars(
            sa.select(syncs.c.id).where(syncs.c.connection_id == connection_id)
        ).all()
        if used:
            ids = ", ".join(str(sync_id) for sync_id in used)
            raise Conflict(f"connection {connection_id} is used by sync {ids}: delete those first")
        conn.execute(sa.delete(connections).where(connections.c.id == connection_id))


def load(bind: Bind, box: SecretBox, ws: int, connection_id: int) -> tuple[Connection, Credentials]:
    """A connection and its decrypted credentials, to connect with."""
    with reading(bind) as conn:
        return _unsealed(_row(conn, ws, connection_id), box)


def credentials(bind: Bind, box: SecretBox, ws: int, connection_id: int) -> Credentials:
    return load(bind, box, ws, connection_id)[1]
