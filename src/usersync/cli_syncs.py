"""`usersync sync`: the workspace's syncs from the command line: list them, run one now in
this process (as the web UI's Run now, waiting for its end), switch one on or off."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
from sqlalchemy import Engine

from usersync import runqueue
from usersync.cli_import import ProgressLine, db_option, workspace_option
from usersync.cli_output import emit_json, handle_errors, json_option, shown, table
from usersync.cli_runs import run_document, status_label
from usersync.config import load_settings
from usersync.enums import RunStatus
from usersync.errors import UsersyncError
from usersync.secretbox import SecretBox
from usersync.service import open_database, workspace_id
from usersync.store import runs, syncs
from usersync.store.runs import Run
from usersync.store.syncs import Sync
from usersync.worker import Worker

# Seconds a webhook may take to answer before `sync run` says that it waits for it.
_QUIET = 1.0
# As `usersync import`'s: 1 when rows were rejected, a failure's own code otherwise.
_EXIT = {RunStatus.PARTIAL.value: 1, RunStatus.FAILED.value: UsersyncError.exit_code}


@click.group(name="sync")
def sync() -> None:
    """List syncs, run one now, switch one on or off (syncs are made in the web UI or
    through the REST API)."""


def sync_document(sync: Sync) -> dict[str, Any]:
    """The sync as `GET /api/syncs` lists it."""
    # Loaded here: the web app's models cost every other command 0.2 s of start-up.
    from usersync.web.api.syncs import public

    return public(sync).model_dump(mode="json")


def _when(sync: Sync) -> str:
    return f"{sync.schedule_words} ({sync.timezone})"


@sync.command("list")
@db_option
@workspace_option
@json_option
@handle_errors
def list_syncs(db_url: str | None, workspace: str, as_json: bool) -> None:
    """List the workspace's syncs: whether each is on, its schedule, next and last run."""
    with open_database(load_settings(db_url=db_url)) as engine:
        ws = workspace_id(engine, workspace)
        found = syncs.list_all(engine, ws)
        last = runs.newest_of_syncs(engine, ws)
    if as_json:
        emit_json({"items": [sync_document(s) for s in found]})
        return
    table(
        ["SYNC", "NAME", "ON", "SCHEDULE", "NEXT RUN", "LAST RUN", "READS"],
        [
            (
                s.id,
                s.name or "",
                "on" if s.enabled else "off",
                _when(s),
                s.next_run_at.strftime("%Y-%m-%d %H:%M UTC") if s.next_run_at else "",
                f"{last[s.id].id} {status_label(last[s.id])}" if s.id in last else "",
                s.path or f"{s.folder} ({s.file_choice})",
            )
            for s in found
        ],
        empty="No syncs yet: make one in the web UI (usersync serve) or with POST /api/syncs.",
    )


@sync.command("run")
@click.argument("sync_id", type=int)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read and check the file and count what would change; apply nothing, leave the file "
    "where it is and call no webhook.",
)
@click.option(
    "--progress/--no-progress", default=None, help="Show progress (default: on a terminal)."
)
@db_option
@workspace_option
@json_option
@handle_errors
def run(
    sync_id: int,
    dry_run: bool,
    progress: bool | None,
    db_url: str | None,
    workspace: str,
    as_json: bool,
) -> None:
    """Run a sync now, whatever its schedule and whether it is on, and wait for its end:
    its file choice, mapping, after-import action and webhook apply, as for Run now in the
    web UI. Exits as `usersync import` does: 1 if rows were rejected, 5 if the run failed."""
    settings = load_settings(db_url=db_url)
    show_progress = sys.stderr.isatty() if progress is None else progress
    with open_database(settings) as engine:
        ws = workspace_id(engine, workspace)
        sync = syncs.get(engine, ws, sync_id)
        run_id = runqueue.enqueue(engine, ws, sync.id, dry_run=dry_run)
        runner = Worker(
            settings,
            engine,
            SecretBox.from_settings(settings),
            progress=ProgressLine(sys.stderr) if show_progress else None,
        )
        finished = _run_to_its_end(engine, runner, run_id)
    if as_json:
        emit_json({"items": [run_document(r) for r in finished]})
    else:
        for done in finished:
            click.echo(_summary(done))
    worst = max((_EXIT.get(r.status, 0) for r in finished), default=0)
    failed = [r for r in finished if r.status == RunStatus.FAILED.value]
    for r in failed:
        click.secho(f"usersync: run {r.id} failed: {shown(r.message or '')}", fg="red", err=True)
    if worst:
        sys.exit(worst)


