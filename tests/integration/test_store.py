"""The User 360 store, its migrations and repositories, against real SQLite and PostgreSQL.

Every test runs three times: on an SQLite file and on two fresh databases of the real
PostgreSQL server the `pg_url` fixture starts, one as PostgreSQL comes and one with
`track_counts` off, where the store merges with INSERT ... ON CONFLICT instead of MERGE.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from usersync import db, schema
from usersync.errors import UsageError
from usersync.schema import users as users_table
from usersync.store import (
    ApplyCounts,
    ConflictMode,
    StoreError,
    UserChange,
    UserRecord,
    UserStore,
    _sqlite_apply,
    properties,
    runs,
    workspaces,
)
from usersync.store import users as users_module
from usersync.store.model import Change, ChangeColumns
from usersync.store.properties import PropertyTypeConflict
from usersync.store.users import UserNotFound

pytestmark = pytest.mark.integration

UPDATE, REPLACE = ConflictMode.UPDATE, ConflictMode.REPLACE
Props = dict[str, Any]


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-upsert"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Overrides the shared fixture: a third kind, PostgreSQL without row counts."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'usersync.db'}"
    url: str = request.getfixturevalue("pg_url")
    if request.param == "postgresql-upsert":
        without_row_counts(url)
    return url


def without_row_counts(url: str) -> None:
    """Turn `track_counts` off for the database's new connections (the test role is a
    superuser): the store then has no counts to take from a MERGE."""
    engine = db.create_engine_for(url)
    try:
        with engine.begin() as conn:
            name = conn.scalar(sa.text("SELECT current_database()"))
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET track_counts = off')
    finally:
        engine.dispose()


@contextmanager
def migrated(url: str) -> Iterator[Engine]:
    engine = db.create_engine_for(url)
    try:
        db.migrate(engine)
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    with migrated(db_url) as engine:
        yield engine


@pytest.fixture
def ws(engine: Engine) -> int:
    return workspaces.get_or_create(engine, "default")


@pytest.fixture
def store(engine: Engine) -> UserStore:
    return UserStore(engine)


def change(user_id: str, **props: Any) -> UserChange:
    return UserChange(user_id, json.dumps(props))


def apply(
    store: UserStore, ws: int, mode: ConflictMode, *changes: UserChange, dry_run: bool = False
) -> ApplyCounts:
    return store.apply(ws, [list(changes)], mode, dry_run=dry_run)


def props_of(store: UserStore, ws: int, user_id: str) -> Props | None:
    record = store.get_user(ws, user_id)
    return None if record is None else record.properties


def everything(engine: Engine) -> list[tuple[Any, ...]]:
    """Every stored user row, as stored (to compare before/after)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(users_table).order_by(users_table.c.workspace_id, users_table.c.user_id)
        )
        return [tuple(row) for row in rows]


def all_users(store: UserStore, ws: int) -> dict[str, Props]:
    return {user_id: json.loads(text) for user_id, text in store.iter_properties_json(ws)}


# --- conflict modes ------------------------------------------------------------------------


def test_update_mode_overwrites_given_values_and_keeps_the_others(
    store: UserStore, ws: int
) -> None:
    apply(store, ws, UPDATE, change("u1", name="Ann", city="Paris", age=30))
    counts = apply(store, ws, UPDATE, change("u1", city="Lyon", plan="pro"))
    assert counts == ApplyCounts(created=0, updated=1)
    assert props_of(store, ws, "u1") == {"name": "Ann", "city": "Lyon", "age": 30, "plan": "pro"}


def test_update_mode_null_clears_the_property(store: UserStore, ws: int) -> None:
    apply(store, ws, UPDATE, change("u1", name="Ann", city="Paris", age=30))
    apply(store, ws, UPDATE, change("u1", city=None, age=31))
    assert props_of(store, ws, "u1") == {"name": "Ann", "age": 31}


def test_update_mode_creates_a_new_user_from_the_non_null_values(store: UserStore, ws: int) -> None:
    counts = apply(store, ws, UPDATE, change("new", name="Bo", city=None), change("empty"))
    assert counts == ApplyCounts(created=2, updated=0)
    assert props_of(store, ws, "new") == {"name": "Bo"}
    assert props_of(store, ws, "empty") == {}


def test_update_mode_with_nulls_leaves_no_null_in_new_or_existing_users(
    store: UserStore, ws: int
) -> None:
    apply(store, ws, UPDATE, change("old", a=1, b=2))
    apply(store, ws, UPDATE, change("old", b=None, c=None), change("new", b=None, c=3))
    assert props_of(store, ws, "old") == {"a": 1}
    assert props_of(store, ws, "new") == {"c": 3}


def test_update_mode_a_change_giving_every_property_keeps_the_others_of_each_user(
    store: UserStore, ws: int
) -> None:
    """A change that names every property of the file's first changes may replace the stored
    record outright (a shortcut of the back ends), but only for a user with no other one."""
    apply(store, ws, UPDATE, change("plain", a=1, b=2), change("more", a=1, b=2, extra=9))
    counts = apply(store, ws, UPDATE, change("plain", a=3, b=None), change("more", a=3, b=None))
    assert counts == ApplyCounts(created=0, updated=2)
    assert all_users(store, ws) == {"plain": {"a": 3}, "more": {"a": 3, "extra": 9}}
    apply(store, ws, UPDATE, change("plain", a=4, b=5), change("more", a=4, b=5))
    assert all_users(store, ws) == {"plain": {"a": 4, "b": 5}, "more": {"a": 4, "b": 5, "extra": 9}}


