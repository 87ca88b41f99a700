"""API tokens: the bearer tokens of the REST API, each belonging to one workspace.

    new = create_token(engine, ws, name="ci")     # new.token is shown once, never stored
    authenticate(engine, "ust_...") -> workspace id, or None
    revoke(engine, "ust_..." or "42"); list_tokens(engine, ws) -> [Token, ...]
    lookup(engine, "ust_...") -> Holder(workspace_id, token_id), or None

Only a SHA-256 of each token is stored (plus its first characters, to tell tokens apart in a
list). A token carries 256 random bits, so an unsalted hash is enough: nobody can guess one
from its hash, and the hash is what `authenticate` looks up, through its unique index.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from usersync.db import SQLITE_BUSY_TIMEOUT_MS, write_transaction
from usersync.errors import UsageError
from usersync.schema import tokens, utcnow
from usersync.store._bind import Bind, reading, writing

TOKEN_PREFIX = "ust_"
PREFIX_LENGTH = 8  # "ust_" and 4 random characters: enough to tell a handful apart
MAX_TOKEN_LENGTH = 200  # a longer "token" is not one of ours: refused before hashing
MAX_NAME_LENGTH = 200
# last_used_at is written at most this often per token: most requests only read.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# On SQLite, how long recording last_used_at may wait for the write lock (a long import
# holds it) before the request goes on without recording it.
_TOUCH_BUSY_TIMEOUT_MS = 100

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewToken:
    id: int
    token: str = field(repr=False)  # the secret itself: kept out of reprs and logs


@dataclass(frozen=True)
class Token:
    """What is known of a stored token: never the token, nor its hash."""

    id: int
    prefix: str
    name: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_name(name: str | None) -> str | None:
    if name is None:
        return None
    if not name.strip():
        raise UsageError("a token name needs a character that is not a space")
    if len(name) > MAX_NAME_LENGTH:
        raise UsageError(
            f"a token name has at most {MAX_NAME_LENGTH} characters; this one has {len(name)}"
        )
    return name.strip()


def _looks_like_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and len(token) <= MAX_TOKEN_LENGTH


def create_token(bind: Bind, workspace_id: int, *, name: str | None = None) -> NewToken:
    """A new token for the workspace. The token is in the result only: keep it."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with writing(bind) as conn:
        token_id = conn.scalar(
            sa.insert(tokens)
            .values(
                workspace_id=workspace_id,
                token_hash=hash_token(token),
                prefix=token[:PREFIX_LENGTH],
                name=_check_name(name),
                created_at=utcnow(),
            )
            .returning(tokens.c.id)
        )
    assert token_id is not None
    return NewToken(int(token_id), token)


FIRST_TOKEN_NAME = "first sign-in"


def first_token(bind: Bind, workspace_id: int) -> NewToken | None:
    """A token for a workspace that has never had one (`usersync serve`'s first start shows
    it once); None when the workspace has or had a token."""
    if list_tokens(bind, workspace_id):
        return None
    return create_token(bind, workspace_id, name=FIRST_TOKEN_NAME)


@dataclass(frozen=True)
class Holder:
    """Who a valid token lets in: its workspace, and which token it is."""

    workspace_id: int
    token_id: int


def authenticate(bind: Bind, token: str) -> int | None:
    """The workspace id of `token` if it is a valid, unrevoked token; else None."""
    holder = lookup(bind, token)
    return None if holder is None else holder.workspace_id


def lookup(bind: Bind, token: str) -> Holder | None:
    """The workspace and id of `token` if it is a valid, unrevoked token; else None. Records
    when it was used (at most once a minute)."""
    if not isinstance(token, str) or not _looks_like_token(token):
        return None
    with reading(bind) as conn:
        row = conn.execute(
            sa.select(
                tokens.c.id, tokens.c.workspace_id, tokens.c.last_used_at, tokens.c.revoked_at
            ).where(tokens.c.token_hash == hash_token(token))
        ).first()
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        _touch(bind, row.id, now)
    return Holder(int(row.workspace_id), int(row.id))


def _touch(bind: Bind, token_id: int, now: datetime) -> None:
    """Record that the token was used at `now`, unless someone recorded it within the last
    resolution already (concurrent requests write it once). Best effort on SQLite: when an
    import holds the write lock, the request does not wait for it."""
    stale = sa.or_(
        tokens.c.last_used_at.is_(None), tokens.c.last_used_at <= now - LAST_USED_RESOLUTION
    )
    update = sa.update(tokens).where(tokens.c.id == token_id, stale).values(last_used_at=now)
    if isinstance(bind, Connection) or bind.dialect.name != "sqlite":
        with writing(bind) as conn:
            conn.execute(update)
        return
    try:
        with _impatient(bind) as conn, write_transaction(conn):
            conn.execute(update)
    except sa.exc.OperationalError as error:
        if "locked" not in str(error.orig):
            raise
        log.debug("token %d: last_used_at not recorded, the database is busy", token_id)


@contextmanager
def _impatient(engine: Engine) -> Iterator[Connection]:
    """An SQLite connection that waits only briefly for the write lock."""
    with engine.connect() as conn:
        # On the driver's connection: through SQLAlchemy the PRAGMA would begin a transaction.
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute(f"PRAGMA busy_timeout = {_TOUCH_BUSY_TIMEOUT_MS}")
        try:
            yield conn
        finally:
            driver.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def revoke(bind: Bind, token_or_id: str, *, workspace_id: int | None = None) -> bool:
    """Revoke a token, given as the token itself or its numeric id (optionally only if it
    belongs to `workspace_id`). True if there is such a token (revoking twice keeps the first
    time); False if there is none."""
    key = token_or_id.strip()
    if key.isascii() and key.isdigit():
        match = tokens.c.id == int(key)
    elif _looks_like_token(key):
        match = tokens.c.token_hash == hash_token(key)
    else:
        return False
    if workspace_id is not None:
        match = sa.and_(match, tokens.c.workspace_id == workspace_id)
    with writing(bind) as conn:
        found = conn.scalar(sa.select(tokens.c.id).where(match))
        if found is None:
            return False
        conn.execute(
            sa.update(tokens)
            .where(tokens.c.id == found, tokens.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    return True


def list_tokens(bind: Bind, workspace_id: int) -> list[Token]:
    """The workspace's tokens, revoked ones included, oldest first."""
    with reading(bind) as conn:
        rows = conn.execute(
            sa.select(
                tokens.c.id,
                tokens.c.prefix,
                tokens.c.name,
                tokens.c.created_at,
                tokens.c.last_used_at,
                tokens.c.revoked_at,
            )
            .where(tokens.c.workspace_id == workspace_id)
            .order_by(tokens.c.id)
        ).all()
    return [Token(**row._asdict()) for row in rows]
