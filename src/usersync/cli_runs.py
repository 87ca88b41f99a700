"""`usersync runs`: the workspace's runs (imports from the command line and syncs' runs),
newest first, as a table or as the REST API's documents."""

from __future__ import annotations

import click

from usersync import runqueue
from usersync.cli_import import db_option, workspace_option
from usersync.cli_output import emit_json, handle_errors, json_option, shown, table
from usersync.config import load_settings
from usersync.enums import RunStatus
from usersync.service import open_database, workspace_id
from usersync.store import runs as runs_store
from usersync.store import syncs
from usersync.store.runs import Run


def run_document(run: Run) -> dict[str, object]:
    """The run as `GET /api/runs` lists it."""
    # Loaded here: pydantic costs every other command 0.1 s of start-up.
    from usersync.web.schemas import RunPublic

    return RunPublic.model_validate(run).model_dump(mode="json")


def status_label(run: Run) -> str:
    """The run's status, and whether it was a dry run: "partial (dry run)"."""
    return f"{run.status} (dry run)" if run.dry_run else run.status


def _rejected(run: Run) -> str:
    """The run's rejected rows, and whether their report is gone (`usersync errors` says why)."""
    gone = " (report deleted)" if run.errors_deleted_at is not None else ""
    return f"{run.rows_rejected}{gone}"


@click.command()
@click.option("--sync", "sync_id", type=int, help="Only this sync's runs.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--before", type=int, help="Older runs than this one (the previous page's `next`).")
@click.option(
    "--status",
    type=click.Choice([status.value for status in RunStatus]),
    help="Only runs of this status.",
)
@db_option
@workspace_option
@json_option
@handle_errors
def runs(
    sync_id: int | None,
    limit: int,
    before: int | None,
    status: str | None,
    db_url: str | None,
    workspace: str,
    as_json: bool,
) -> None:
    """List runs, newest first, with their counts: `usersync errors RUN` writes one's
    rejected rows."""
    with open_database(load_settings(db_url=db_url)) as engine:
        ws = workspace_id(engine, workspace)
        if sync_id is not None:
            syncs.get(engine, ws, sync_id)  # "there is no sync N" for another workspace's
        found = runs_store.list_runs(
            engine, ws, sync_id=sync_id, limit=limit + 1, before=before, status=status
        )
    shown = found[:limit]
    cursor = shown[-1].id if len(found) > limit else None
    if as_json:
        emit_json({"items": [run_document(run) for run in shown], "next": cursor})
        return
    # UNCHANGED only where a shown run skipped unchanged users (--skip-unchanged).
    unchanged = any(run.users_unchanged for run in shown)
    table(
        ["RUN", "STATUS", "STARTED", "READ", "CREATED", "UPDATED"]
        + (["UNCHANGED"] if unchanged else [])
        + ["REJECTED", "FILE"],
        [
            (
                run.id,
                status_label(run),
                run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                run.rows_read,
                run.users_created,
                run.users_updated,
                *([run.users_unchanged] if unchanged else []),
                _rejected(run),
                run.path,
            )
            for run in shown
        ],
        empty=f"No {status} runs." if status else "No runs yet.",
    )
    if cursor:
        again = "".join(
            f" {flag} {value}"
            for flag, value in (("--sync", sync_id), ("--status", status))
            if value
        )
        click.echo(f"more: usersync runs{again} --before {cursor}")


@click.command()
@click.argument("run_id", type=int)
@db_option
@workspace_option
@json_option
@handle_errors
def cancel(run_id: int, db_url: str | None, workspace: str, as_json: bool) -> None:
    """Cancel a queued or running run: a queued one ends at once, a running one is stopped by
    its worker within a few seconds; either applies nothing and is not tried again. Exits 2
    for a run that has ended."""
    with open_database(load_settings(db_url=db_url)) as engine:
        run = runqueue.cancel(engine, workspace_id(engine, workspace), run_id)
    if as_json:
        emit_json(run_document(run))
    elif run.status == RunStatus.RUNNING:
        click.echo(f"Run {run.id} is running: its worker stops it within a few seconds.")
    else:
        click.echo(f"Run {run.id} {run.status}: {shown(run.message or '')}")
