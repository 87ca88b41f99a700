"""The User 360 store: atomic bulk apply of user changes, reading users back, deleting one."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from types import ModuleType
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Engine

from usersync.errors import NotFound, UsageError
from usersync.schema import users, workspaces
from usersync.store import _postgres_apply, _sqlite_apply
from usersync.store.model import (
    ApplyCounts,
    BeforeCommit,
    Change,
    ConflictMode,
    StoreError,
    UserRecord,
)

MAX_PAGE = 1000
_EXPORT_PAGE = 5000  # users a query of `iter_users_json` reads


class UserNotFound(NotFound):
    """The workspace has no user with this userId."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"there is no user {user_id!r}")
        self.user_id = user_id


_Apply = Callable[
    [Engine, int, Iterable[Sequence[Change]], ConflictMode, bool, BeforeCommit | None, bool],
    ApplyCounts,
]
_BACKENDS: dict[str, _Apply] = {
    "sqlite": _sqlite_apply.apply,
    "postgresql": _postgres_apply.apply,
}


class UserStore:
    """The users of every workspace of one database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        try:
            self._apply = _BACKENDS[engine.dialect.name]
        except KeyError:
            raise UsageError(f"no user store for {engine.dialect.name} databases") from None
        self._engine = engine

    @property
    def takes_columns(self) -> bool:
        """Whether `apply` writes `ChangeColumns` batches column-wise (PostgreSQL's COPY)
        rather than change by change."""
        return self._apply is _postgres_apply.apply

    def apply(
        self,
        workspace_id: int,
        batches: Iterable[Sequence[Change]],
        mode: ConflictMode,
        *,
        dry_run: bool = False,
        before_commit: BeforeCommit | None = None,
        skip_unchanged: bool = False,
    ) -> ApplyCounts:
        """Apply every change of `batches` to the workspace's users, all or nothing.

        A change is a `UserChange` or a plain `(user_id, properties_json)` tuple. `batches`
        is consumed lazily and staged in the database (never all in memory), then
        applied in one transaction. If iterating it raises, or anything else fails, or the
        process dies, the users are exactly as before. Changes for one user id apply in
        order. `dry_run`: the same work and counts, then rolled back. `skip_unchanged`: a
        user whose record the changes leave as it was is not written (its `updated_at`
        stays) and is counted as unchanged, not updated.
        """
        mode = ConflictMode(mode)
        self._check_workspace(workspace_id)
        try:
            return self._apply(
                self._engine, workspace_id, batches, mode, dry_run, before_commit, skip_unchanged
            )
        except _driver_errors() as error:
            # Errors of the iterable itself (the source, the reader...) pass through as they are.
            raise _store_error(error) from error

    def _check_workspace(self, workspace_id: int) -> None:
        # users has no foreign key (see usersync.schema): check before staging a big file.
        with self._engine.connect() as conn:
            found = conn.scalar(sa.select(workspaces.c.id).where(workspaces.c.id == workspace_id))
        if found is None:
            raise UsageError(f"there is no workspace {workspace_id}")

    def get_user(self, workspace_id: int, user_id: str) -> UserRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(users).where(
                    users.c.workspace_id == workspace_id, users.c.user_id == user_id
                )
            ).first()
        return None if row is None else _record(row)

    def require_user(self, workspace_id: int, user_id: str) -> UserRecord:
        """The user's record; `UserNotFound` if the workspace has no such user."""
        record = self.get_user(workspace_id, user_id)
        if record is None:
            raise UserNotFound(user_id)
        return record

    def delete_user(self, workspace_id: int, user_id: str) -> None:
        """Delete the user's record (`UserNotFound` if there is none). An import that meets
        the userId again makes a new record."""
        try:
            with self._engine.begin() as conn:
                deleted = conn.execute(
                    sa.delete(users).where(
                        users.c.workspace_id == workspace_id, users.c.user_id == user_id
                    )
                ).rowcount
        except _driver_errors() as error:
            raise _store_error(error) from error
        if not deleted:
            raise UserNotFound(user_id)

    def list_users(
        self,
        workspace_id: int,
        *,
        limit: int = 50,
        after: str | None = None,
        search: str | None = None,
    ) -> list[UserRecord]:
        """Users ordered by user id (bytewise); the next page starts `after` the last id seen.

        `search` keeps the user ids that contain it, ignoring ASCII case.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise UsageError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
        return [_record(row) for row in self._page(workspace_id, limit, after, search)]

    def iter_users_json(self, workspace_id: int) -> Iterator[StoredUser]:
        """Every user, in user id order, its properties the JSON text the database gives (a
        writer of JSON need not decode and encode them again). Read a page at a time, each
        page on its own: no transaction is held between pages (a slow reader holds up no
        import), so a user that an import changes meanwhile comes as its page found it."""
        columns = (users.c.created_at, users.c.updated_at)
        for rows in self._pages(workspace_id, columns):
            yield from (StoredUser(*row) for row in rows)

    def iter_properties_json(self, workspace_id: int) -> Iterator[tuple[str, str]]:
        """As `iter_users_json`, without the times: (user id, properties' JSON text)."""
        for rows in self._pages(workspace_id, ()):
            yield from ((user_id, text) for user_id, text in rows)

    def _pages(
        self, workspace_id: int, more: tuple[sa.ColumnElement[Any], ...]
    ) -> Iterator[Sequence[Any]]:
        """All of the workspace's users, _EXPORT_PAGE at a time, in user id order: rows of
        (user_id, properties as JSON text, *more)."""
        columns = (users.c.user_id, sa.cast(users.c.properties, sa.Text), *more)
        after = None
        while True:
            rows = self._page(workspace_id, _EXPORT_PAGE, after, None, columns)
            yield rows
            if len(rows) < _EXPORT_PAGE:
                return
            after = rows[-1][0]

    def _page(
        self,
        workspace_id: int,
        limit: int,
        after: str | None,
        search: str | None,
        columns: tuple[Any, ...] = (users,),
    ) -> Sequence[Any]:
        """Rows of `columns` (every column of users by default), in user id order."""
        query = sa.select(*columns).where(users.c.workspace_id == workspace_id)
        if after is not None:
            query = query.where(users.c.user_id > after)
        if search:
            query = query.where(users.c.user_id.icontains(search, autoescape=True))
        with self._engine.connect() as conn:
            return conn.execute(query.order_by(users.c.user_id).limit(limit)).all()


class StoredUser(NamedTuple):
    """A user as `iter_users_json` gives it: its properties as JSON text."""

    user_id: str
    properties_json: str
    created_at: datetime
    updated_at: datetime


# SQLSTATE classes worth a retry: connection exception, transaction rollback (serialization,
# deadlock), insufficient resources, operator intervention (server shutting down).
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})
_TRANSIENT_SQLITE_ERRORS = ("SQLITE_BUSY", "SQLITE_LOCKED")  # and their extended codes