def test_update_mode_with_many_properties_keeps_the_others_of_each_user(
    store: UserStore, ws: int
) -> None:
    wide = {f"p{i:03d}": i for i in range(300)}  # past the back ends' shortcut
    apply(store, ws, UPDATE, change("plain", **wide), change("more", **wide, extra=9))
    given = {**dict.fromkeys(wide, -1), "p000": None}
    counts = apply(store, ws, UPDATE, change("plain", **given), change("more", **given))
    assert counts == ApplyCounts(created=0, updated=2)
    expected = {name: -1 for name in wide if name != "p000"}
    assert all_users(store, ws) == {"plain": expected, "more": {**expected, "extra": 9}}


def test_replace_mode_makes_the_record_exactly_the_given_values(store: UserStore, ws: int) -> None:
    apply(store, ws, UPDATE, change("u1", name="Ann", city="Paris", age=30))
    counts = apply(store, ws, REPLACE, change("u1", name="Ann B", city=None))
    assert counts == ApplyCounts(created=0, updated=1)
    assert props_of(store, ws, "u1") == {"name": "Ann B"}  # unmapped and empty: gone


def test_replace_mode_creates_new_users_without_nulls(store: UserStore, ws: int) -> None:
    counts = apply(store, ws, REPLACE, change("u1", a=None, b="x"), change("u2"))
    assert counts == ApplyCounts(created=2, updated=0)
    assert props_of(store, ws, "u1") == {"b": "x"}
    assert props_of(store, ws, "u2") == {}


def test_counts_distinct_user_ids_created_and_updated(store: UserStore, ws: int) -> None:
    apply(store, ws, UPDATE, change("a", n=1), change("b", n=1))
    counts = apply(
        store,
        ws,
        UPDATE,
        *(change("a", n=i) for i in range(3)),  # existing, 3 times: updated once
        *(change("c", n=i) for i in range(3)),  # new, 3 times: created once
        change("d", n=1),
    )
    assert counts == ApplyCounts(created=2, updated=1)


def test_skipping_unchanged_users_writes_and_counts_only_the_changed_ones(
    store: UserStore, ws: int
) -> None:
    apply(store, ws, UPDATE, change("same", a=1, b="x"), change("diff", a=1), change("dup", a=1))
    before = {u: store.require_user(ws, u) for u in ("same", "diff", "dup")}

    counts = store.apply(
        ws,
        [
            [
                change("same", b="x"),  # what it has already
                change("diff", a=2),
                change("dup", a=1),  # unchanged, then changed by its second row
                change("dup", a=3),
                change("new", a=1),
                change("new", a=1),  # a new user's second row changes nothing
                change("same", c=None),  # clears what it has not
            ]
        ],
        UPDATE,
        skip_unchanged=True,
    )

    assert counts == ApplyCounts(created=1, updated=2, unchanged=1)
    assert store.require_user(ws, "same") == before["same"]  # updated_at too
    assert store.require_user(ws, "diff").updated_at > before["diff"].updated_at
    assert props_of(store, ws, "dup") == {"a": 3}
    assert props_of(store, ws, "new") == {"a": 1}


def test_skipping_unchanged_users_in_replace_mode(store: UserStore, ws: int) -> None:
    apply(store, ws, REPLACE, change("same", a=1, b=None), change("diff", a=1, b=2))
    same = store.require_user(ws, "same")

    counts = store.apply(
        ws,
        [[change("same", a=1), change("diff", a=1), change("gone", z=None)]],
        REPLACE,
        skip_unchanged=True,
    )
    again = store.apply(ws, [[change("same", a=1)]], REPLACE)  # without skipping: updated

    assert counts == ApplyCounts(created=1, updated=1, unchanged=1)
    assert store.require_user(ws, "same").updated_at > same.updated_at  # by `again`
    assert again == ApplyCounts(created=0, updated=1)
    assert props_of(store, ws, "diff") == {"a": 1}


def test_an_unchanged_users_stored_text_may_be_formatted_otherwise(
    store: UserStore, ws: int, engine: Engine
) -> None:
    store.apply(ws, [[UserChange("u1", '{ "a" : 1,\n "b": "x" }')]], UPDATE)

    counts = store.apply(ws, [[UserChange("u1", '{"b":"x"}')]], UPDATE, skip_unchanged=True)

    assert counts == ApplyCounts(created=0, updated=0, unchanged=1)


def test_values_keep_their_json_types(store: UserStore, ws: int) -> None:
    values = {"s": "text", "i": 42, "f": 2.5, "t": True, "no": False, "d": "2026-11-25"}
    apply(store, ws, UPDATE, change("u1", **values))
    stored = props_of(store, ws, "u1")
    assert stored == values
    assert stored is not None
    assert type(stored["t"]) is bool
    assert type(stored["i"]) is int


def test_a_deleted_user_is_gone_and_an_import_makes_it_anew(
    store: UserStore, engine: Engine, ws: int
) -> None:
    other = workspaces.create(engine, "other")
    apply(store, ws, ConflictMode.UPDATE, change("u1", a=1), change("u2", b=2))
    apply(store, other, ConflictMode.UPDATE, change("u1", a=9))

    store.delete_user(ws, "u1")
    with pytest.raises(UserNotFound, match="there is no user 'u1'"):
        store.delete_user(ws, "u1")
    counts = apply(store, ws, ConflictMode.UPDATE, change("u1", c=3))

    assert all_users(store, ws) == {"u1": {"c": 3}, "u2": {"b": 2}}
    assert (counts.created, counts.updated) == (1, 0)
    assert props_of(store, other, "u1") == {"a": 9}


