"""Bulk apply on PostgreSQL: COPY the changes into a TEMP table, then merge them set-based.

All in one transaction, so a failure anywhere (or the client dying: the server rolls back an
unfinished transaction) leaves `users` as it was.

1. Staging: `COPY usersync_staging FROM STDIN` through psycopg, streamed batch by batch.
   The server parses the JSON into jsonb while the client reads on.
2. `pg_advisory_xact_lock(namespace, workspace)`: applies to one workspace take turns, so
   the counts are exact and no two of them insert the same new user.
3. Merge, in key order (sorted once; the B-tree then takes near-appends):
   - a workspace without users yet gets a plain INSERT (twice as fast as ON CONFLICT,
     measured: 5.5 s against 11 s for 1.65 M rows);
   - otherwise one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, its rows counted by
     whether `created_at` is this apply's time (an updated row keeps its older one).
   Neither statement accepts two rows for one user id. Such duplicates are rare, so they
   are not searched for up front: the merge runs under a savepoint, and if it reports one
   (unique or cardinality violation) it is rolled back, the duplicates are folded in file
   order (UPDATE: patches composed key by key, the last value winning; REPLACE: the last
   change), and the merge runs again.

In UPDATE mode existing users must see the nulls of a patch (they clear properties) while new
users must not store them: new users are inserted with the raw patch, then stripped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

import psycopg
from sqlalchemy import exc, text
from sqlalchemy.engine import Connection, Engine

from usersync.schema import utcnow
from usersync.store._staging import Staged, has_nulls
from usersync.store.model import ApplyCounts, BeforeCommit, Change, ConflictMode

STAGING = "usersync_staging"
_LOCK_NAMESPACE = 0x75737273  # "usrs": first key of pg_advisory_xact_lock(int, int)
# unique_violation (plain INSERT) and cardinality_violation ("ON CONFLICT DO UPDATE command
# cannot affect row a second time"): with the workspace locked, only a duplicate causes them.
_DUPLICATE_SQLSTATES = frozenset({"23505", "21000"})


def apply(
    engine: Engine,
    workspace_id: int,
    batches: Iterable[Sequence[Change]],
    mode: ConflictMode,
    dry_run: bool,
    before_commit: BeforeCommit | None = None,
) -> ApplyCounts:
    with engine.connect() as conn, conn.begin() as transaction:
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
        counts = _merge_folding_duplicates(conn, workspace_id, mode, staged, now, empty)
        if dry_run:
            transaction.rollback()
        elif before_commit is not None:
            before_commit(conn)
        return counts


def _stage(conn: Connection, batches: Iterable[Sequence[Change]]) -> Staged:
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE {STAGING} (seq bigint NOT NULL, "
        'user_id text COLLATE "C" NOT NULL, properties jsonb NOT NULL) ON COMMIT DROP'
    )
    driver = cast(psycopg.Connection[Any], conn.connection.driver_connection)
    rows, nulls = 0, False
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {STAGING} (seq, user_id, properties) FROM STDIN") as copy,
    ):
        for batch in batches:
            for user_id, properties_json in batch:
                rows += 1
                copy.write_row((rows, user_id, properties_json))
            nulls = nulls or has_nulls(batch)
    return Staged(rows=rows, nulls=nulls)


def _merge_folding_duplicates(
    conn: Connection,
    workspace_id: int,
    mode: ConflictMode,
    staged: Staged,
    now: datetime,
    empty: bool,
) -> ApplyCounts:
    try:
        with conn.begin_nested():
            return _merge(conn, workspace_id, mode, staged, now, empty)
    except exc.DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) not in _DUPLICATE_SQLSTATES:
            raise
    conn.execute(text(_FOLD_UPDATE if mode is ConflictMode.UPDATE else _FOLD_REPLACE))
    return _merge(conn, workspace_id, mode, staged, now, empty)


def _merge(
    conn: Connection,
    workspace_id: int,
    mode: ConflictMode,
    staged: Staged,
    now: datetime,
    empty: bool,
) -> ApplyCounts:
    params = {"ws": workspace_id, "now": now}
    strip = "jsonb_strip_nulls(properties)" if staged.nulls else "properties"
    if empty:
        result = conn.execute(
            text(
                "INSERT INTO users (workspace_id, user_id, properties, created_at, updated_at) "
                f"SELECT :ws, user_id, {strip}, :now, :now FROM {STAGING} ORDER BY user_id"
            ),
            params,
        )
        return ApplyCounts(created=result.rowcount, updated=0)
    if mode is ConflictMode.UPDATE:
        inserted = "properties"  # stripped below: the conflict branch needs the nulls
        merged = "users.properties || excluded.properties"
        if staged.nulls:
            merged = f"jsonb_strip_nulls({merged})"
    else:
        inserted, merged = strip, "excluded.properties"
    row = conn.execute(
        text(
            "WITH merged AS ("
            " INSERT INTO users (workspace_id, user_id, properties, created_at, updated_at)"
            f" SELECT :ws, user_id, {inserted}, :now, :now FROM {STAGING} ORDER BY user_id"
            " ON CONFLICT (workspace_id, user_id) DO UPDATE"
            f" SET properties = {merged}, updated_at = excluded.updated_at"
            " RETURNING created_at = :now AS created) "
            "SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) "
            "FROM merged"
        ),
        params,
    ).one()
    if mode is ConflictMode.UPDATE and staged.nulls:
        conn.execute(text(_STRIP_NEW_USERS), params)
    return ApplyCounts(created=row[0], updated=row[1])


_STRIP_NEW_USERS = (
    "UPDATE users u SET properties = jsonb_strip_nulls(u.properties) "
    f"FROM {STAGING} s WHERE u.workspace_id = :ws AND u.user_id = s.user_id "
    "AND u.created_at = :now AND s.properties <> jsonb_strip_nulls(s.properties)"
)

# Replace each duplicated user id's changes by one. In one statement: the data-modifying
# CTE deletes the originals while the INSERT adds the folded rows, both from one snapshot.
_DUPLICATES = f"SELECT user_id FROM {STAGING} GROUP BY user_id HAVING count(*) > 1"
_FOLD_UPDATE = (
    f"WITH dup AS ({_DUPLICATES}), "
    "folded AS ("
    " SELECT s.user_id, max(s.seq) AS seq,"
    "  coalesce(jsonb_object_agg(e.key, e.value ORDER BY s.seq)"
    "   FILTER (WHERE e.key IS NOT NULL), '{}'::jsonb) AS properties"
    f" FROM {STAGING} s JOIN dup USING (user_id)"
    " LEFT JOIN LATERAL jsonb_each(s.properties) e ON true"
    " GROUP BY s.user_id), "
    f"gone AS (DELETE FROM {STAGING} s USING dup WHERE s.user_id = dup.user_id) "
    f"INSERT INTO {STAGING} (seq, user_id, properties) SELECT seq, user_id, properties FROM folded"
)
_FOLD_REPLACE = (
    f"WITH dup AS ({_DUPLICATES}), "
    "folded AS ("
    " SELECT DISTINCT ON (s.user_id) s.user_id, s.seq, s.properties"
    f" FROM {STAGING} s JOIN dup USING (user_id) ORDER BY s.user_id, s.seq DESC), "
    f"gone AS (DELETE FROM {STAGING} s USING dup WHERE s.user_id = dup.user_id) "
    f"INSERT INTO {STAGING} (seq, user_id, properties) SELECT seq, user_id, properties FROM folded"
)
