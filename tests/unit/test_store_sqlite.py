"""Opening databases (usersync.db) and the schema's time type, on real SQLite files.

PostgreSQL itself is exercised in tests/integration/test_store.py; here only the URL
handling and an unreachable server, which need none.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from usersync import db
from usersync.errors import UsageError
from usersync.schema import UTCDateTime, from_micros, to_micros


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://me:secret@db.example:5432/usersync",
        "postgres://me:secret@db.example:5432/usersync",
        "postgresql+psycopg2://me:secret@db.example:5432/usersync",
        "postgresql+psycopg://me:secret@db.example:5432/usersync",
    ],
)
def test_postgresql_urls_are_driven_by_psycopg_3(url: str) -> None:
    engine = db.create_engine_for(url)
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert (engine.url.host, engine.url.database) == ("db.example", "usersync")
        assert "secret" not in db.describe(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nonsense", "is not a database URL"),
        ("mysql://me@host/db", "'mysql' is not supported"),
        ("postgresql+asyncpg://me@host/db", "'asyncpg' is not supported"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_unusable_urls_are_usage_errors(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as raised:
        db.create_engine_for(url)
    assert raised.value.exit_code == 2


def test_default_db_url_is_a_file_in_the_data_dir_which_it_creates(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    url = db.default_db_url(data_dir)
    assert url == f"sqlite:///{data_dir / 'usersync.db'}"
    assert data_dir.is_dir()


def test_an_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    engine = db.create_engine_for(f"sqlite:///{tmp_path / 'missing-dir' / 'usersync.db'}")
    try:
        with pytest.raises(db.DatabaseUnavailable, match="folder exists") as raised:
            db.migrate(engine)
    finally:
        engine.dispose()
    assert raised.value.transient


def test_an_unreachable_postgresql_server_is_unavailable(closed_port: int) -> None:
    engine = db.create_engine_for(f"postgresql://me:secret@127.0.0.1:{closed_port}/usersync")
    try:
        with pytest.raises(db.DatabaseUnavailable, match="server is running") as raised:
            db.migrate(engine)
    finally:
        engine.dispose()
    assert "secret" not in str(raised.value)
    assert raised.value.transient


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> sa.Engine:
    return db.create_engine_for(f"sqlite:///{tmp_path / 'usersync.db'}")


def test_sqlite_connections_use_wal_and_the_chosen_settings(sqlite_engine: sa.Engine) -> None:
    with sqlite_engine.connect() as conn:

        def pragma(name: str) -> object:
            return conn.exec_driver_sql(f"PRAGMA {name}").scalar()

        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == db.SQLITE_BUSY_TIMEOUT_MS
        assert pragma("page_size") == 16384
    sqlite_engine.dispose()


def test_sqlite_ddl_is_transactional(sqlite_engine: sa.Engine) -> None:
    with sqlite_engine.connect() as conn:
        with conn.begin() as transaction:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            transaction.rollback()
        assert "t" not in sa.inspect(conn).get_table_names()
    sqlite_engine.dispose()


def test_write_transaction_holds_the_sqlite_write_lock_from_begin(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    db.migrate(sqlite_engine)
    other = sqlite3.connect(tmp_path / "usersync.db", timeout=0, isolation_level=None)
    try:
        with sqlite_engine.connect() as conn:
            with (
                db.write_transaction(conn),
                pytest.raises(sqlite3.OperationalError, match="locked"),
            ):
                other.execute("BEGIN IMMEDIATE")
            other.execute("BEGIN IMMEDIATE")  # released with the transaction
            other.execute("ROLLBACK")
            with conn.begin():  # and the connection's next transaction is a deferred one
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
    finally:
        other.close()
        sqlite_engine.dispose()


def test_utc_datetimes_round_trip_to_the_microsecond(sqlite_engine: sa.Engine) -> None:
    table = sa.Table("times", sa.MetaData(), sa.Column("at", UTCDateTime()))
    paris = timezone(timedelta(hours=1))
    values = [
        datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC),
        datetime(2026, 3, 29, 3, 30, 0, 999999, tzinfo=paris),
        datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
    ]
    with sqlite_engine.begin() as conn:
        table.create(conn)
        conn.execute(sa.insert(table), [{"at": value} for value in values])
        stored = conn.execute(sa.select(table.c.at)).scalars().all()
        raw = conn.exec_driver_sql("SELECT at FROM times").scalars().all()
    sqlite_engine.dispose()
    assert stored == values
    assert all(value.tzinfo is UTC for value in stored)
    assert raw == [to_micros(value) for value in values]
    assert from_micros(0) == datetime(1970, 1, 1, tzinfo=UTC)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_micros(datetime(2026, 1, 1))


def test_the_migrations_ship_inside_the_package() -> None:
    config = Config()
    config.set_main_option("script_location", "usersync:migrations")
    script = ScriptDirectory.from_config(config)
    assert Path(script.dir).parent.name == "usersync"
    assert script.get_heads() == ["0004_connection_options"]