def test_awkward_user_ids_and_values_survive_the_bulk_path(store: UserStore, ws: int) -> None:
    # COPY's text format escapes tabs, newlines and backslashes: the round trip must be exact.
    ids = ["tab\there", "new\nline", "back\\slash", 'quote"d', "ünïcödé", "emoji 🎉", " sp "]
    value = 'a\tb\nc\\d"e\u00e9\u2028'
    counts = store.apply(ws, [[change(uid, v=value, k=uid) for uid in ids]], UPDATE)
    assert counts == ApplyCounts(created=len(ids), updated=0)
    for uid in ids:
        assert props_of(store, ws, uid) == {"v": value, "k": uid}


def columns(*changes: UserChange) -> ChangeColumns:
    """Changes as the column-wise reader hands them over: two Arrow string arrays."""
    return ChangeColumns(
        pa.array([c.user_id for c in changes], pa.string()),
        pa.array([c.properties_json for c in changes], pa.string()),
    )


def test_column_batches_apply_as_their_changes_would(store: UserStore, ws: int) -> None:
    # PostgreSQL writes them as one block of COPY text each: the escapes, the order of the
    # changes across batches and the nulls of a patch must come out as change by change.
    ids = ["tab\there", "new\nline", "cr\rhere", "back\\slash", "\\.", "ünï 🎉", " sp "]
    value = 'a\tb\nc\\d"e\u00e9\u2028\\.'
    batches: list[Sequence[Change]] = [
        columns(*[change(uid, v=value, k=uid) for uid in ids]),
        [change("dup", n=1, a="x")],
        columns(change("dup", n=2), change("new", a=None, b=1), change("dup", a=None)),
    ]
    counts = store.apply(ws, batches, UPDATE)
    assert counts == ApplyCounts(created=len(ids) + 2, updated=0)
    for uid in ids:
        assert props_of(store, ws, uid) == {"v": value, "k": uid}
    assert props_of(store, ws, "dup") == {"n": 2}
    assert props_of(store, ws, "new") == {"b": 1}

    counts = store.apply(ws, [columns(change("dup", n=3), change(ids[0], k="again"))], REPLACE)
    assert counts == ApplyCounts(created=0, updated=2)
    assert props_of(store, ws, ids[0]) == {"k": "again"}
    assert props_of(store, ws, "dup") == {"n": 3}


def test_plain_tuples_are_changes_too(store: UserStore, ws: int) -> None:
    counts = store.apply(ws, [[("u1", '{"a": 1}'), UserChange("u2", '{"b": null}')]], UPDATE)
    assert counts == ApplyCounts(created=2, updated=0)
    assert props_of(store, ws, "u1") == {"a": 1}
    assert props_of(store, ws, "u2") == {}


# --- several changes for one user id -------------------------------------------------------


def test_update_mode_applies_duplicates_in_order(store: UserStore, ws: int) -> None:
    apply(store, ws, UPDATE, change("old", a=1, b=2, c=3))
    counts = store.apply(
        ws,
        [
            [change("old", a=10, b=None), change("new", x=1, y=None)],
            [change("old", b=20, d=4), change("new", x=None, z=3)],
            [change("old", c=None), change("new", y=2)],
        ],
        UPDATE,
    )
    assert counts == ApplyCounts(created=1, updated=1)
    assert props_of(store, ws, "old") == {"a": 10, "b": 20, "d": 4}  # later values win
    assert props_of(store, ws, "new") == {"z": 3, "y": 2}  # a later null still clears


def test_update_mode_folds_many_duplicates_in_file_order(store: UserStore, ws: int) -> None:
    # Enough rows for the database to sort on disk and fold group by group: each user's
    # three patches, spread over the whole run, must still apply in file order.
    ids = [f"u{n}" for n in random.Random(7).sample(range(10**6), 3_000)]
    apply(store, ws, UPDATE, *(change(i, a=0, keep=1) for i in ids[::2]))
    rounds = [[change(i, a=step, **{f"s{step}": step}) for i in ids] for step in (1, 2, 3)]
    counts = store.apply(ws, rounds, UPDATE)
    assert counts == ApplyCounts(created=1_500, updated=1_500)
    for i in ids[::2]:
        assert props_of(store, ws, i) == {"a": 3, "keep": 1, "s1": 1, "s2": 2, "s3": 3}
    assert props_of(store, ws, ids[1]) == {"a": 3, "s1": 1, "s2": 2, "s3": 3}


def test_replace_mode_keeps_the_last_of_duplicates(store: UserStore, ws: int) -> None:
    apply(store, ws, UPDATE, change("old", a=1))
    counts = store.apply(
        ws,
        [[change("old", b=2), change("new", x=1)], [change("new", y=None, z=2), change("old")]],
        REPLACE,
    )
    assert counts == ApplyCounts(created=1, updated=1)
    assert props_of(store, ws, "old") == {}
    assert props_of(store, ws, "new") == {"z": 2}


