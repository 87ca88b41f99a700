"""Syncs: what to import (connection, folder, file, mapping), how (conflict mode, CSV format)
and when (schedule, time zone), and whether it is switched on.

    sync = syncs.create(engine, box, ws, {"connection_id": 1, "folder": "/in", ...})
    syncs.get(engine, ws, sync.id); syncs.list_all(engine, ws)
    syncs.update(engine, box, ws, sync.id, {"schedule": {"type": "daily", "time": "02:00"}})
    syncs.set_enabled(engine, ws, sync.id, True)      # computes next_run_at

`validate` turns what a user gave into the canonical values the table holds, or raises a
UsageError naming the field. `next_run_at` is the next fire time in UTC while enabled; the
worker claims it and moves it on (`following_fire`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from usersync.enums import AfterImport, FileChoice, PropertyType, WebhookOn
from usersync.errors import NotFound, UsageError, UsersyncError
from usersync.files import EXTENSION, PREFIX
from usersync.mapping import EmptyCells, check_property_name
from usersync.reader import CsvOptions, named_delimiter
from usersync.schedule import OnceSchedule, parse_schedule, resolve_zone
from usersync.schema import connections, fires, runs, syncs, utcnow, workspaces
from usersync.secretbox import SecretBox
from usersync.sources.urls import normalize_path
from usersync.store._bind import Bind, reading, writing
from usersync.store.model import ConflictMode


class SyncNotFound(NotFound):
    pass


@dataclass(frozen=True)
class Sync:
    id: int
    workspace_id: int
    connection_id: int
    name: str | None
    folder: str
    file: str | None
    file_choice: str
    mapping: dict[str, Any]  # {"user_id": COLUMN, "properties": {P: COLUMN}, "types": {P: T}}
    conflict: str
    empty_cells: str
    encoding: str | None
    delimiter: str | None
    max_rejected: int | None
    schedule: dict[str, Any]
    timezone: str
    enabled: bool
    next_run_at: datetime | None
    import_unchanged: bool
    skip_unchanged_users: bool
    after_import: str
    move_to: str | None
    webhook_url: str | None
    webhook_on: str | None
    has_webhook_secret: bool
    created_at: datetime
    updated_at: datetime

    @property
    def path(self) -> str | None:
        """The chosen file's full path (for file choice "exact")."""
        return None if self.file is None else posixpath.join(self.folder, self.file)

    @property
    def schedule_words(self) -> str:
        """The schedule as people say it: "At 01:00, every day"."""
        return parse_schedule(self.schedule).describe()


WEBHOOK_SCHEMES = ("http://", "https://")  # what a webhook_url starts with

# What a user may set, with the default a new sync gets.
DEFAULTS: dict[str, Any] = {
    "name": None,
    "file": None,
    "file_choice": FileChoice.EXACT.value,
    "conflict": ConflictMode.UPDATE.value,
    "empty_cells": EmptyCells.IGNORE.value,
    "encoding": None,
    "delimiter": None,
    "max_rejected": None,
    "schedule": {"type": "once"},
    "timezone": None,
    "enabled": False,
    "import_unchanged": False,
    "skip_unchanged_users": False,
    "after_import": AfterImport.LEAVE.value,
    "move_to": None,
    "webhook_url": None,
    "webhook_on": None,
    "webhook_secret": None,
}
REQUIRED = ("connection_id", "folder", "mapping")
SETTABLE = frozenset(DEFAULTS) | frozenset(REQUIRED)


