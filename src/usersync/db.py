"""Opening the database: SQLite (the embedded default) or PostgreSQL, and migrating it.

    engine = create_engine_for(url)   # sqlite:///PATH, or postgresql://USER@HOST[:PORT]/DB
    migrate(engine)                   # Alembic `upgrade head`, from the migrations in this package
    default_db_url(data_dir)          # sqlite:///<data_dir>/usersync.db

SQLite connections run in WAL mode (readers never block the writer), `synchronous=NORMAL`
(durable at checkpoints, never corrupt), foreign keys on, a 30 s busy timeout, a 64 MiB page
cache and 16 KiB pages for new files (measured: the bulk merge of 1.65 M users is ~20 %
faster than with 4 KiB pages). SQLAlchemy, not the sqlite3 module, emits BEGIN, so every
transaction (DDL included) is a real one; `write_transaction(conn)` starts one with the write lock
taken up front (BEGIN IMMEDIATE), for transactions that read and then write.

A URL that cannot be used raises `UsageError`; a database that cannot be reached or opened
raises `DatabaseUnavailable` (transient: it may work later).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine, RootTransaction, make_url

from usersync.config import make_private_dir
from usersync.errors import UsageError, UsersyncError
from usersync.migrations import HEAD

if TYPE_CHECKING:  # imported when a migration is due: see migrate
    from alembic.config import Config as AlembicConfig

DB_FILE_NAME = "usersync.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Connection execution option read by the BEGIN hook: take SQLite's write lock at BEGIN.
_BEGIN_IMMEDIATE = "usersync_begin_immediate"
# pg_advisory_xact_lock key that serializes concurrent migrations ("usersync" in ASCII, cut).
_MIGRATION_LOCK = 0x7573_6572_7379_6E63 >> 1

_SQLITE_PRAGMAS = (
    "PRAGMA page_size = 16384",  # takes effect only in a new, empty file
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA cache_size = -16384",  # KiB, per connection (more buys the merge nothing)
    "PRAGMA journal_size_limit = 67108864",  # truncate a big import's WAL after checkpoints
    # Helper threads for big sorts (an import's merge sorts every staged row by user id):
    # measured on 2 cores, 2.1 M rows merge in 3.6 s instead of 4.7 s.
    f"PRAGMA threads = {min(os.cpu_count() or 1, 2)}",  # each holds a sort buffer: RSS
)


class DatabaseUnavailable(UsageError):
    """The database cannot be reached or opened (server down, wrong host, unwritable file)."""

    transient = True


class DatabaseLost(UsersyncError):
    """The database stopped answering while a command used it (its server stopped, the
    network failed): what the command was doing did not finish."""

    transient = True

    def __init__(self, error: exc.DBAPIError) -> None:
        super().__init__(
            f"the database stopped answering ({reason(error)}); check that it is running, "
            "then try again"
        )


# What the drivers raise when the database cannot be reached or the connection broke.
CONNECTION_ERRORS = (exc.OperationalError, exc.InterfaceError)


def reason(error: exc.DBAPIError) -> str:
    """The driver's own words for `error`, on one line (they never hold the URL's password)."""
    text = str(error.orig).strip() if error.orig else str(error)
    return text.splitlines()[0] if text else type(error).__name__


def default_db_url(data_dir: Path) -> str:
    """The SQLite database in `data_dir` (created if missing)."""
    make_private_dir(data_dir)
    return f"sqlite:///{(data_dir / DB_FILE_NAME).absolute()}"


def create_engine_for(url: str) -> Engine:
    """An engine for `url`: `sqlite:///PATH` or `postgresql://...` (driven by psycopg 3)."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise UsageError(
            f"{url!r} is not a database URL: use sqlite:///PATH/usersync.db or "
            "postgresql://USER:PASSWORD@HOST:5432/DATABASE"
        ) from error
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
            # Each pooled connection would see a database of its own, gone when it closes.
            raise UsageError(
                f"{url!r} is an in-memory SQLite database: give a file, sqlite:///PATH"
            )
        return _sqlite_engine(parsed)
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg", "psycopg2"):
            raise UsageError(
                f"database driver {driver!r} is not supported: use postgresql://... "
                "(usersync talks to PostgreSQL through psycopg 3)"
            )
        return _postgres_engine(parsed.set(drivername="postgresql+psycopg"))
    raise UsageError(
        f"database {backend!r} is not supported: use sqlite:///PATH or postgresql://..."
    )