def test_batches_of_any_size_apply_every_change_once_in_order(store: UserStore, ws: int) -> None:
    # SQLite stages many changes per statement: sizes around its chunks, none lost or reordered.
    sizes = [1, 255, 256, 257, 511, 769]
    batches, n = [], 0
    for size in sizes:
        batches.append(
            [change(f"u{(n + k) % 97}", last=n + k, **{f"b{n + k}": 1}) for k in range(size)]
        )
        n += size
    counts = store.apply(ws, batches, UPDATE)
    assert counts == ApplyCounts(created=97, updated=0)
    users = all_users(store, ws)
    assert len(users) == 97
    for user in range(97):
        given = range(user, n, 97)
        assert users[f"u{user}"] == {"last": given[-1], **{f"b{k}": 1 for k in given}}


def test_duplicates_in_a_first_import_into_an_empty_workspace(store: UserStore, ws: int) -> None:
    counts = apply(store, ws, UPDATE, change("a", x=1), change("b", x=1), change("a", y=2))
    assert counts == ApplyCounts(created=2, updated=0)
    assert props_of(store, ws, "a") == {"x": 1, "y": 2}


# --- timestamps ----------------------------------------------------------------------------


def test_created_at_is_kept_and_updated_at_moves_on_update(store: UserStore, ws: int) -> None:
    before = datetime.now(UTC)
    apply(store, ws, UPDATE, change("u1", a=1), change("u2", a=1))
    first = store.get_user(ws, "u1")
    assert first is not None
    assert first.created_at == first.updated_at
    assert first.created_at.tzinfo is UTC
    assert before - timedelta(seconds=1) <= first.created_at <= datetime.now(UTC)
    apply(store, ws, REPLACE, change("u1", a=2))
    second = store.get_user(ws, "u1")
    untouched = store.get_user(ws, "u2")
    assert second is not None
    assert untouched is not None
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert untouched.updated_at == first.updated_at


# --- all or nothing ------------------------------------------------------------------------


def test_dry_run_counts_but_writes_nothing(engine: Engine, store: UserStore, ws: int) -> None:
    apply(store, ws, UPDATE, change("old", a=1))
    before = everything(engine)
    counts = apply(store, ws, REPLACE, change("old", b=1), change("new", b=2), dry_run=True)
    assert counts == ApplyCounts(created=1, updated=1)
    assert everything(engine) == before


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("error", [Interrupted, KeyboardInterrupt])
def test_an_error_raised_by_the_batches_leaves_the_users_unchanged(
    engine: Engine, store: UserStore, ws: int, error: type[BaseException]
) -> None:
    apply(store, ws, UPDATE, *(change(f"u{i}", n=i) for i in range(100)))
    before = everything(engine)

    def batches() -> Iterator[list[UserChange]]:
        yield [change(f"u{i}", n=-1, extra="x") for i in range(50)]  # existing users
        yield [change(f"new{i}", n=i) for i in range(50)]  # new users
        raise error("the connection to the SFTP server was lost")

    with pytest.raises(error):
        store.apply(ws, batches(), UPDATE)
    assert everything(engine) == before
    # ... and the store works on: nothing is left half-done on a pooled connection.
    assert store.apply(ws, [[change("u1", n=1), change("later", n=1)]], UPDATE) == ApplyCounts(
        created=1, updated=1
    )


def test_a_store_error_mid_merge_leaves_the_users_unchanged(
    engine: Engine, store: UserStore, ws: int
) -> None:
    apply(store, ws, UPDATE, change("old", a=1))
    before = everything(engine)
    with pytest.raises(StoreError, match="nothing was applied") as raised:
        # Not JSON: the mapper never writes this; the database refuses it (PostgreSQL while
        # staging it, SQLite while merging it into the existing user).
        store.apply(ws, [[change("new", a=1), UserChange("old", "{not json")]], UPDATE)
    assert raised.value.exit_code == 5
    assert not raised.value.transient
    assert everything(engine) == before


def test_ctrl_c_during_an_sqlite_merge_is_an_interrupt_not_a_database_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with migrated(f"sqlite:///{tmp_path / 'usersync.db'}") as engine:
        ws, store = workspaces.get_or_create(engine, "default"), UserStore(engine)
        apply(store, ws, UPDATE, *(change(f"u{i}", n=i) for i in range(100)))
        before = everything(engine)
        touched = _sqlite_apply._Tally.touched
        calls = []

        def signalled(tally: Any, stored: int, new: int) -> int:
            calls.append(stored)
            if len(calls) == 50:  # the signal arrives while the merge runs Python code
                signal.raise_signal(signal.SIGINT)
            return touched(tally, stored, new)

        monkeypatch.setattr(_sqlite_apply._Tally, "touched", signalled)
        with pytest.raises(KeyboardInterrupt):
            apply(store, ws, UPDATE, *(change(f"u{i}", n=-i) for i in range(100)))
        assert len(calls) == 50
        assert everything(engine) == before


def test_a_full_sqlite_database_fails_the_apply_saying_to_free_space(tmp_path: Path) -> None:
    with migrated(f"sqlite:///{tmp_path / 'usersync.db'}") as engine:
        ws, store = workspaces.get_or_create(engine, "default"), UserStore(engine)
        apply(store, ws, UPDATE, change("old", a=1))
        before = everything(engine)
        with engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        # What a full disk does, as SQLite's own limit: its next page cannot be written.
        sa.event.listen(
            engine,
            "connect",
            lambda dbapi, _: dbapi.execute(f"PRAGMA max_page_count = {pages + 2}"),
        )
        engine.dispose()  # connections from now on have the limit
        changes = [change(f"new{i}", notes="x" * 200) for i in range(2000)]
        with pytest.raises(StoreError) as raised:
            store.apply(ws, [changes], UPDATE)
    assert str(raised.value) == (
        "the database failed while applying the changes (database or disk is full); "
        "nothing was applied; free disk space for it and its temporary files"
    )
    with migrated(f"sqlite:///{tmp_path / 'usersync.db'}") as engine:
        assert everything(engine) == before


