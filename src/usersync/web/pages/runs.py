"""Runs: the workspace's runs or one sync's history (with "Run now"), a page at a time; one
run with its live progress, its rejected rows and "Run again".

    GET  /runs[?sync=ID][&status=S][&after=CURSOR]
                                          runs, newest first; with `sync`, that sync's history
    GET  /runs/{id}                       one run
    GET  /runs/{id}/progress              its status block, polled by htmx until it finishes
                                          (and its sync's webhook has answered)
    GET  /runs/{id}/errors.csv            its rejected rows: the API's file
    POST /runs/{id}/again                 "Run again": a new run of the same sync
    POST /syncs/{id}/run                  "Run now"
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from usersync import runqueue, webhooks
from usersync.enums import FileChoice, RunStatus
from usersync.errors import Conflict
from usersync.files import format_size
from usersync.schedule import resolve_zone
from usersync.schema import utcnow
from usersync.store import runs, syncs, workspaces
from usersync.store.runs import Run, RunError
from usersync.store.syncs import Sync, SyncNotFound
from usersync.web.api._common import ResourceId, page
from usersync.web.api.runs import errors_download, first_errors
from usersync.web.deps import Services, ServicesDep
from usersync.web.pages.draft import not_editable
from usersync.web.pages.render import render
from usersync.web.pages.session import FormSessionDep, Session, SessionDep
from usersync.web.schemas import MAX_ID

router = APIRouter()

PAGE_SIZE = 50  # runs per page of the list

ACTIVE = frozenset({RunStatus.QUEUED.value, RunStatus.RUNNING.value})

STATUS_LABELS = {
    RunStatus.QUEUED.value: "Queued",
    RunStatus.RUNNING.value: "Running",
    RunStatus.SUCCEEDED.value: "Succeeded",
    RunStatus.PARTIAL.value: "Partial",
    RunStatus.FAILED.value: "Failed",
    RunStatus.SKIPPED.value: "Skipped",
}

STATUS_MEANINGS = {
    RunStatus.QUEUED.value: "Waiting for the worker to start it.",
    RunStatus.RUNNING.value: "Reading the file and importing its rows.",
    RunStatus.SUCCEEDED.value: "Every row of the file was imported.",
    RunStatus.PARTIAL.value: "Imported, except the rejected rows listed below.",
    RunStatus.FAILED.value: "Nothing was imported: the users are as they were before this run.",
    RunStatus.SKIPPED.value: "Nothing to import, so nothing was changed.",
}

# A dry run reads and checks the file as an import would, and applies nothing.
DRY_RUN_MEANINGS = {
    RunStatus.QUEUED.value: "Waiting for the worker to check the file.",
    RunStatus.RUNNING.value: "Reading and checking the file: nothing is applied.",
    RunStatus.SUCCEEDED.value: "A dry run: every row can be imported. Nothing was applied; "
    "the counts are what an import would do now.",
    RunStatus.PARTIAL.value: "A dry run: the file can be imported, except the rejected rows "
    "listed below. Nothing was applied.",
    RunStatus.FAILED.value: "A dry run that failed: an import would fail too. Nothing was applied.",
    RunStatus.SKIPPED.value: "Nothing to check, so nothing was read.",
}

TRIGGER_LABELS = {
    "cli": "Command line",
    "schedule": "Schedule",
    "manual": "Run now",
    "retry": "Retry",
}

FAILED_HINT = "Fix what the message says (the file, the sync or the server), then Run again."

SyncFilter = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="Only this sync's runs: its history.")
]
Cursor = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Runs older than this one.")]


def when(moment: datetime | None, zone: tzinfo = UTC) -> str:
    """A moment as people read it, in `zone`: "2026-05-01 09:30:12 CEST"."""
    if moment is None:
        return "—"
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def workspace_times(services: Services, session: Session) -> dict[str, Any]:
    """What a page's times need (`moment` of _run_macros.html): `when`, and the zone to show
    them in, the workspace's."""
    return {"when": when, "zone": workspaces.zone(services.engine, session.workspace_id)}


def spoken_seconds(seconds: float) -> str:
    """A duration as people say it: "0.4 s", "12 s", "3 min 5 s", "1 h 2 min"."""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def duration(run: Run) -> str:
    """How long the run took, or has taken so far; "—" while it waits to start."""
    if run.status == RunStatus.QUEUED:
        return "—"
    end = run.finished_at or utcnow()
    return spoken_seconds((end - run.started_at).total_seconds())


def count(number: int) -> str:
    return f"{number:,}"


