"""Opening databases (usersync.db) and the schema's time type, on real SQLite files.

PostgreSQL itself is exercised in tests/integration/test_store.py; here only the URL
handling and an unreachable server, which need none.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet

from usersync import db, schema
from usersync.errors import UsageError
from usersync.migrations import HEAD
from usersync.schema import UTCDateTime, from_micros, to_micros, utcnow
from usersync.secretbox import SecretBox
from usersync.store import connections, syncs, tokens, workspaces
from usersync.store._sqlite_insert import _rows_per_statement, insert_rows
from usersync.store.connections import NewConnection


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


def _version(engine: sa.Engine) -> object:
    with engine.connect() as conn:
        return conn.scalar(sa.text("SELECT version_num FROM alembic_version"))


def test_the_migrations_ship_inside_the_package_and_head_names_the_newest() -> None:
    script = ScriptDirectory.from_config(db.alembic_config())
    assert Path(script.dir).parent.name == "usersync"
    assert script.get_heads() == [HEAD]


def test_a_database_at_an_older_revision_is_upgraded(sqlite_engine: sa.Engine) -> None:
    config = db.alembic_config()
    with sqlite_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003_more_kinds")
    assert _version(sqlite_engine) == "0003_more_kinds"
    db.migrate(sqlite_engine)
    assert _version(sqlite_engine) == HEAD
    with sqlite_engine.connect() as conn:
        columns = {column["name"] for column in sa.inspect(conn).get_columns("connections")}
    sqlite_engine.dispose()
    assert "options" in columns  # what the newest migration adds


def test_a_database_of_a_newer_usersync_is_refused(sqlite_engine: sa.Engine) -> None:
    db.migrate(sqlite_engine)
    with sqlite_engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    try:
        with pytest.raises(UsageError, match="newer version of usersync"):
            db.migrate(sqlite_engine)
    finally:
        sqlite_engine.dispose()


def test_a_current_database_is_opened_without_loading_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'usersync.db'}"
    program = (
        "import sys\n"
        "from usersync import db\n"
        "engine = db.create_engine_for(sys.argv[1])\n"
        "db.migrate(engine)\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'alembic'))\n"
    )

    def alembic_modules() -> str:
        run = subprocess.run(
            [sys.executable, "-c", program, url], capture_output=True, text=True, check=True
        )
        return run.stdout.strip()

    assert alembic_modules() != "[]"  # a new file: Alembic creates the schema
    assert alembic_modules() == "[]"  # then a query tells that it is current


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0
            for table in schema.metadata.sorted_tables
        }


def test_the_rebuild_that_stops_id_reuse_keeps_every_row_and_every_reference(
    sqlite_engine: sa.Engine,
) -> None:
    config = db.alembic_config()
    with sqlite_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0007_cancel_requested")
    box = SecretBox([Fernet(Fernet.generate_key())])
    ws = workspaces.get_or_create(sqlite_engine, "default")
    tokens.create_token(sqlite_engine, ws, name="ci")
    connection = connections.create(
        sqlite_engine,
        box,
        ws,
        NewConnection(name="files", host="127.0.0.1", port=22, username="u", password="p"),
    )
    values = {
        "connection_id": connection.id,
        "folder": "/in",
        "file": "userdata_a.csv",
        "mapping": {"user_id": "id", "properties": {}},
        "schedule": {"type": "daily", "time": "01:00"},
        "enabled": True,
    }
    with sqlite_engine.begin() as conn:  # as 0007's code made it: the columns it knew
        sync_id = conn.execute(
            sa.text(
                "INSERT INTO syncs (workspace_id, connection_id, folder, file, file_choice, "
                "mapping, conflict, empty_cells, schedule, timezone, enabled, import_unchanged, "
                "after_import, created_at, updated_at) VALUES (:ws, :connection, '/in', "
                "'userdata_a.csv', 'exact', '{\"user_id\": \"id\", \"properties\": {}}', "
                "'update', 'ignore', '{\"type\": \"daily\", \"time\": \"01:00\"}', 'UTC', 1, 0, "
                "'leave', :now, :now) RETURNING id"
            ),
            {"ws": ws, "connection": connection.id, "now": to_micros(utcnow())},
        ).scalar_one()
        run_id = conn.execute(
            sa.text(
                "INSERT INTO runs (workspace_id, sync_id, source, path, status, started_at, "
                "bytes_read, rows_read, users_created, users_updated, rows_rejected, dry_run, "
                "trigger, attempt) VALUES (:ws, :sync, 'sftp://u@h', '/in/a', 'running', :now, "
                "0, 0, 0, 0, 0, 0, 'cli', 1) RETURNING id"
            ),
            {"ws": ws, "sync": sync_id, "now": to_micros(utcnow())},
        ).scalar_one()
    with sqlite_engine.begin() as conn:
        conn.execute(sa.insert(schema.run_errors).values(run_id=run_id, seq=1, message="bad"))
        conn.execute(
            sa.insert(schema.fires).values(sync_id=sync_id, scheduled_for=datetime.now(UTC))
        )
    before = _counts(sqlite_engine)

    db.migrate(sqlite_engine)
    syncs.delete(sqlite_engine, ws, sync_id)
    again = syncs.create(sqlite_engine, box, ws, values)
    with sqlite_engine.connect() as conn:
        foreign_keys = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
    after = _counts(sqlite_engine)
    sqlite_engine.dispose()

    rebuilt_and_referring = ("workspaces", "tokens", "connections", "syncs", "runs", "fires")
    assert all(before[name] == 1 for name in (*rebuilt_and_referring, "run_errors"))
    # The deleted sync's fire went with it (and the new sync took its place in `syncs`);
    # its run and the run's errors stay.
    assert {**after, "fires": after["fires"] + 1} == before
    assert again.id == sync_id + 1
    assert foreign_keys == 1


@pytest.mark.parametrize("width", [1, 2, 6])
def test_insert_rows_writes_every_row_once_in_order(width: int) -> None:
    # Row counts around the statements' sizes (256 rows of 2 values, 128 of 6) and their halves.
    con = sqlite3.connect(":memory:")
    columns = ", ".join(f"c{i}" for i in range(width))
    con.execute(f"CREATE TABLE t (seq INTEGER PRIMARY KEY, {columns})")
    cursor = con.cursor()
    expected: list[tuple[object, ...]] = []
    for count in (0, 1, 2, 3, 127, 128, 129, 255, 256, 257, 511, 700):
        rows = [(len(expected) + k, *(f"v{k}" for _ in range(width - 1))) for k in range(count)]
        insert_rows(cursor, f"INSERT INTO t ({columns})", width, rows)
        expected += rows
    assert con.execute(f"SELECT {columns} FROM t ORDER BY seq").fetchall() == expected


def test_insert_rows_stays_within_the_oldest_sqlite_parameter_limit() -> None:
    for width in (1, 2, 6, 12, 999):
        size = _rows_per_statement(width)
        assert size * width <= 999
        assert size & (size - 1) == 0  # a power of two: a batch's rest goes by halves
