"""Bulk apply on PostgreSQL: COPY the changes into a TEMP table, then merge them set-based.

All in one transaction, so a failure anywhere (or the client dying: the server rolls back an
unfinished transaction) leaves `users` as it was.

1. Staging: `COPY usersync_staging FROM STDIN` through psycopg, streamed batch by batch.
   The server parses the JSON into jsonb while the client reads on. A `ChangeColumns` batch
   (the column-wise reader's) goes as one block of COPY text made by pyarrow (`copy_text`):
   no Python object per row, which saves the client about 2 s of a 2.1 M row file.
2. `pg_advisory_xact_lock(namespace, workspace)`: applies to one workspace take turns, so
   the counts are exact and no two of them insert the same new user.
3. Merge, in key order (sorted once; the B-tree then takes near-appends), one row per user
   id: several changes for one user are folded in file order on the way (UPDATE: the patches
   composed with `||` by a temporary aggregate, so the last value of each key wins; REPLACE:
   the last change), so no statement meets a user id twice:
   - a workspace without users yet gets a plain INSERT (twice as fast as ON CONFLICT,
     measured: 5.5 s against 11 s for 1.65 M rows);
   - otherwise one `MERGE`, which joins the changes to the workspace's users instead of
     probing the key index once per change, planned as a merge join (the staging table
     analyzed, hash joins off: a hash join writes in hash order, 34 s instead of 15 s for
     2.1 M changes, half of them new; ON CONFLICT took 19-22 s). MERGE cannot return rows
     before PostgreSQL 17: the counts are what PostgreSQL counted for `users` in this
     transaction (`pg_stat_xact_user_tables`), before and after;
   - where MERGE or those counts are missing (PostgreSQL before 15, `track_counts` off),
     one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, its rows counted by whether
     `created_at` is this apply's time (an updated row keeps its older one).

With `skip_unchanged`, a user whose merged record is its stored one is not written (MERGE:
`WHEN MATCHED AND ... IS DISTINCT FROM ...`; ON CONFLICT: `DO UPDATE ... WHERE`), so the
counts leave it out; the unchanged ones are the distinct user ids less those counted.

In UPDATE mode, when most of the file's first changes give every property of the users they
update, such a user takes the change as it is instead of `stored || change` (see
`_whole_record_names`).

In UPDATE mode existing users must see the nulls of a patch (they clear properties) while new
users must not store them: MERGE inserts new users with the patch stripped; ON CONFLICT, whose
inserted row is also the `excluded` an update reads, inserts the raw patch and strips the new
users afterwards (a second write of each: 33 s for 1.6 M new users, against 15 s for the MERGE).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from usersync.schema import utcnow
from usersync.store._copy_text import copy_text
from usersync.store._staging import Staged, has_nulls
from usersync.store.model import ApplyCounts, BeforeCommit, Change, ChangeColumns, ConflictMode

if TYPE_CHECKING:  # loaded by the engine for PostgreSQL; SQLite users never need it
    import psycopg

STAGING = "usersync_staging"
_LOCK_NAMESPACE = 0x75737273  # "usrs": first key of pg_advisory_xact_lock(int, int)
# A user's patches composed in file order: jsonb_concat is `||` (strict: the first patch
# starts the state). In pg_temp, so it lasts as long as the session and touches no schema.
_PATCHES = "pg_temp.usersync_patches"
_CREATE_PATCHES = (
    f"CREATE OR REPLACE AGGREGATE {_PATCHES}(jsonb) (SFUNC = jsonb_concat, STYPE = jsonb)"
)


def apply(
    engine: Engine,
    workspace_id: int,
    batches: Iterable[Sequence[Change]],
    mode: ConflictMode,
    dry_run: bool,
    before_commit: BeforeCommit | None = None,
    skip_unchanged: bool = False,
) -> ApplyCounts:
    with engine.connect() as conn, conn.begin() as transaction, _dropped_on_interrupt(conn):
        staged = _stage(conn, batches)
        if staged.rows == 0:
            return ApplyCounts(created=0, updated=0)
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :ws)"),
            {"namespace": _LOCK_NAMESPACE, "ws": workspace_id},
        )
        now = utcnow()
        empty = not conn.scalar(
            text("SELECT EXISTS (SELECT 1 FROM users WHERE workspace_id = :ws)"),
            {"ws": workspace_id},
        )
        counts = _merge(conn, workspace_id, mode, staged, now, empty, skip_unchanged)
        if dry_run:
            transaction.rollback()
        elif before_commit is not None:
            before_commit(conn)
        return counts


@contextmanager
def _dropped_on_interrupt(conn: Connection) -> Iterator[None]:
    """Ctrl-C in the middle of a command (a COPY, say) leaves the connection busy with it, so
    no ROLLBACK can be sent: the connection is closed instead, which makes the server roll
    the transaction back, and the interrupt goes on as it came."""
    try:
        yield
    except KeyboardInterrupt:
        conn.invalidate()
        raise


def _stage(conn: Connection, batches: Iterable[Sequence[Change]]) -> Staged:
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE {STAGING} (seq bigint NOT NULL, "
        'user_id text COLLATE "C" NOT NULL, properties jsonb NOT NULL) ON COMMIT DROP'
    )
    driver = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    rows, nulls = 0, False
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {STAGING} (seq, user_id, properties) FROM STDIN") as copy,
    ):
        for batch in batches:
            if isinstance(batch, ChangeColumns):
                copy.write(copy_text(batch, first_seq=rows + 1))
                rows += len(batch)
            else:
                for user_id, properties_json in batch:
                    rows += 1
                    copy.write_row((rows, user_id, properties_json))
            nulls = nulls or has_nulls(batch)
    return Staged(rows=rows, nulls=nulls)


def _changes(mode: ConflictMode, strip: bool) -> str:
    """The staged changes, one row per user id in key order: (user_id, properties)."""
    if mode is ConflictMode.REPLACE:
        properties = "jsonb_strip_nulls(properties)" if strip else "properties"
        return (
            f"SELECT DISTINCT ON (user_id) user_id, {properties} AS properties "
            f"FROM {STAGING} ORDER BY user_id, seq DESC"
        )
    # Not `_PATCHES(properties ORDER BY seq)`: PostgreSQL before 16 sorts each group on its
    # own for that, which doubled the fold's time (5.7 s against 2.9 s for 2.1 M changes). An
    # aggregate takes its rows in the order its input gives them, group by group (sorted) or
    # row by row (hashed), so a sorted input folds each user's patches in file order.
    properties = f"{_PATCHES}(properties)"
    if strip:
        properties = f"jsonb_strip_nulls({properties})"
    return (
        f"SELECT user_id, {properties} AS properties "
        f"FROM (SELECT user_id, properties FROM {STAGING} ORDER BY user_id, seq) AS in_order "
        "GROUP BY user_id ORDER BY user_id"
    )


def _merge(
    conn: Connection,
    workspace_id: int,
    mode: ConflictMode,
    staged: Staged,
    now: datetime,
    empty: bool,
    skip_unchanged: bool = False,
) -> ApplyCounts:
    params: dict[str, Any] = {"ws": workspace_id, "now": now}
    if mode is ConflictMode.UPDATE:
        conn.exec_driver_sql(_CREATE_PATCHES)  # what _changes folds the patches with
    if empty:
        changes = _changes(mode, strip=staged.nulls)
        result = conn.execute(text(_INSERT.format(changes=changes)), params)
        return ApplyCounts(created=result.rowcount, updated=0)
    # In UPDATE mode only new users are stripped (as they are inserted): updating needs the nulls.
    changes = _changes(mode, strip=staged.nulls and mode is ConflictMode.REPLACE)
    strip_new = mode is ConflictMode.UPDATE and staged.nulls
    names = _whole_record_names(conn, params) if mode is ConflictMode.UPDATE else None
    whole = names is not None
    if whole:
        params["keys"] = names
    if _can_count_merge(conn):
        merged = _merged(mode, staged, "changes", whole)
        inserted = "jsonb_strip_nulls(changes.properties)" if strip_new else "changes.properties"
        write_if = _if_changed(merged, skip_unchanged)
        counts = _merge_counted(conn, changes, merged, inserted, params, write_if)
    else:
        merged = _merged(mode, staged, "excluded", whole)
        counts = _upsert(conn, changes, merged, params, _if_changed(merged, skip_unchanged))
        if strip_new:
            conn.execute(text(_STRIP_NEW_USERS), params)
    if skip_unchanged:
        distinct = conn.scalar(text(f"SELECT count(DISTINCT user_id) FROM {STAGING}"))
        unchanged = int(distinct or 0) - counts.created - counts.updated
        counts = ApplyCounts(created=counts.created, updated=counts.updated, unchanged=unchanged)
    return counts


def _if_changed(merged: str, skip_unchanged: bool) -> str:
    """The condition on which a stored user is written: always, or, when unchanged users are
    skipped, when `merged` is not what it has."""
    return f"users.properties IS DISTINCT FROM ({merged})" if skip_unchanged else "true"


def _merged(mode: ConflictMode, staged: Staged, change: str, whole: bool) -> str:
    """A stored user's properties once the row `change` of the changes applies to them.

    `whole` (UPDATE mode): where the change gives every property of the user, it is the
    merged record itself, taken without `||` (see `_whole_record_names`).
    """
    if mode is ConflictMode.REPLACE:
        return f"{change}.properties"
    merged = f"users.properties || {change}.properties"
    if whole:
        merged = f"CASE WHEN {_gives_all(change)} THEN {change}.properties ELSE {merged} END"
    return f"jsonb_strip_nulls({merged})" if staged.nulls else merged


def _gives_all(change: str) -> str:
    """Whether the row `change` gives every name of `:keys` and the user has no other."""
    return (
        f"{change}.properties ?& CAST(:keys AS text[]) "
        "AND users.properties - CAST(:keys AS text[]) = '{}'::jsonb"
    )


# Past this many names the test costs about what it saves: `jsonb - text[]` compares every
# stored name with every given one. Measured per user: 16 µs for the test against 25 µs for
# `||` at 64 names, 43 against 55 at 140, 420 against 218 at 500.
_MOST_KEYS_TO_TEST = 64
_SAMPLE = 2000  # the file's first changes, where the names and _gives_all are tried


def _whole_record_names(conn: Connection, params: dict[str, Any]) -> list[str] | None:
    """The property names of the file's first changes (`:keys` for `_gives_all`), if most of
    those that update a user give every property the user has; otherwise None.

    `||` rebuilds both documents: 3.6 s of a 15 s merge of 1 M users with 11 properties,
    where `_gives_all` costs 1 s when it holds. When it fails it costs as much again (2 s
    more for users with 11 other properties), so it is only worth testing on a file whose
    first changes mostly pass it. Any names keep the result right.
    """
    sample = f"(SELECT user_id, properties FROM {STAGING} LIMIT {_SAMPLE}) AS changes"
    names: list[str] = conn.scalar(
        text(
            f"SELECT coalesce(array_agg(DISTINCT name), '{{}}') FROM {sample}, "
            "jsonb_object_keys(CASE jsonb_typeof(changes.properties) "
            "WHEN 'object' THEN changes.properties ELSE '{}' END) AS name"
        )
    )
    if not names or len(names) > _MOST_KEYS_TO_TEST:
        return None
    # One key lookup per sampled change: LATERAL, and LIMIT 1 so that the planner cannot
    # flatten it into a join. With statistics from before the workspace's first big load,
    # it estimated the workspace's users at 1 row and hashed all of them, 1.05 M of them
    # read in 0.6 s, and 2.2-3.8 s the first time after their load.
    passed, updating = conn.execute(
        text(
            f"SELECT count(*) FILTER (WHERE {_gives_all('changes')}), count(*) FROM {sample} "
            "CROSS JOIN LATERAL (SELECT properties FROM users WHERE users.workspace_id = :ws "
            "AND users.user_id = changes.user_id LIMIT 1) AS users"
        ),
        {**params, "keys": names},
    ).one()
    return names if updating and passed * 2 >= updating else None


_INSERT = (
    "INSERT INTO users (workspace_id, user_id, properties, created_at, updated_at) "
    "SELECT :ws, user_id, properties, :now, :now FROM ({changes}) AS changes "
    "ORDER BY user_id"
)
_NEVER_ANALYZED = "SELECT reltuples < 0 FROM pg_class WHERE oid = 'users'::regclass"
_WRITTEN = (
    "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables WHERE relid = 'users'::regclass"
)


def _can_count_merge(conn: Connection) -> bool:
    """Whether this server has MERGE (SQLAlchemy read its version when connecting) and
    counts the rows that statements write."""
    version = conn.dialect.server_version_info or ()
    return version >= (15,) and bool(
        conn.scalar(text("SELECT current_setting('track_counts')::bool"))
    )


def _merge_counted(
    conn: Connection,
    changes: str,
    merged: str,
    inserted: str,
    params: dict[str, Any],
    write_if: str,
) -> ApplyCounts:
    """MERGE: a stored user's properties become `merged` (where `write_if`), a new user's
    `inserted`."""
    conn.exec_driver_sql(f"ANALYZE {STAGING}")  # so that the planner knows its size
    if conn.scalar(text(_NEVER_ANALYZED)):
        # Right after a first big load: without statistics the planner guesses a few rows
        # per user id and probes the index once per change (17 s instead of 15 s).
        conn.exec_driver_sql("ANALYZE users")
    conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")
    before = conn.execute(text(_WRITTEN)).one()
    conn.execute(
        text(
            f"MERGE INTO users USING ({changes}) AS changes "
            "ON users.workspace_id = :ws AND users.user_id = changes.user_id "
            f"WHEN MATCHED AND {write_if} THEN UPDATE SET properties = {merged}, "
            "updated_at = :now "
            "WHEN NOT MATCHED THEN INSERT "
            "(workspace_id, user_id, properties, created_at, updated_at) "
            f"VALUES (:ws, changes.user_id, {inserted}, :now, :now)"
        ),
        params,
    )
    after = conn.execute(text(_WRITTEN)).one()
    conn.exec_driver_sql("RESET enable_hashjoin")
    return ApplyCounts(created=after[0] - before[0], updated=after[1] - before[1])


def _upsert(
    conn: Connection, changes: str, merged: str, params: dict[str, Any], write_if: str
) -> ApplyCounts:
    row = conn.execute(
        text(
            f"WITH merged AS ({_INSERT.format(changes=changes)}"
            " ON CONFLICT (workspace_id, user_id) DO UPDATE"
            f" SET properties = {merged}, updated_at = excluded.updated_at WHERE {write_if}"
            " RETURNING created_at = :now AS created) "
            "SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) "
            "FROM merged"
        ),
        params,
    ).one()
    return ApplyCounts(created=row[0], updated=row[1])


_STRIP_NEW_USERS = (
    "UPDATE users u SET properties = jsonb_strip_nulls(u.properties) "
    f"FROM {STAGING} s WHERE u.workspace_id = :ws AND u.user_id = s.user_id "
    "AND u.created_at = :now AND s.properties <> jsonb_strip_nulls(s.properties)"
)