@pytest.mark.parametrize("row_counts", [True, False])
def test_postgresql_merges_with_merge_unless_it_cannot_count_the_rows(
    pg_url: str, row_counts: bool
) -> None:
    if not row_counts:
        without_row_counts(pg_url)
    statements: list[str] = []
    with migrated(pg_url) as engine:
        ws, store = workspaces.get_or_create(engine, "default"), UserStore(engine)
        apply(store, ws, UPDATE, change("old", a=1))
        sa.event.listen(
            engine, "before_cursor_execute", lambda _c, _k, sql, *_: statements.append(sql)
        )
        counts = apply(store, ws, UPDATE, change("old", b=2), change("new", a=None, b=3))
    assert counts == ApplyCounts(created=1, updated=1)
    merges = [sql for sql in statements if sql.startswith("MERGE INTO users")]
    upserts = [sql for sql in statements if "ON CONFLICT" in sql]
    assert (len(merges), len(upserts)) == ((1, 0) if row_counts else (0, 1))


def test_postgresql_connections_give_up_on_a_vanished_server_unless_the_url_says_otherwise(
    pg_url: str,
) -> None:
    def settings(url: str) -> dict[str, str]:
        engine = db.create_engine_for(url)
        try:
            with engine.connect() as conn:
                info = conn.connection.dbapi_connection.info  # type: ignore[union-attr]
                return {k: v for k, v in info.get_parameters().items() if k.startswith(("k", "t"))}
        finally:
            engine.dispose()

    assert settings(pg_url) == {
        "keepalives": "1",
        "keepalives_idle": "30",
        "keepalives_interval": "10",
        "keepalives_count": "3",
        "tcp_user_timeout": "120000",
    }
    given = settings(pg_url + "?keepalives_idle=5&tcp_user_timeout=0")
    assert (given["keepalives_idle"], given.get("tcp_user_timeout", "0")) == ("5", "0")


def test_a_postgresql_connection_ended_while_staging_is_a_transient_failure(
    pg_url: str,
) -> None:
    with migrated(pg_url) as engine:
        ws, store = workspaces.get_or_create(engine, "default"), UserStore(engine)
        apply(store, ws, UPDATE, change("old", a=1))
        before = everything(engine)

        def batches() -> Iterator[list[UserChange]]:
            yield [change(f"new{i}", a=i) for i in range(100)]
            with engine.connect() as other:  # what an operator's pg_terminate_backend does
                ended = other.scalar(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE query LIKE 'COPY usersync_staging%' AND pid <> pg_backend_pid()"
                    )
                )
            assert ended == 1
            for _ in range(50):  # until the client notices
                yield [change(f"late{i}", a=i) for i in range(1000)]

        with pytest.raises(StoreError, match="nothing was applied") as raised:
            store.apply(ws, batches(), UPDATE)
        assert raised.value.transient  # a worker retries it
        assert everything(engine) == before


def test_a_change_refused_while_staging_fails_the_apply_and_stops_the_reading(
    engine: Engine, store: UserStore, ws: int
) -> None:
    apply(store, ws, UPDATE, change("old", a=1))
    before = everything(engine)
    read: list[int] = []

    def batches() -> Iterator[list[tuple[str | None, str]]]:
        for i in range(200):
            read.append(i)
            yield [(None, "{}")] if i == 1 else [(f"new{i}", "{}")]  # no user id: refused

    with pytest.raises(StoreError, match="nothing was applied"):
        store.apply(ws, batches(), UPDATE)  # type: ignore[arg-type]
    assert everything(engine) == before
    if engine.dialect.name == "sqlite":  # PostgreSQL reports it when the COPY ends
        assert len(read) < 10


def test_nothing_to_apply(store: UserStore, ws: int) -> None:
    assert store.apply(ws, [], UPDATE) == ApplyCounts(created=0, updated=0)
    assert store.apply(ws, [[], []], REPLACE) == ApplyCounts(created=0, updated=0)


def test_applying_to_a_workspace_that_does_not_exist_is_refused(store: UserStore) -> None:
    batches_read: list[int] = []

    def batches() -> Iterator[list[UserChange]]:
        batches_read.append(1)
        yield [change("u1")]

    with pytest.raises(UsageError, match="no workspace 999"):
        store.apply(999, batches(), UPDATE)
    assert batches_read == []  # refused before reading the file


def test_workspaces_are_separate(engine: Engine, store: UserStore, ws: int) -> None:
    other = workspaces.get_or_create(engine, "other")
    apply(store, ws, UPDATE, change("u1", a=1))
    counts = apply(store, other, UPDATE, change("u1", b=2))
    assert counts == ApplyCounts(created=1, updated=0)
    assert props_of(store, ws, "u1") == {"a": 1}
    assert props_of(store, other, "u1") == {"b": 2}
    assert store.list_users(other) == [store.get_user(other, "u1")]


# --- the same results as a model, on random input ------------------------------------------


