"""Runs: the executions of syncs, with their live progress and their rejected rows."""

from __future__ import annotations

import dataclasses
from itertools import islice
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine

from usersync import reports, runqueue
from usersync.enums import RunStatus
from usersync.store import runs, syncs
from usersync.store.runs import Run, RunError
from usersync.web.api._common import DEFAULT_LIMIT, Limit, ResourceId, errors, page
from usersync.web.auth import WorkspaceDep
from usersync.web.deps import ServicesDep
from usersync.web.schemas import MAX_ID, RowProblem, RunDetail, RunList, RunPublic

router = APIRouter(prefix="/runs", tags=["runs"])

FIRST_ERRORS = 100  # rejected rows shown in a run's document; the CSV has them all


def public(run: Run) -> RunPublic:
    return RunPublic.model_validate(_fields(run))


def _fields(run: Run) -> dict[str, object]:
    return {**dataclasses.asdict(run), "progress": run.progress}


def first_errors(engine: Engine, run_id: int) -> list[RunError]:
    """The run's first FIRST_ERRORS rejected rows (its error report has them all)."""
    return list(islice(runs.iter_run_errors(engine, run_id), FIRST_ERRORS))


def errors_download(engine: Engine, ws: int, run_id: int) -> StreamingResponse:
    """The workspace's run's rejected rows as a CSV file to download; RunNotFound for
    another workspace's run, RunErrorsDeleted when its rows were let go. The API and the web
    UI answer with this same file."""
    run = runqueue.get_run(engine, ws, run_id)
    runs.check_errors_kept(run)
    return StreamingResponse(
        reports.errors_csv(runs.iter_run_errors(engine, run.id)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="run-{run.id}-errors.csv"'},
    )


@router.get(
    "",
    summary="List runs, newest first",
    response_model=RunList,
    responses=errors(404),
)
def list_runs(
    services: ServicesDep,
    ws: WorkspaceDep,
    sync_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only this sync's runs.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    after: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="The previous page's `next`: older runs than it."),
    ] = None,
    status: Annotated[RunStatus | None, Query(description="Only runs of this status.")] = None,
) -> RunList:
    if sync_id is not None:
        syncs.get(services.engine, ws, sync_id)  # 404 for another workspace's sync
    found = runs.list_runs(
        services.engine, ws, sync_id=sync_id, limit=limit + 1, before=after, status=status
    )
    shown, cursor = page(found, limit, lambda run: run.id)
    return RunList(items=[public(run) for run in shown], next=cursor)


@router.get(
    "/{run_id}",
    summary="Get a run, with its progress and first rejected rows",
    description="Poll it while the run is queued or running: bytes_read and rows_read grow "
    "as the file is read, up to file_size.",
    response_model=RunDetail,
    responses=errors(404),
)
def get_run(run_id: ResourceId, services: ServicesDep, ws: WorkspaceDep) -> RunDetail:
    run = runqueue.get_run(services.engine, ws, run_id)
    first = first_errors(services.engine, run.id)
    return RunDetail.model_validate(
        {
            **_fields(run),
            "errors": [RowProblem.model_validate(error._asdict()) for error in first],
            "errors_url": f"/api/runs/{run.id}/errors.csv",
        }
    )


@router.post(
    "/{run_id}/cancel",
    status_code=202,
    summary="Cancel a queued or running run",
    description='A queued run ends failed at once ("cancelled before it started"). A running '
    "one stops within a few seconds, at the latest just before its import would commit, and "
    "ends failed with nothing applied; a run that has already committed ends as it would have. "
    "Neither is tried again. A running one whose process stopped answering (its lease ran "
    "out) ends failed at once. Answers with the run as it is now (`cancel_requested_at` set); "
    "follow it at /api/runs/{run_id}. Cancelling a cancelled run again answers the same; 409 "
    "for a run that ended otherwise.",
    response_model=RunPublic,
    responses=errors(404, 409),
)
def cancel_run(run_id: ResourceId, services: ServicesDep, ws: WorkspaceDep) -> RunPublic:
    return public(runqueue.cancel(services.engine, ws, run_id))


@router.get(
    "/{run_id}/errors.csv",
    summary="Download a run's rejected rows as CSV",
    description="Columns: line, column, value, message.",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **errors(404, 410),
    },
)
def errors_csv(run_id: ResourceId, services: ServicesDep, ws: WorkspaceDep) -> StreamingResponse:
    return errors_download(services.engine, ws, run_id)
