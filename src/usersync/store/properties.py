"""The property catalog of a workspace: each property's name and type.

A property keeps its type once created; importing a column as another type is refused with
`PropertyTypeConflict` before anything is written.

    types(engine, ws) -> {"age": "integer", ...}
    ensure(engine, ws, {"age": "integer"})           # adds the missing ones
    create(engine, ws, "age", "integer") -> (Property, created)
    list_all(engine, ws, after="a", limit=100) -> [Property, ...]   ordered by name
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from usersync.errors import UsageError, UsersyncError
from usersync.mapping import check_property_name
from usersync.schema import PROPERTY_TYPES, properties, utcnow
from usersync.store._bind import Bind, insert_ignoring_conflicts, reading, writing


class PropertyTypeConflict(UsageError):
    """Properties that exist with another type than the one asked for."""

    def __init__(self, conflicts: Mapping[str, tuple[str, str]]) -> None:
        self.conflicts = dict(conflicts)  # name -> (type in the catalog, type asked for)
        listed = "; ".join(
            f"{name!r} is a {have}, not a {want}"
            for name, (have, want) in sorted(conflicts.items())
        )
        super().__init__(
            f"property types differ from the catalog: {listed}. A property keeps its type: "
            "map the column to a new property name, or import it with the catalog's type."
        )


@dataclass(frozen=True)
class Property:
    name: str
    type: str
    created_at: datetime


def types(bind: Bind, workspace_id: int) -> dict[str, str]:
    """The catalog: property name -> type (one of usersync.schema.PROPERTY_TYPES)."""
    with reading(bind) as conn:
        rows = conn.execute(
            sa.select(properties.c.name, properties.c.type)
            .where(properties.c.workspace_id == workspace_id)
            .order_by(properties.c.name)
        )
        return dict(rows.all())


def _clashes(conn: sa.Connection, workspace_id: int, wanted: Mapping[str, str]) -> dict[str, str]:
    rows = conn.execute(
        sa.select(properties.c.name, properties.c.type).where(
            properties.c.workspace_id == workspace_id, properties.c.name.in_(list(wanted))
        )
    )
    return dict(rows.all())


def ensure(bind: Bind, workspace_id: int, wanted: Mapping[str, str]) -> list[str]:
    """Add the properties of `wanted` (name -> type) that the catalog lacks; return their names.

    Raises `PropertyTypeConflict` (and adds nothing) if one exists with another type.
    """
    unknown = {name: kind for name, kind in wanted.items() if kind not in PROPERTY_TYPES}
    if unknown:
        raise UsageError(
            f"unknown property type(s) {unknown}: use one of {', '.join(PROPERTY_TYPES)}"
        )
    if not wanted:
        return []
    with writing(bind) as conn:
        existing = _clashes(conn, workspace_id, wanted)
        _raise_on_conflicts(existing, wanted)
        missing = sorted(set(wanted) - set(existing))
        if missing:
            now = utcnow()
            conn.execute(
                insert_ignoring_conflicts(conn, properties, ["workspace_id", "name"]),
                [
                    {
                        "workspace_id": workspace_id,
                        "name": name,
                        "type": wanted[name],
                        "created_at": now,
                    }
                    for name in missing
                ],
            )
            # Another process may have created some of them meanwhile, with another type.
            _raise_on_conflicts(_clashes(conn, workspace_id, wanted), wanted)
    return missing


def _raise_on_conflicts(existing: Mapping[str, str], wanted: Mapping[str, str]) -> None:
    conflicts = {
        name: (kind, str(wanted[name])) for name, kind in existing.items() if kind != wanted[name]
    }
    if conflicts:
        raise PropertyTypeConflict(conflicts)


def valid_name(name: str) -> str:
    """`name` if it can name a property; a UsageError saying why not otherwise."""
    try:
        return check_property_name(name)
    except UsersyncError as error:  # mapping raises the base class: a bad name is a usage error
        raise UsageError(error.message) from None


def list_all(
    bind: Bind, workspace_id: int, *, after: str | None = None, limit: int | None = None
) -> list[Property]:
    """The catalog ordered by name; page on with `after=` the last name seen."""
    query = sa.select(properties.c.name, properties.c.type, properties.c.created_at).where(
        properties.c.workspace_id == workspace_id
    )
    if after is not None:
        query = query.where(properties.c.name > after)
    query = query.order_by(properties.c.name)
    if limit is not None:
        query = query.limit(limit)
    with reading(bind) as conn:
        return [Property(*row) for row in conn.execute(query).all()]


def create(bind: Bind, workspace_id: int, name: str, kind: str) -> tuple[Property, bool]:
    """Add property `name` of type `kind`; True with it if it is new, False if it existed
    with that type already. `PropertyTypeConflict` if it exists with another type."""
    valid_name(name)
    with writing(bind) as conn:
        added = ensure(conn, workspace_id, {name: kind})
        row = conn.execute(
            sa.select(properties.c.name, properties.c.type, properties.c.created_at).where(
                properties.c.workspace_id == workspace_id, properties.c.name == name
            )
        ).one()
    return Property(*row), bool(added)