def model_apply(
    state: dict[str, Props], changes: Sequence[tuple[str, Props]], mode: ConflictMode
) -> ApplyCounts:
    before, touched = set(state), set()
    for user_id, patch in changes:
        if mode is UPDATE:
            record = dict(state.get(user_id, {}))
            for key, value in patch.items():
                if value is None:
                    record.pop(key, None)
                else:
                    record[key] = value
        else:
            record = {key: value for key, value in patch.items() if value is not None}
        state[user_id] = record
        touched.add(user_id)
    return ApplyCounts(created=len(touched - before), updated=len(touched & before))


def random_changes(rnd: random.Random, count: int) -> list[tuple[str, Props]]:
    values: list[Any] = [None, None, 0, 7, -3, 1.5, True, False, "", "x", "héllo", 'q"\\t']
    keys = [f"p{i}" for i in range(8)]
    return [
        (
            f"user-{rnd.randrange(300):03d}",
            # Up to every key: a change giving them all takes the stores' shortcut (below).
            {key: rnd.choice(values) for key in rnd.sample(keys, rnd.randrange(len(keys) + 1))},
        )
        for _ in range(count)
    ]


def test_random_applies_match_the_model(store: UserStore, ws: int) -> None:
    rnd = random.Random(20261125)
    model: dict[str, Props] = {}
    for round_ in range(12):
        mode = rnd.choice([UPDATE, REPLACE])
        changes = random_changes(rnd, rnd.randrange(1, 400))
        batches = [
            [UserChange(uid, json.dumps(patch)) for uid, patch in changes[start : start + 37]]
            for start in range(0, len(changes), 37)
        ]
        dry_run = round_ % 5 == 4
        expected = model_apply(dict(model) if dry_run else model, changes, mode)
        assert store.apply(ws, batches, mode, dry_run=dry_run) == expected, f"round {round_}"
        assert all_users(store, ws) == model, f"round {round_}"


# --- reading -------------------------------------------------------------------------------


def test_get_user_of_an_unknown_id_is_none(store: UserStore, ws: int) -> None:
    assert store.get_user(ws, "nobody") is None


def test_list_users_pages_in_user_id_order(store: UserStore, ws: int) -> None:
    ids = [f"user-{i:02d}" for i in range(25)]
    store.apply(ws, [[change(uid, n=i) for i, uid in enumerate(reversed(ids))]], UPDATE)
    first = store.list_users(ws, limit=10)
    second = store.list_users(ws, limit=10, after=first[-1].user_id)
    last = store.list_users(ws, limit=10, after=second[-1].user_id)
    assert [r.user_id for r in first + second + last] == ids
    assert len(last) == 5
    assert store.list_users(ws, limit=10, after=ids[-1]) == []
    assert all(isinstance(record, UserRecord) for record in first)


@pytest.mark.parametrize("count", [12, 10])  # the last page part full, or full
def test_every_user_of_the_workspace_is_read_a_page_at_a_time(
    store: UserStore, ws: int, engine: Engine, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.setattr(users_module, "_EXPORT_PAGE", 5)
    other = workspaces.get_or_create(engine, "other")
    ids = [f"user-{i:02d}" for i in range(count)]
    store.apply(ws, [[change(uid, n=i) for i, uid in enumerate(reversed(ids))]], UPDATE)
    store.apply(other, [[change("user-00a", n=1)]], UPDATE)

    users = list(store.iter_users_json(ws))
    properties = list(store.iter_properties_json(ws))

    records = [store.require_user(ws, user_id) for user_id in ids]
    assert users == [
        (r.user_id, users[i].properties_json, r.created_at, r.updated_at)
        for i, r in enumerate(records)
    ]
    assert [(u, json.loads(text)) for u, text in properties] == [
        (r.user_id, r.properties) for r in records
    ]
    assert json.loads(users[0].properties_json) == {"n": count - 1}


def test_list_users_search_matches_part_of_the_user_id_ignoring_case(
    store: UserStore, ws: int
) -> None:
    ids = ["Alice-1", "alice-2", "bob", "50%off", "under_score", "ALICEANDBOB"]
    store.apply(ws, [[change(uid) for uid in ids]], UPDATE)

    def search(text: str, **kwargs: Any) -> list[str]:
        return [record.user_id for record in store.list_users(ws, search=text, **kwargs)]

    assert search("alice") == ["ALICEANDBOB", "Alice-1", "alice-2"]
    assert search("alice", limit=1, after="Alice-1") == ["alice-2"]
    assert search("%") == ["50%off"]  # wildcards are plain characters
    assert search("_") == ["under_score"]
    assert search("nobody") == []


def test_list_users_refuses_a_bad_limit(store: UserStore, ws: int) -> None:
    with pytest.raises(UsageError):
        store.list_users(ws, limit=0)


# --- migrations ----------------------------------------------------------------------------


def test_migrations_run_twice_and_reach_the_head(engine: Engine) -> None:
    db.migrate(engine)  # the fixture ran it once already
    db.migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            ("0009_unchanged_users",)
        ]
    tables = set(sa.inspect(engine).get_table_names())
    assert {"workspaces", "properties", "users", "runs", "run_errors", "syncs", "fires"} <= tables


def test_the_migrations_build_exactly_the_declared_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert differences == []


def test_concurrent_migrations_of_a_new_database_both_succeed(db_url: str) -> None:
    engines = [db.create_engine_for(db_url) for _ in range(3)]
    errors: list[BaseException] = []

    def migrate(engine: Engine) -> None:
        try:
            db.migrate(engine)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=migrate, args=(engine,)) for engine in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert not any(thread.is_alive() for thread in threads)
        assert "users" in sa.inspect(engines[0]).get_table_names()
    finally:
        for engine in engines:
            engine.dispose()