def progress_text(run: Run) -> str:
    """What the progress bar shows, in words."""
    if run.status == RunStatus.QUEUED:
        return "Waiting to start."
    rows = f"{count(run.rows_read)} rows so far"
    if not run.file_size:
        return f"Opening the file; {rows}."
    percent = round(100 * (run.progress or 0.0))
    read, size = format_size(run.bytes_read), format_size(run.file_size)
    return f"{read} of {size} read ({percent}%), {rows}."


HELPERS: dict[str, Any] = {
    "when": when,
    "duration": duration,
    "count": count,
    "progress_text": progress_text,
    "status_labels": STATUS_LABELS,
    "status_meanings": STATUS_MEANINGS,
    "dry_run_meanings": DRY_RUN_MEANINGS,
    "trigger_labels": TRIGGER_LABELS,
    "active_statuses": ACTIVE,
    "failed_hint": FAILED_HINT,
    "webhook_delivered": webhooks.delivered,
}


@dataclass(frozen=True)
class SyncSummary:
    """A sync as its history's header shows it."""

    sync: Sync
    title: str
    file: str
    schedule: str
    zone: tzinfo
    not_editable: str | None  # why the wizard cannot change it, if it cannot


def title_of(sync: Sync) -> str:
    """What a sync is called: its name, else the file (or folder) it imports."""
    return sync.name or sync.path or sync.folder


def summarize(sync: Sync) -> SyncSummary:
    """The header of the sync's history: what it imports, and when, in words."""
    if sync.file_choice == FileChoice.NEWEST:
        file = "The newest eligible file of the folder"
    elif sync.file_choice == FileChoice.ALL_NEW:
        file = "Every eligible file of the folder not imported yet"
    else:
        file = sync.file or "—"
    return SyncSummary(
        sync=sync,
        title=title_of(sync),
        file=file,
        schedule=sync.schedule_words,
        zone=resolve_zone(sync.timezone),
        not_editable=not_editable(sync),
    )


def _list_url(sync_id: int | None, status: str | None, after: int | None = None) -> str:
    query = {"sync": sync_id, "status": status, "after": after}
    given = {name: value for name, value in query.items() if value is not None}
    return "/runs" + (f"?{urlencode(given)}" if given else "")


def _filters(sync_id: int | None, status: str | None) -> list[tuple[str, str, bool]]:
    """The status filter's links: (label, url, whether it is the one shown)."""
    choices: list[tuple[str, str | None]] = [("All", None)]
    choices += [(STATUS_LABELS[s.value], s.value) for s in _FILTERED]
    return [(label, _list_url(sync_id, value), value == status) for label, value in choices]


# The statuses the runs can be filtered by, in the order the filter offers them.
_FILTERED = (
    RunStatus.FAILED,
    RunStatus.PARTIAL,
    RunStatus.SUCCEEDED,
    RunStatus.SKIPPED,
    RunStatus.RUNNING,
    RunStatus.QUEUED,
)
StatusFilter = Annotated[RunStatus | None, Query(description="Only runs of this status.")]


@router.get("/runs", response_class=HTMLResponse, include_in_schema=False)
def runs_page(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    sync: SyncFilter = None,
    after: Cursor = None,
    status: StatusFilter = None,
) -> HTMLResponse:
    """The workspace's runs, newest first, or with `sync` the history of that sync; with
    `status`, only the runs of that status."""
    ws = session.workspace_id
    chosen = summarize(syncs.get(services.engine, ws, sync)) if sync is not None else None
    found = runs.list_runs(
        services.engine, ws, sync_id=sync, limit=PAGE_SIZE + 1, before=after, status=status
    )
    shown, older = page(found, PAGE_SIZE, lambda run: run.id)
    return render(
        request,
        "runs.html",
        session=session,
        sync=chosen,
        runs=shown,
        sync_titles={s.id: title_of(s) for s in syncs.list_all(services.engine, ws)},
        status_filter=status,
        filters=_filters(sync, status),
        newest_url=_list_url(sync, status) if after is not None else None,
        older_url=_list_url(sync, status, older) if older is not None else None,
        zone=chosen.zone if chosen else workspaces.zone(services.engine, ws),
        **HELPERS,
    )


def _sync_of(services: Services, run: Run) -> SyncSummary | None:
    """The run's sync, if it has one that still exists."""
    if run.sync_id is None:
        return None
    try:
        return summarize(syncs.get(services.engine, run.workspace_id, run.sync_id))
    except SyncNotFound:
        return None


# How long after a run ends its page keeps polling for the answer of its sync's webhook (the
# worker's outbox calls it once the calls of runs that ended before are made, trying again
# for up to about 30 s).
WEBHOOK_WAIT = timedelta(seconds=60)