def _run_to_its_end(engine: Engine, runner: Worker, run_id: int) -> list[Run]:
    """Execute queued run `run_id` here, once its sync has no other run going and its file has
    stopped changing; or, if another worker starts it first, wait for that worker to end it.
    The runs it made, ended."""
    told: set[str] = set()

    def tell(line: str) -> None:
        if line not in told:
            click.echo(line, err=True)
            told.add(line)

    while True:
        claimed = runqueue.claim(engine, runner.name, lease=runner.options.lease, only=run_id)
        if claimed is not None:
            try:
                made = runner.execute(claimed)
                if not runner.outbox.wait(_QUIET):
                    click.echo("Waiting for the sync's webhook to answer...", err=True)
                    runner.outbox.wait()
            except KeyboardInterrupt:  # the run ends failed, without a retry
                runner.give_up(UsersyncError("stopped (Ctrl-C) before its outcome was recorded"))
                raise
            found = [runs.get_run(engine, made_id) for made_id in made]
            ended = [r for r in found if r is not None and r.status != RunStatus.QUEUED]
            if ended:
                return ended
        current = runs.get_run(engine, run_id)
        if current is None:
            raise UsersyncError(
                f"run {run_id} is gone: its sync was deleted before it ran; nothing was imported"
            )
        if current.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return [current]
        if current.status == RunStatus.QUEUED and current.message:
            tell(
                f"run {run_id} waits: {shown(current.message or '')}"
            )  # e.g. its file is still written
        else:
            tell(_waiting_for(engine, current))
        # A worker that died holding the sync's run lets it go when its lease ends.
        runner.recover()
        time.sleep(runner.options.poll)


def _waiting_for(engine: Engine, queued: Run) -> str:
    if queued.status == RunStatus.RUNNING:
        return f"run {queued.id} was started by worker {queued.worker}: waiting for its end"
    going = _running(engine, queued)
    which = f"run {going[0].id}" if going else "its current run"
    return f"sync {queued.sync_id} is running {which}: run {queued.id} starts when it ends"


def _running(engine: Engine, run: Run) -> list[Run]:
    """The runs of `run`'s sync that are running."""
    return runs.list_runs(
        engine, run.workspace_id, sync_id=run.sync_id, status=RunStatus.RUNNING, limit=20
    )


def _summary(run: Run) -> str:
    if run.status == RunStatus.FAILED.value:
        return f"Run {run.id} failed ({run.path})"  # why: on stderr
    would = "would be " if run.dry_run else ""
    text = (
        f"Run {run.id} {run.status}{' (dry run: nothing applied)' if run.dry_run else ''}: "
        f"{run.rows_read:,} rows read, {run.users_created:,} {would}created, "
        f"{run.users_updated:,} {would}updated, "
        + (f"{run.users_unchanged:,} unchanged, " if run.users_unchanged else "")
        + f"{run.rows_rejected:,} rejected ({run.path})"
    )
    if run.status == RunStatus.SKIPPED.value and run.message:
        text += f": {shown(run.message)}"
    if run.rows_rejected:
        text += f"\n  the rejected rows: usersync errors {run.id} --output errors.csv"
    return text


def _switch_command(enabled: bool, summary: str) -> click.Command:
    """`usersync sync on ID` or `usersync sync off ID`."""

    @click.argument("sync_id", type=int)
    @db_option
    @workspace_option
    @json_option
    @handle_errors
    def switch(sync_id: int, db_url: str | None, workspace: str, as_json: bool) -> None:
        _switch(sync_id, enabled, db_url, workspace, as_json)

    return click.command("on" if enabled else "off", help=summary)(switch)


sync.add_command(
    _switch_command(
        True, "Switch a sync on: its schedule runs from now on (as the web UI's Sync on)."
    )
)
sync.add_command(
    _switch_command(False, "Switch a sync off: no further runs start (one in progress finishes).")
)


def _switch(sync_id: int, enabled: bool, db_url: str | None, workspace: str, as_json: bool) -> None:
    with open_database(load_settings(db_url=db_url)) as engine:
        ws = workspace_id(engine, workspace)
        switched = syncs.set_enabled(engine, ws, sync_id, enabled)
    if as_json:
        emit_json(sync_document(switched))
        return
    name = f" ({switched.name})" if switched.name else ""
    if not switched.enabled:
        click.echo(f"Sync {switched.id}{name} is off.")
        return
    next_run = switched.next_run_at
    when = next_run.strftime("%Y-%m-%d %H:%M UTC") if next_run else "none: its schedule is over"
    click.echo(f"Sync {switched.id}{name} is on: {_when(switched)}; next run {when}.")