# --- workspaces and the property catalog ---------------------------------------------------


def test_workspace_get_or_create_returns_one_id_per_name(engine: Engine) -> None:
    first = workspaces.get_or_create(engine, "acme")
    assert workspaces.get_or_create(engine, "acme") == first
    assert workspaces.get_id(engine, "acme") == first
    assert workspaces.get_id(engine, "nope") is None
    other = workspaces.create(engine, "globex")
    assert other != first
    with pytest.raises(workspaces.WorkspaceExists):
        workspaces.create(engine, "acme")
    assert workspaces.names(engine) == {"acme": first, "globex": other}


def test_properties_ensure_adds_new_names_and_keeps_existing(engine: Engine, ws: int) -> None:
    assert properties.ensure(engine, ws, {"age": "integer", "email": "string"}) == [
        "age",
        "email",
    ]
    assert properties.ensure(engine, ws, {"age": "integer", "vip": "boolean"}) == ["vip"]
    assert properties.types(engine, ws) == {"age": "integer", "email": "string", "vip": "boolean"}


def test_properties_ensure_refuses_a_type_clash_and_adds_nothing(engine: Engine, ws: int) -> None:
    properties.ensure(engine, ws, {"age": "integer"})
    with pytest.raises(PropertyTypeConflict) as raised:
        properties.ensure(engine, ws, {"age": "string", "city": "string"})
    assert raised.value.conflicts == {"age": ("integer", "string")}
    assert "'age' is a integer, not a string" in str(raised.value)
    assert properties.types(engine, ws) == {"age": "integer"}


def test_properties_ensure_refuses_an_unknown_type(engine: Engine, ws: int) -> None:
    with pytest.raises(UsageError, match="unknown property type"):
        properties.ensure(engine, ws, {"age": "float"})


# --- runs ----------------------------------------------------------------------------------


def test_a_run_and_its_errors_round_trip(engine: Engine, ws: int) -> None:
    modified = datetime(2026, 11, 25, 9, 30, 0, 123456, tzinfo=UTC)
    run_id = runs.create_run(
        engine,
        ws,
        source="sftp://me@host:22",
        path="/in/userdata_a.csv",
        file_size=1234,
        file_modified=modified,
    )
    started = runs.get_run(engine, run_id)
    assert started is not None
    assert (started.status, started.finished_at, started.dry_run) == ("running", None, False)
    errors: list[tuple[int, str | None, str | None, str]] = [
        (i + 2, "age", f"x{i}", "not a whole number") for i in range(2500)
    ]
    errors.append((9999, None, None, "3 fields, the header has 4"))
    errors.append((10001, "notes", 'tab\there\nline \\N "q" \\x00 é', "kept as it is"))
    assert runs.add_run_errors(engine, run_id, errors) == len(errors)
    assert runs.add_run_errors(engine, run_id, [runs.RunError(10000, "c", "v", "m")]) == 1
    runs.finish_run(
        engine,
        run_id,
        status="partial",
        bytes_read=1234,
        rows_read=3000,
        users_created=400,
        users_updated=99,
        rows_rejected=2502,
        message="2,502 rows rejected",
    )
    run = runs.get_run(engine, run_id)
    assert run is not None
    assert run.status == "partial"
    assert (run.bytes_read, run.rows_read, run.users_created, run.users_updated) == (
        1234,
        3000,
        400,
        99,
    )
    assert (run.rows_rejected, run.message, run.file_size) == (2502, "2,502 rows rejected", 1234)
    assert run.file_modified == modified
    assert run.finished_at is not None
    assert run.finished_at >= run.started_at
    stored = list(runs.iter_run_errors(engine, run_id))
    assert stored == [runs.RunError(*error) for error in errors] + [
        runs.RunError(10000, "c", "v", "m")
    ]


def test_runs_list_newest_first_and_refuse_unknown_ids(engine: Engine, ws: int) -> None:
    ids = [
        runs.create_run(
            engine, ws, source="cli", path=f"/f{i}", sync_id=7 if i % 2 else None, status="queued"
        )
        for i in range(5)
    ]
    assert [run.id for run in runs.list_runs(engine, ws)] == ids[::-1]
    assert [run.id for run in runs.list_runs(engine, ws, limit=2, before=ids[3])] == [
        ids[2],
        ids[1],
    ]
    assert [run.id for run in runs.list_runs(engine, ws, sync_id=7)] == [ids[3], ids[1]]
    assert runs.get_run(engine, 424242) is None
    with pytest.raises(runs.RunNotFound):
        runs.finish_run(engine, 424242, status="failed")
    with pytest.raises(ValueError, match="status"):
        runs.create_run(engine, ws, source="cli", path="/f", status="exploded")
    assert list(runs.iter_run_errors(engine, 424242)) == []


def _finished_run(engine: Engine, ws: int, sync_id: int | None, rejected: int) -> int:
    run_id = runs.create_run(engine, ws, source="cli", path="/in/userdata_a.csv", sync_id=sync_id)
    runs.add_run_errors(
        engine, run_id, [(i + 2, "age", "x", "not a number") for i in range(rejected)]
    )
    runs.finish_run(engine, run_id, status="partial", rows_rejected=rejected)
    return run_id