def _sqlite_engine(url: URL) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Autocommit at the driver level: the "begin" hook below emits BEGIN itself, so
        # that SELECTs and DDL run inside transactions too (the sqlite3 module skips them).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
            _use_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_BEGIN_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# libpq settings that a postgresql:// URL may set itself. The TCP ones make a server that
# vanished (host down, network cut: no answer, no reset) an error within about two minutes
# instead of a wait of hours: keepalive probes while waiting for an answer, and a limit on
# how long sent data may go unacknowledged.
_POSTGRES_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 10,
    "application_name": "usersync",
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 120_000,  # milliseconds
}


def _postgres_engine(url: URL) -> Engine:
    connect_args = {k: v for k, v in _POSTGRES_DEFAULTS.items() if k not in url.query}
    # pre_ping: a pooled connection that a server restart closed is replaced, not used.
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL once. Switching needs the file to itself and SQLite does not
    wait for that (no busy handler), so connections opening a new database together retry
    until the first one has switched it, within the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def write_transaction(conn: Connection) -> Iterator[RootTransaction]:
    """A transaction that will write: on SQLite, with the write lock taken at BEGIN.

    A deferred SQLite transaction that reads and then writes fails at once with "database
    is locked" when another connection committed in between; waiting for the lock up front
    (BEGIN IMMEDIATE, up to the busy timeout) avoids that. On PostgreSQL: a plain BEGIN.
    Commits on success, rolls back on an exception (or when the body rolled it back).
    """
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        conn.execution_options(**{_BEGIN_IMMEDIATE: True})
    try:
        with conn.begin() as transaction:
            yield transaction
    finally:
        if sqlite:
            conn.execution_options(**{_BEGIN_IMMEDIATE: False})


def describe(engine: Engine) -> str:
    """The engine's URL for messages: the password hidden."""
    return engine.url.render_as_string(hide_password=True)


def unavailable(engine: Engine, error: exc.DBAPIError) -> DatabaseUnavailable:
    """The error to raise when the database cannot be reached or opened."""
    if engine.dialect.name == "sqlite":
        hint = "Check that its folder exists and is writable, or pass another --db."
    else:
        hint = "Check the URL (--db or USERSYNC_DB) and that the server is running."
    return DatabaseUnavailable(
        f"cannot use the database {describe(engine)}: {reason(error)}. {hint}"
    )


def migrate(engine: Engine) -> None:
    """Bring the database schema up to date (Alembic `upgrade head`); a no-op when it is.

    Concurrent callers (a web server and workers starting together) migrate one at a time.
    A database already at `HEAD` costs one query: Alembic is imported only when it is not.
    """
    if _is_current(engine):
        return
    from alembic import command
    from alembic.util.exc import CommandError

    config = alembic_config()
    try:
        with (
            engine.connect() as conn,
            _foreign_keys_off_on_sqlite(conn),
            write_transaction(conn),
        ):
            if conn.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            if conn.dialect.name == "sqlite":
                _check_foreign_keys(conn)
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise unavailable(engine, error) from error
    except CommandError as error:
        raise UsageError(
            f"cannot migrate the database {describe(engine)}: {error}. Was it last used by "
            "a newer version of usersync?"
        ) from error


@contextmanager
def _foreign_keys_off_on_sqlite(conn: Connection) -> Iterator[None]:
    """SQLite's procedure for schema changes: a migration that rebuilds a table (copy, drop,
    rename) must not let the old table's drop delete the rows that refer to it (ON DELETE
    CASCADE). The pragma is a no-op inside a transaction, so it is set before BEGIN."""
    if conn.dialect.name != "sqlite":
        yield
        return
    driver = conn.connection.dbapi_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys = ON")


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
    if broken is not None:
        raise UsageError(
            f"cannot migrate the database {describe(conn.engine)}: the migration left a row "
            f"of {broken[0]} referring to a missing row of {broken[2]}; nothing was changed"
        )


def alembic_config() -> AlembicConfig:
    """Alembic's configuration for the migrations shipped in this package (no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "usersync:migrations")
    return config


def schema_version(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None: none recorded). Raises the driver's
    error when there is no schema yet, or no database."""
    with engine.connect() as conn:
        version = conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    return None if version is None else str(version)


def _is_current(engine: Engine) -> bool:
    try:
        return schema_version(engine) == HEAD
    except exc.DBAPIError:
        return False  # no schema yet, or no database: the migration says which
