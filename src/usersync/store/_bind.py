"""Engine-or-connection plumbing shared by the small repositories (workspaces, runs, ...).

Each repository function takes `bind`: an Engine (the function runs in a transaction of its
own) or a Connection (it runs in the caller's transaction, which the caller commits).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.dml import Insert

from usersync.db import write_transaction

Bind = Engine | Connection


@contextmanager
def reading(bind: Bind) -> Iterator[Connection]:
    """A connection to read with."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


@contextmanager
def writing(bind: Bind) -> Iterator[Connection]:
    """A connection in a write transaction (on SQLite, holding the write lock)."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn, write_transaction(conn):
            yield conn


def insert_ignoring_conflicts(conn: Connection, table: Table, key: list[str]) -> Insert:
    """INSERT ... ON CONFLICT (key) DO NOTHING, in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=key)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=key)