def test_only_the_newest_runs_that_rejected_rows_keep_them(engine: Engine, ws: int) -> None:
    other_ws = workspaces.get_or_create(engine, "elsewhere")
    ours = [_finished_run(engine, ws, 7, rejected) for rejected in (3, 1, 0, 2, 4)]
    cli = [_finished_run(engine, ws, None, 1) for _ in range(2)]
    other_sync = _finished_run(engine, ws, 8, 5)
    theirs = _finished_run(engine, other_ws, None, 2)
    running = runs.create_run(engine, ws, source="cli", path="/in/userdata_a.csv", sync_id=7)
    runs.add_run_errors(engine, running, [(2, None, None, "so far")])
    newest = runs.get_run(engine, ours[-1])
    assert newest is not None

    # Of sync 7's runs that rejected rows (0, 1, 3 and 4), the newest two keep them.
    assert runs.delete_old_errors(engine, newest, keep=2) == [ours[1], ours[0]]

    for run_id in (ours[0], ours[1]):
        run = runs.get_run(engine, run_id)
        assert run is not None
        assert run.errors_deleted_at is not None
        assert run.rows_rejected > 0  # the counts stay
        assert list(runs.iter_run_errors(engine, run_id)) == []
        with pytest.raises(runs.RunErrorsDeleted, match=rf"rejected rows of run {run_id} were"):
            runs.check_errors_kept(run)
    kept = [*ours[2:], *cli, other_sync, theirs, running]
    for run_id in kept:
        run = runs.get_run(engine, run_id)
        assert run is not None
        assert run.errors_deleted_at is None
        assert len(list(runs.iter_run_errors(engine, run_id))) == (
            1 if run_id == running else run.rows_rejected
        )
    assert runs.delete_old_errors(engine, newest, keep=2) == []  # nothing more to let go

    # Command-line imports count per workspace.
    cli_run = runs.get_run(engine, cli[-1])
    assert cli_run is not None
    assert runs.delete_old_errors(engine, cli_run, keep=1) == [cli[0]]


def test_each_syncs_newest_run_is_found_in_one_look(engine: Engine, ws: int) -> None:
    other_ws = workspaces.get_or_create(engine, "elsewhere")
    older, newer = (_finished_run(engine, ws, 7, 0) for _ in range(2))
    only = _finished_run(engine, ws, 8, 1)
    _finished_run(engine, ws, None, 1)  # the command line's: no sync
    _finished_run(engine, other_ws, 9, 0)
    queued = runs.create_run(engine, ws, source="", path="/p", sync_id=8, status="queued")

    newest = runs.newest_of_syncs(engine, ws)

    assert {sync_id: run.id for sync_id, run in newest.items()} == {7: newer, 8: queued}
    assert older != newer
    assert only < queued
    assert newest[8].status == "queued"


# --- a process killed mid-apply ------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys
    from sqlalchemy import event
    from usersync import db
    from usersync.store import ConflictMode, UserChange, UserStore

    url, ws, stage = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    engine = db.create_engine_for(url)

    def block(marker):
        print(marker, flush=True)
        sys.stdin.read()  # the parent never closes it: wait here to be killed
        raise SystemExit("stdin closed")

    merged = []

    @event.listens_for(engine, "before_cursor_execute")
    def seen(conn, cursor, statement, *args):
        if statement.lstrip().startswith(("INSERT INTO users", "WITH merged", "MERGE INTO users")):
            merged.append(statement)

    @event.listens_for(engine, "commit")
    def before_commit(conn):
        if stage == "commit" and merged:
            block("MERGED")

    def batches():
        for n in range(40):
            # Updates of the existing users u0..u1999, and new users.
            yield [
                UserChange(f"u{(n * 1000 + i) % 3000}", json.dumps({"n": n, "k": "v" * 50}))
                for i in range(1000)
            ]
            if stage == "staging" and n == 4:
                block("STAGED")

    UserStore(engine).apply(ws, batches(), ConflictMode.REPLACE)
    print("FINISHED", flush=True)
    """
)


def wait_for_marker(
    proc: subprocess.Popen[bytes], marker: str, timeout: float, stderr: Path
) -> None:
    """Read the child's stdout until `marker` shows up; fail (with its stderr) otherwise."""
    assert proc.stdout is not None
    fd, seen = proc.stdout.fileno(), b""
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    while marker.encode() not in seen:
        left = (deadline - datetime.now(UTC)).total_seconds()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            proc.kill()
            proc.wait(timeout=10)
            reason = "timed out" if not ready else f"exited with {proc.returncode}"
            pytest.fail(
                f"the child {reason} before printing {marker}; stdout: {seen!r}\n"
                f"stderr:\n{stderr.read_text(errors='replace')[-4000:]}"
            )
        seen += chunk


@pytest.mark.parametrize("stage", ["staging", "commit"])
def test_killing_the_process_mid_apply_leaves_the_users_unchanged(
    db_url: str, engine: Engine, store: UserStore, ws: int, tmp_path: Path, stage: str
) -> None:
    store.apply(ws, [[change(f"u{i}", n=-1, original=True) for i in range(2000)]], UPDATE)
    before = everything(engine)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    errors = tmp_path / "child.err"
    with errors.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(script), db_url, str(ws), stage],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        try:
            wait_for_marker(proc, "MERGED" if stage == "commit" else "STAGED", 90, errors)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
    assert everything(engine) == before
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    # The killed apply held the write lock (SQLite) or the workspace lock (PostgreSQL):
    # both died with it, and the next apply goes through.
    assert apply(store, ws, UPDATE, change("u1", after=True)) == ApplyCounts(0, 1)
