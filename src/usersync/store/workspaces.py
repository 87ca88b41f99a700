"""Workspaces: the tenants of a database. The CLI works in one named "default"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.dml import ReturningInsert

from usersync.errors import UsageError
from usersync.schedule.zones import resolve_zone
from usersync.schema import utcnow, workspaces
from usersync.store._bind import Bind, insert_ignoring_conflicts, reading, writing

MAX_NAME_LENGTH = 200


class WorkspaceExists(UsageError):
    pass


def _check_name(name: str) -> str:
    if not name.strip() or len(name) > MAX_NAME_LENGTH or name != name.strip():
        raise UsageError(
            f"{name!r} is not a valid workspace name: use 1 to {MAX_NAME_LENGTH} characters, "
            "without leading or trailing spaces"
        )
    return name


def _insert(conn: sa.Connection, name: str) -> ReturningInsert[int]:
    """INSERT the workspace unless the name exists, RETURNING its id (no row if it did)."""
    insert = insert_ignoring_conflicts(conn, workspaces, ["name"])
    return insert.values(name=name, created_at=utcnow()).returning(workspaces.c.id)


def get_id(bind: Bind, name: str) -> int | None:
    """The id of workspace `name`, or None."""
    with reading(bind) as conn:
        return conn.scalar(sa.select(workspaces.c.id).where(workspaces.c.name == name))


def get_or_create(bind: Bind, name: str) -> int:
    """The id of workspace `name`, created if it does not exist (safe when racing)."""
    _check_name(name)
    found = get_id(bind, name)
    if found is not None:
        return found
    with writing(bind) as conn:
        created = conn.scalar(_insert(conn, name))
        if created is None:  # whoever won the race created it
            created = conn.scalar(sa.select(workspaces.c.id).where(workspaces.c.name == name))
    assert created is not None
    return int(created)


def create(bind: Bind, name: str, *, timezone: str | None = None) -> int:
    """Create workspace `name` (its schedules' default zone: `timezone`, else UTC);
    `WorkspaceExists` if there is one of that name."""
    _check_name(name)
    zone = resolve_zone(timezone).key if timezone is not None else None
    with writing(bind) as conn:
        created = conn.scalar(_insert(conn, name))
        if created is None:
            raise WorkspaceExists(f"there is already a workspace named {name!r}")
        if zone is not None:
            conn.execute(
                sa.update(workspaces).where(workspaces.c.id == created).values(timezone=zone)
            )
    return int(created)


def set_timezone(bind: Bind, workspace_id: int, timezone: str) -> None:
    """Make `timezone` (an IANA name) the workspace's time zone."""
    if not timezone.strip():
        raise UsageError("timezone: give an IANA zone name such as 'Europe/Berlin' or 'UTC'")
    zone = resolve_zone(timezone).key
    with writing(bind) as conn:
        conn.execute(
            sa.update(workspaces).where(workspaces.c.id == workspace_id).values(timezone=zone)
        )


def zone(bind: Bind, workspace_id: int) -> ZoneInfo:
    """The workspace's time zone (UTC unless one was set): that of a sync given none, and the
    one the web UI shows the times of its users, tokens, files and runs in."""
    return get(bind, workspace_id).zone


def _zone(name: str | None) -> ZoneInfo:
    try:
        return resolve_zone(name)
    except UsageError:  # a zone that this machine's time zone database does not have
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class Workspace:
    id: int
    name: str
    timezone: str | None
    created_at: datetime

    @property
    def zone(self) -> ZoneInfo:
        """Its time zone: `timezone`, else UTC."""
        return _zone(self.timezone)


def get(bind: Bind, workspace_id: int) -> Workspace:
    """The workspace `workspace_id` (one that exists: the caller has its id)."""
    [found] = list_all(bind, workspace_id=workspace_id)
    return found


def list_all(bind: Bind, *, workspace_id: int | None = None) -> list[Workspace]:
    """Every workspace (or the one `workspace_id`), by name."""
    w = workspaces.c
    query = sa.select(w.id, w.name, w.timezone, w.created_at).order_by(w.name)
    if workspace_id is not None:
        query = query.where(w.id == workspace_id)
    with reading(bind) as conn:
        return [Workspace(*row) for row in conn.execute(query).all()]


def names(bind: Bind) -> dict[str, int]:
    """Every workspace: name -> id."""
    with reading(bind) as conn:
        rows = conn.execute(sa.select(workspaces.c.name, workspaces.c.id).order_by("name"))
        return dict(rows.all())