def _one_of(field: str, value: object, choices: type[Any]) -> str:
    allowed = [choice.value for choice in choices]
    if value not in allowed:
        raise UsageError(f"{field}: {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _folder(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise UsageError(f"{field}: give an absolute folder path such as '/in', not {value!r}")
    return normalize_path(value)


def _file_name(value: object) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise UsageError(f"file: give a file name inside the folder, not {value!r}")
    if not (value.startswith(PREFIX) and value.lower().endswith(EXTENSION)):
        raise UsageError(
            f"file: {value!r} cannot be imported: its name must begin with {PREFIX!r} and end "
            f"with {EXTENSION!r}"
        )
    return value


def _mapping(value: object) -> dict[str, Any]:
    example = '{"user_id": "id", "properties": {"email": "email"}}'
    if not isinstance(value, Mapping):
        raise UsageError(f"mapping: give an object such as {example}")
    unknown = sorted(set(value) - {"user_id", "properties", "types"})
    if unknown:
        raise UsageError(f"mapping: unknown key {', '.join(unknown)}; use {example}")
    user_id = value.get("user_id")
    if not isinstance(user_id, str) or not user_id.strip():
        raise UsageError(f"mapping.user_id: name the column that holds the userId ({example})")
    props = value.get("properties") or {}
    types = value.get("types") or {}
    if not isinstance(props, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in props.items()
    ):
        raise UsageError("mapping.properties: give PROPERTY: COLUMN pairs of text")
    for name in props:
        try:
            check_property_name(name)
        except UsersyncError as error:
            raise UsageError(f"mapping.properties: {error.message}") from None
    if not isinstance(types, Mapping):
        raise UsageError("mapping.types: give PROPERTY: TYPE pairs")
    for name, kind in types.items():
        if name not in props:
            raise UsageError(f"mapping.types: {name!r} is not a mapped property")
        _one_of(f"mapping.types.{name}", kind, PropertyType)
    return {"user_id": user_id, "properties": dict(props), "types": dict(types)}


def _delimiter(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"delimiter: give one character such as ';', not {value!r}")
    return named_delimiter(value)


def validate(values: Mapping[str, Any], workspace_zone: str | None = None) -> dict[str, Any]:
    """All of a sync's settings (defaults filled in), checked and made canonical."""
    unknown = sorted(set(values) - SETTABLE)
    if unknown:
        raise UsageError(f"syncs have no field {', '.join(unknown)}")
    missing = [name for name in REQUIRED if values.get(name) is None]
    if missing:
        raise UsageError(f"missing {', '.join(missing)}")
    out = {**DEFAULTS, **values}
    if isinstance(out["connection_id"], bool) or not isinstance(out["connection_id"], int):
        raise UsageError(f"connection_id: {out['connection_id']!r} is not a connection id")
    out["folder"] = _folder("folder", out["folder"])
    out["file_choice"] = _one_of("file_choice", out["file_choice"], FileChoice)
    if out["file"] is not None:
        out["file"] = _file_name(out["file"])
    elif out["file_choice"] == FileChoice.EXACT:
        raise UsageError('file: name the file to import (or set file_choice to "newest"/"all_new")')
    out["mapping"] = _mapping(out["mapping"])
    out["conflict"] = _one_of("conflict", out["conflict"], ConflictMode)
    out["empty_cells"] = _one_of("empty_cells", out["empty_cells"], EmptyCells)
    out["delimiter"] = _delimiter(out["delimiter"])
    CsvOptions(encoding=out["encoding"], delimiter=out["delimiter"] or ",")
    if out["max_rejected"] is not None and (
        isinstance(out["max_rejected"], bool)
        or not isinstance(out["max_rejected"], int)
        or out["max_rejected"] < 0
    ):
        raise UsageError(
            f"max_rejected: {out['max_rejected']!r} is not a number of rows (0 or more)"
        )
    schedule = parse_schedule(out["schedule"])
    if out["timezone"] and schedule.timezone:
        given, own = resolve_zone(out["timezone"]).key, resolve_zone(schedule.timezone).key
        if given != own:
            raise UsageError(
                f"timezone: the sync says {given} and its schedule says {own}; give the time "
                "zone in one of them, or the same in both"
            )
    zone = out["timezone"] or schedule.timezone or workspace_zone or "UTC"
    out["timezone"] = resolve_zone(zone).key
    out["schedule"] = schedule.to_dict()
    for flag in ("enabled", "import_unchanged", "skip_unchanged_users"):
        if not isinstance(out[flag], bool):
            raise UsageError(f"{flag}: give true or false, not {out[flag]!r}")
    out["after_import"] = _one_of("after_import", out["after_import"], AfterImport)
    if out["after_import"] == AfterImport.MOVE:
        if out["move_to"] is None:
            raise UsageError("move_to: name the folder that imported files move to")
        out["move_to"] = _folder("move_to", out["move_to"])
        if out["move_to"] == out["folder"]:
            raise UsageError("move_to: give a folder other than the sync's own folder")
    else:
        out["move_to"] = None
    if out["webhook_url"] is not None:
        url = out["webhook_url"]
        if not isinstance(url, str) or not url.startswith(WEBHOOK_SCHEMES):
            raise UsageError(f"webhook_url: {url!r} is not an http:// or https:// URL")
        if out["webhook_on"] is None:
            out["webhook_on"] = WebhookOn.FAILURE.value
        out["webhook_on"] = _one_of("webhook_on", out["webhook_on"], WebhookOn)
    elif out["webhook_secret"]:
        raise UsageError("webhook_secret: the secret signs a webhook's calls: give webhook_url too")
    else:
        out["webhook_on"] = None
    return out


def _check_fires(next_run: datetime | None, schedule: Mapping[str, Any]) -> None:
    """An enabled sync's new schedule must fire at least once more."""
    if next_run is None:
        raise UsageError(
            f"schedule: {parse_schedule(dict(schedule)).describe()} has no fire time after now "
            '(a date that has passed, say): give a later one, or {"type": "once"} to run now'
        )


def first_fire(schedule: Mapping[str, Any], timezone: str, after: datetime) -> datetime | None:
    """The first fire time after `after` (for "once now": `after` itself), in UTC."""
    times = parse_schedule(dict(schedule)).next_times(after, 1, resolve_zone(timezone))
    return times[0].astimezone(UTC) if times else None


def following_fire(sync: Sync, fired: datetime, now: datetime) -> datetime | None:
    """The fire time after `fired`. Fire times missed while nothing ran collapse into the one
    that just ran: the next is the first after both `fired` and `now`."""
    if isinstance(parse_schedule(sync.schedule), OnceSchedule):
        return None
    return first_fire(sync.schedule, sync.timezone, max(fired, now))


def _sync(row: sa.Row[Any]) -> Sync:
    data = row._asdict()
    data["has_webhook_secret"] = data.pop("webhook_secret") is not None
    names = {f.name for f in fields(Sync)}
    return Sync(**{k: v for k, v in data.items() if k in names})


def _load(conn: sa.Connection, ws: int, sync_id: int) -> Sync:
    row = conn.execute(
        sa.select(syncs).where(syncs.c.id == sync_id, syncs.c.workspace_id == ws)
    ).first()
    if row is None:
        raise SyncNotFound(f"there is no sync {sync_id}")
    return _sync(row)


def _workspace_zone(conn: sa.Connection, ws: int) -> str | None:
    return conn.scalar(sa.select(workspaces.c.timezone).where(workspaces.c.id == ws))


def _check_connection(conn: sa.Connection, ws: int, connection_id: int) -> None:
    found = conn.scalar(
        sa.select(connections.c.id).where(
            connections.c.id == connection_id, connections.c.workspace_id == ws
        )
    )
    if found is None:
        raise UsageError(f"connection_id: there is no connection {connection_id}")


def _columns(values: Mapping[str, Any], box: SecretBox) -> dict[str, Any]:
    row = {k: v for k, v in values.items() if k != "webhook_secret"}
    secret = values.get("webhook_secret")
    if secret:
        row["webhook_secret"] = box.seal({"secret": secret})
    return row


def create(bind: Bind, box: SecretBox, ws: int, values: Mapping[str, Any]) -> Sync:
    now = utcnow()
    with writing(bind) as conn:
        checked = validate(values, _workspace_zone(conn, ws))
        _check_connection(conn, ws, checked["connection_id"])
        row = _columns(checked, box)
        row["next_run_at"] = (
            first_fire(checked["schedule"], checked["timezone"], now)
            if checked["enabled"]
            else None
        )
        if checked["enabled"]:
            _check_fires(row["next_run_at"], checked["schedule"])
        sync_id = conn.scalar(
            sa.insert(syncs)
            .values(workspace_id=ws, created_at=now, updated_at=now, **row)
            .returning(syncs.c.id)
        )
        assert sync_id is not None
        return _load(conn, ws, int(sync_id))


def get(bind: Bind, ws: int, sync_id: int) -> Sync:
    with reading(bind) as conn:
        return _load(conn, ws, sync_id)


def list_all(bind: Bind, ws: int) -> list[Sync]:
    with reading(bind) as conn:
        rows = conn.execute(
            sa.select(syncs).where(syncs.c.workspace_id == ws).order_by(syncs.c.id)
        ).all()
    return [_sync(row) for row in rows]


def webhook_secret(bind: Bind, box: SecretBox, ws: int, sync_id: int) -> str | None:
    with reading(bind) as conn:
        sealed = conn.scalar(
            sa.select(syncs.c.webhook_secret).where(
                syncs.c.id == sync_id, syncs.c.workspace_id == ws
            )
        )
    return box.open(sealed)["secret"] if sealed else None


def settings_of(sync: Sync) -> dict[str, Any]:
    """What a user set on the sync (its secret aside): what `update` merges changes into."""
    return {name: getattr(sync, name) for name in SETTABLE if name != "webhook_secret"}


def update(bind: Bind, box: SecretBox, ws: int, sync_id: int, changes: Mapping[str, Any]) -> Sync:
    """Change some settings. A new schedule or zone of an enabled sync moves its next run."""
    now = utcnow()
    with writing(bind) as conn:
        current = _load(conn, ws, sync_id)
        merged = {**settings_of(current), **changes}
        if "schedule" in changes and "timezone" not in changes:
            merged["timezone"] = parse_schedule(merged["schedule"]).timezone or current.timezone
        checked = validate(merged, _workspace_zone(conn, ws))
        if "connection_id" in changes:
            _check_connection(conn, ws, checked["connection_id"])
        row = _columns(checked, box)
        if checked["webhook_url"] is None or (
            "webhook_secret" in changes and not changes["webhook_secret"]
        ):
            row["webhook_secret"] = None  # removed, or gone with the webhook
        timing_changed = (
            checked["schedule"] != current.schedule
            or checked["timezone"] != current.timezone
            or checked["enabled"] != current.enabled
        )
        if timing_changed:
            row["next_run_at"] = (
                first_fire(checked["schedule"], checked["timezone"], now)
                if checked["enabled"]
                else None
            )
            if checked["enabled"] and ("schedule" in changes or "timezone" in changes):
                _check_fires(row["next_run_at"], checked["schedule"])
        conn.execute(sa.update(syncs).where(syncs.c.id == sync_id).values(updated_at=now, **row))
        if current.enabled and not checked["enabled"]:  # switched off, not only changed
            _drop_queued(conn, sync_id)
        return _load(conn, ws, sync_id)


def set_enabled(bind: Bind, ws: int, sync_id: int, enabled: bool) -> Sync:
    """Switch a sync on (its next fire time is computed from now) or off (no further runs
    start; one in progress finishes)."""
    now = utcnow()
    with writing(bind) as conn:
        current = _load(conn, ws, sync_id)
        if enabled == current.enabled:
            return current
        next_run = first_fire(current.schedule, current.timezone, now) if enabled else None
        conn.execute(
            sa.update(syncs)
            .where(syncs.c.id == sync_id)
            .values(enabled=enabled, next_run_at=next_run, updated_at=now)
        )
        if not enabled:
            _drop_queued(conn, sync_id)
        return _load(conn, ws, sync_id)


def _drop_queued(conn: sa.Connection, sync_id: int) -> None:
    """Runs of the sync that were waiting for a worker will not start: they are recorded as
    skipped (their fire times stay taken, and the history says what became of them)."""
    conn.execute(
        sa.update(runs)
        .where(runs.c.sync_id == sync_id, runs.c.status == "queued")
        .values(
            status="skipped",
            finished_at=utcnow(),
            message="the sync was switched off before this run started",
        )
    )


def delete(bind: Bind, ws: int, sync_id: int) -> None:
    with writing(bind) as conn:
        _load(conn, ws, sync_id)
        conn.execute(  # runs that never started go with it; those that did stay on record
            sa.delete(runs).where(runs.c.sync_id == sync_id, runs.c.status == "queued")
        )
        conn.execute(sa.delete(fires).where(fires.c.sync_id == sync_id))
        conn.execute(sa.delete(syncs).where(syncs.c.id == sync_id))