def _awaits_webhook(run: Run, sync: SyncSummary | None) -> bool:
    """Whether the run has ended and the answer of its sync's webhook is still to come."""
    if sync is None or run.status in ACTIVE or run.finished_at is None:
        return False
    hooked = sync.sync.webhook_url is not None and webhooks.wanted(sync.sync.webhook_on, run)
    recent = utcnow() - run.finished_at < WEBHOOK_WAIT
    return hooked and recent and run.webhook_delivery is None


def _shown_errors(services: Services, run: Run) -> list[RunError]:
    if run.status in ACTIVE or not run.rows_rejected or run.errors_deleted_at is not None:
        return []
    return first_errors(services.engine, run.id)


def _run_page(
    request: Request,
    services: Services,
    session: Session,
    run_id: int,
    template: str,
    *,
    announce: bool = False,
) -> HTMLResponse:
    run = runqueue.get_run(services.engine, session.workspace_id, run_id)
    sync = _sync_of(services, run)
    errors = _shown_errors(services, run)
    return render(
        request,
        template,
        session=session,
        run=run,
        sync=sync,
        errors=errors,
        more_errors=max(run.rows_rejected - len(errors), 0),
        announce=announce,
        awaits_webhook=_awaits_webhook(run, sync),
        zone=sync.zone if sync else workspaces.zone(services.engine, session.workspace_id),
        **HELPERS,
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
def run_page(
    request: Request, run_id: ResourceId, services: ServicesDep, session: SessionDep
) -> HTMLResponse:
    """One run: status, timing, file, counts, its live progress and its rejected rows."""
    return _run_page(request, services, session, run_id, "run.html")


@router.get("/runs/{run_id}/progress", response_class=HTMLResponse, include_in_schema=False)
def run_progress(
    request: Request, run_id: ResourceId, services: ServicesDep, session: SessionDep
) -> HTMLResponse:
    """The run's status block, polled while the run is queued or running. Once it has
    finished the block comes without its polling trigger, and the page announces the outcome."""
    return _run_page(request, services, session, run_id, "_run_live.html", announce=True)


@router.get("/runs/{run_id}/errors.csv", include_in_schema=False)
def run_errors_csv(
    run_id: ResourceId, services: ServicesDep, session: SessionDep
) -> StreamingResponse:
    return errors_download(services.engine, session.workspace_id, run_id)


def _start(services: Services, ws: int, sync_id: int, dry_run: bool) -> RedirectResponse:
    run_id = runqueue.enqueue(services.engine, ws, sync_id, dry_run=dry_run)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/runs/{run_id}/again", include_in_schema=False)
def run_again(
    run_id: ResourceId, services: ServicesDep, session: FormSessionDep
) -> RedirectResponse:
    """A new run of the run's sync (a dry run again after a dry run), shown as it starts."""
    run = runqueue.get_run(services.engine, session.workspace_id, run_id)
    if run.sync_id is None:
        raise Conflict(
            f"run {run.id} was an import from the command line, not a sync's: "
            "run `usersync import` again to repeat it"
        )
    return _start(services, session.workspace_id, run.sync_id, run.dry_run)


@router.post("/runs/{run_id}/cancel", include_in_schema=False)
def cancel(run_id: ResourceId, services: ServicesDep, session: FormSessionDep) -> RedirectResponse:
    """Cancel a queued or running run; one that ended meanwhile is shown as it ended."""
    with contextlib.suppress(Conflict):
        runqueue.cancel(services.engine, session.workspace_id, run_id)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/syncs/{sync_id}/run", include_in_schema=False)
def run_now(
    sync_id: ResourceId,
    services: ServicesDep,
    session: FormSessionDep,
    dry_run: Annotated[bool, Form()] = False,
) -> RedirectResponse:
    """The sync's "Run now": a run straight away, whatever its schedule; its "Check the
    file": the same as a dry run, which applies nothing."""
    return _start(services, session.workspace_id, sync_id, dry_run)


@router.post("/syncs/{sync_id}/delete", include_in_schema=False)
def delete(sync_id: ResourceId, services: ServicesDep, session: FormSessionDep) -> RedirectResponse:
    """The sync is gone; its past runs and the users it imported stay."""
    syncs.delete(services.engine, session.workspace_id, sync_id)
    return RedirectResponse(_list_url(None, None), status_code=303)


# After the sync's other POST addresses, which this one's {switch} would match too.
@router.post("/syncs/{sync_id}/{switch}", include_in_schema=False)
def switch(
    sync_id: ResourceId,
    switch: Literal["on", "off"],
    services: ServicesDep,
    session: FormSessionDep,
) -> RedirectResponse:
    """On: the sync runs on its schedule again, from now. Off: it runs only when asked to
    ("Run now"); a run in progress finishes."""
    syncs.set_enabled(services.engine, session.workspace_id, sync_id, switch == "on")
    return RedirectResponse(_list_url(sync_id, None), status_code=303)
