"""Syncs: what to import from where, how and when. CRUD with validation against the file
itself, the "Sync on" toggle, "run now", and the schedule's next fire times."""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from usersync import runqueue
from usersync.browse import preview_file
from usersync.errors import (
    Conflict,
    CsvError,
    FileRuleError,
    NotFound,
    SourceError,
    UsageError,
)
from usersync.mapping import ColumnMapping, MappingError, PropertyType, RowMapper
from usersync.reader import CsvOptions
from usersync.schedule import MAX_COUNT, parse_schedule, resolve_zone, start_at
from usersync.service import resolve_types
from usersync.store import syncs
from usersync.store.syncs import Sync
from usersync.web.api._common import DEFAULT_LIMIT, Limit, ResourceId, errors, page
from usersync.web.auth import WorkspaceDep
from usersync.web.deps import Services, ServicesDep
from usersync.web.schemas import (
    MAX_ID,
    RunStarted,
    ScheduleTimes,
    SyncCreate,
    SyncList,
    SyncPublic,
    SyncUpdate,
    reveal,
)

router = APIRouter(prefix="/syncs", tags=["syncs"])

# A change to one of these may make the mapping stop fitting the file: check it again.
_FILE_FIELDS = frozenset({"connection_id", "folder", "file", "mapping", "encoding", "delimiter"})


def public(sync: Sync) -> SyncPublic:
    return SyncPublic.model_validate(
        {
            **dataclasses.asdict(sync),
            "path": sync.path,
            "schedule_description": sync.schedule_words,
        }
    )


def _check_types(services: Services, ws: int, mapping: Mapping[str, Any]) -> None:
    """A property keeps its catalog type: a mapping that asks for another is refused now."""
    asked = {name: PropertyType(kind) for name, kind in mapping["types"].items()}
    resolve_types(services.engine, ws, mapping["properties"], asked)


def _check_file(services: Services, ws: int, values: Mapping[str, Any]) -> None:
    """When the sync's file can be read now, every column the mapping names must be in its
    header. A file that cannot be reached now is no reason to refuse the sync: its runs will
    say what is wrong."""
    if values["file"] is None:
        return
    path = posixpath.join(values["folder"], values["file"])
    options = CsvOptions(encoding=values["encoding"], delimiter=values["delimiter"] or ",")
    try:
        opened = services.connect(ws, values["connection_id"])
    except (NotFound, Conflict, SourceError):
        return  # no such connection (the store says so), key not confirmed, server unreachable
    with opened as source:
        try:
            header = preview_file(
                source, path, options, rows=0, max_size=services.settings.max_file_size
            ).columns
        except (SourceError, FileRuleError, CsvError):
            return
    mapping = values["mapping"]
    try:
        RowMapper(ColumnMapping(mapping["user_id"], mapping["properties"]), header)
    except MappingError as error:
        raise UsageError(f"mapping: {path}: {error.message}") from None


def check_sync(services: Services, ws: int, values: Mapping[str, Any]) -> None:
    """A sync's settings as the store checks them, its types against the catalog, and its
    mapping against the file's header (when the file can be read now); UsageError if not."""
    checked = syncs.validate(values)
    _check_types(services, ws, checked["mapping"])
    _check_file(services, ws, checked)


@router.get("", summary="List syncs", response_model=SyncList, responses=errors())
def list_syncs(
    services: ServicesDep,
    ws: WorkspaceDep,
    limit: Limit = DEFAULT_LIMIT,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="The previous `next`.")] = None,
) -> SyncList:
    found = [s for s in syncs.list_all(services.engine, ws) if after is None or s.id > after]
    shown, cursor = page(found[: limit + 1], limit, lambda s: s.id)
    return SyncList(items=[public(s) for s in shown], next=cursor)


@router.post(
    "",
    status_code=201,
    summary="Create a sync",
    description="The mapping is checked against the file's header when the file can be read "
    "now (columns it lacks: 422, naming them); a bad schedule is a 422 with the reason.",
    response_model=SyncPublic,
    responses=errors(),
)
def create_sync(
    body: SyncCreate,
    request: Request,
    response: Response,
    services: ServicesDep,
    ws: WorkspaceDep,
) -> SyncPublic:
    values = reveal(body, exclude_unset=False)
    check_sync(services, ws, values)
    created = syncs.create(services.engine, services.box, ws, values)
    response.headers["Location"] = str(request.url_for("get_sync", sync_id=created.id))
    return public(created)