def _loaded_psycopg() -> ModuleType | None:
    """psycopg if an engine for PostgreSQL loaded it: it cannot have raised otherwise, and
    importing it for SQLite would cost every command about 0.05 s."""
    return sys.modules.get("psycopg")


def _driver_errors() -> tuple[type[Exception], ...]:
    """The errors of the database drivers in use, as `except` takes them."""
    psycopg = _loaded_psycopg()
    drivers: tuple[type[Exception], ...] = (exc.DBAPIError, sqlite3.Error)
    return drivers if psycopg is None else (*drivers, psycopg.Error)


def _store_error(error: Exception) -> StoreError:
    """The driver's error, as the StoreError to raise (the message names the cause)."""
    driver_error = error.orig if isinstance(error, exc.DBAPIError) else error
    lines = str(driver_error).strip().splitlines()
    reason = lines[0] if lines else type(driver_error).__name__
    hint = "; free disk space for it and its temporary files" if _is_full(driver_error) else ""
    store_error = StoreError(
        f"the database failed while applying the changes ({reason}); nothing was applied{hint}"
    )
    store_error.transient = _is_transient(error, driver_error)
    return store_error


def _is_full(driver_error: object) -> bool:
    """Whether the disk (or a size limit) left the database no room: SQLITE_FULL, or
    PostgreSQL's disk_full."""
    if getattr(driver_error, "sqlstate", None) == "53100":
        return True
    return str(getattr(driver_error, "sqlite_errorname", "")).startswith("SQLITE_FULL")


def _is_transient(error: Exception, driver_error: object) -> bool:
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    sqlstate = getattr(driver_error, "sqlstate", None)
    if sqlstate:
        return str(sqlstate)[:2] in _TRANSIENT_SQLSTATE_CLASSES
    psycopg = _loaded_psycopg()
    if psycopg is not None and isinstance(driver_error, psycopg.OperationalError):
        return True  # no SQLSTATE: the connection itself failed
    name = str(getattr(driver_error, "sqlite_errorname", ""))
    return name.startswith(_TRANSIENT_SQLITE_ERRORS)


def _record(row: sa.Row[tuple[object, ...]]) -> UserRecord:
    return UserRecord(
        user_id=row.user_id,
        properties=row.properties,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