@router.get("/{sync_id}", summary="Get a sync", response_model=SyncPublic, responses=errors(404))
def get_sync(sync_id: ResourceId, services: ServicesDep, ws: WorkspaceDep) -> SyncPublic:
    return public(syncs.get(services.engine, ws, sync_id))


@router.patch(
    "/{sync_id}",
    summary="Change a sync",
    description="Send only the fields to change; they are checked as on create.",
    response_model=SyncPublic,
    responses=errors(404),
)
def update_sync(
    sync_id: ResourceId, body: SyncUpdate, services: ServicesDep, ws: WorkspaceDep
) -> SyncPublic:
    changes = reveal(body, exclude_unset=True)
    if _FILE_FIELDS & set(changes):
        current = syncs.get(services.engine, ws, sync_id)
        check_sync(services, ws, {**syncs.settings_of(current), **changes})
    return public(syncs.update(services.engine, services.box, ws, sync_id, changes))


@router.delete(
    "/{sync_id}",
    status_code=204,
    summary="Delete a sync",
    description="Its queued runs are dropped; its past runs stay.",
    responses=errors(404),
)
def delete_sync(sync_id: ResourceId, services: ServicesDep, ws: WorkspaceDep) -> Response:
    syncs.delete(services.engine, ws, sync_id)
    return Response(status_code=204)


@router.post(
    "/{sync_id}/enable",
    summary="Switch a sync on",
    description='The "Sync on" toggle: its schedule runs from now on.',
    response_model=SyncPublic,
    responses=errors(404),
)
def enable(sync_id: ResourceId, services: ServicesDep, ws: WorkspaceDep) -> SyncPublic:
    return public(syncs.set_enabled(services.engine, ws, sync_id, True))


@router.post(
    "/{sync_id}/disable",
    summary="Switch a sync off",
    description="No further runs start; a run in progress finishes.",
    response_model=SyncPublic,
    responses=errors(404),
)
def disable(sync_id: ResourceId, services: ServicesDep, ws: WorkspaceDep) -> SyncPublic:
    return public(syncs.set_enabled(services.engine, ws, sync_id, False))


@router.post(
    "/{sync_id}/run",
    status_code=202,
    summary="Import now",
    description="Queues a run now, whatever the schedule (asking again while it waits "
    "returns the same run). Follow it at /api/runs/{run_id}. With `dry_run=true` the run "
    "reads and checks the file as an import would, and reports what it would create, update "
    "and reject, but applies nothing, leaves the file where it is and calls no webhook.",
    response_model=RunStarted,
    responses=errors(404),
)
def run_now(
    sync_id: ResourceId,
    services: ServicesDep,
    ws: WorkspaceDep,
    dry_run: Annotated[
        bool, Query(description="Check the file against the sync's mapping; apply nothing.")
    ] = False,
) -> RunStarted:
    return RunStarted(run_id=runqueue.enqueue(services.engine, ws, sync_id, dry_run=dry_run))


@router.get(
    "/{sync_id}/schedule/next",
    summary="The sync's next fire times",
    response_model=ScheduleTimes,
    responses=errors(404),
)
def schedule_next(
    sync_id: ResourceId,
    services: ServicesDep,
    ws: WorkspaceDep,
    count: Annotated[int, Query(ge=1, le=MAX_COUNT)] = 5,
    after: Annotated[
        datetime | None,
        Query(
            description="Start here instead of now (ISO 8601; without an offset: the sync's zone)."
        ),
    ] = None,
) -> ScheduleTimes:
    sync = syncs.get(services.engine, ws, sync_id)
    schedule = parse_schedule(sync.schedule)
    zone = resolve_zone(sync.timezone)
    times = schedule.next_times(start_at(after, zone), count, zone)
    return ScheduleTimes(
        description=schedule.describe(),
        timezone=zone.key,
        next=[moment.isoformat() for moment in times],
    )
