"""`usersync import`, `user`, `users` and `errors`: the User 360 side of the command line."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import click
from sqlalchemy import Engine

from usersync.cli_output import (
    cell,
    counted,
    emit_json,
    error_json,
    handle_errors,
    json_option,
    located,
    shown,
    stop_on_sigterm,
    table,
)
from usersync.cli_remote import connect_args, csv_format_options, csv_options, remote_options
from usersync.config import load_settings
from usersync.enums import RunStatus
from usersync.errors import NotFound, UsageError
from usersync.exports import user_document
from usersync.files import format_size, require_utf8_path
from usersync.importer import ImportSpec, Progress, RunResult
from usersync.mapping import ColumnMapping, EmptyCells, PropertyType
from usersync.reports import errors_csv
from usersync.schedule import resolve_zone
from usersync.service import (
    DEFAULT_WORKSPACE,
    delete_user,
    get_user,
    import_remote_file,
    list_users,
    open_database,
)
from usersync.store import ConflictMode, runs
from usersync.store import users as user_store

db_option = click.option("--db", "db_url", help="Database URL (default: USERSYNC_DB, else SQLite).")
workspace_option = click.option(
    "--workspace", default=DEFAULT_WORKSPACE, show_default=True, help="The workspace to use."
)


def _pairs(values: tuple[str, ...], option: str, shape: str) -> dict[str, str]:
    """`--option NAME=VALUE` values by name; `shape` is how the option's help writes one."""
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise UsageError(f"{option} takes {shape}, got {value!r}")
        if name.strip() in pairs:
            raise UsageError(f"{option} names {name.strip()!r} twice")
        pairs[name.strip()] = target.strip()
    return pairs


def _types(values: tuple[str, ...]) -> dict[str, PropertyType]:
    kinds = {}
    for name, kind in _pairs(values, "--type", "PROPERTY=TYPE").items():
        try:
            kinds[name] = PropertyType(kind.lower())
        except ValueError:
            choices = ", ".join(t.value for t in PropertyType)
            raise UsageError(f"--type {name}={kind}: the type must be one of {choices}") from None
    return kinds


class ProgressLine:
    """Progress on stderr: one rewritten line on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()

    def __call__(self, progress: Progress) -> None:
        if progress.applying:
            text = f"applying {progress.rows_read - progress.rows_rejected:,} rows..."
        else:
            total = f" of {format_size(progress.total_bytes)}" if progress.total_bytes else ""
            text = (
                f"read {format_size(progress.bytes_read)}{total}, {progress.rows_read:,} rows"
                f" ({progress.rows_rejected:,} rejected)"
            )
        if self._tty:
            self._stream.write("\r\033[K" + text)
            if progress.applying:
                self._stream.write("\n")
        else:
            self._stream.write(text + "\n")
        self._stream.flush()


def _result_document(run_id: int, result: RunResult, dry_run: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "run_id": run_id,
        "status": result.status.value,
        "dry_run": dry_run,
        "rows_read": result.rows_read,
        "users_created": result.users_created,
        "users_updated": result.users_updated,
        "users_unchanged": result.users_unchanged,
        "rows_rejected": result.rows_rejected,
        "errors": [
            {"line": e.line, "column": e.column, "value": e.value, "message": e.message}
            for e in result.errors
        ],
        "bytes_read": result.bytes_read,
        "seconds": round(result.seconds, 3),
    }
    if result.error is not None:
        doc["message"] = result.error.message
        doc["error"] = error_json(result.error)
    return doc


@click.command("import")
@remote_options
@click.option("--user-id", "user_id", required=True, metavar="COLUMN", help="Column of userId.")
@click.option("--map", "maps", multiple=True, metavar="PROPERTY=COLUMN", help="Map a column.")
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="PROPERTY=TYPE",
    help="string (default), number, integer, boolean, date or datetime.",
)
@click.option(
    "--conflict",
    type=click.Choice(["update", "replace"]),
    default="update",
    show_default=True,
    help="update: change mapped properties; replace: the record becomes the row.",
)
@click.option(
    "--empty-cells",
    type=click.Choice(["ignore", "clear"]),
    default="ignore",
    show_default=True,
    help="What an empty mapped cell does in update mode.",
)
@click.option(
    "--skip-unchanged",
    is_flag=True,
    help="Leave a user the file does not change as it is (its updated time too), and count it "
    "as unchanged, not updated.",
)
@csv_format_options
@click.option("--tz", "zone_name", help="Time zone of naive datetimes (default UTC).")
@click.option("--dry-run", is_flag=True, help="Check everything and count, but write nothing.")
@click.option("--max-rejected", type=click.IntRange(0), help="Fail if more rows are rejected.")
@click.option(
    "--progress/--no-progress", default=None, help="Progress on stderr (default: on a terminal)."
)
@db_option
@workspace_option
@handle_errors
def import_(
    user_id: str,
    maps: tuple[str, ...],
    types: tuple[str, ...],
    conflict: str,
    empty_cells: str,
    skip_unchanged: bool,
    encoding: str | None,
    delimiter: str | None,
    zone_name: str | None,
    dry_run: bool,
    max_rejected: int | None,
    progress: bool | None,
    db_url: str | None,
    workspace: str,
    **opts: Any,
) -> None:
    """Import the file at URL into the User 360 store."""
    stop_on_sigterm()
    settings = load_settings(db_url=db_url)
    location, credentials, host_keys = connect_args(settings, opts)
    require_utf8_path(location.path)
    spec = ImportSpec(
        path=location.path,
        mapping=ColumnMapping(
            user_id=user_id,
            properties=_pairs(maps, "--map", "PROPERTY=COLUMN"),
            types=_types(types),
        ),
        conflict=ConflictMode(conflict),
        empty_cells=EmptyCells(empty_cells),
        skip_unchanged=skip_unchanged,
        csv=csv_options(encoding, delimiter),
        zone=resolve_zone(zone_name),
        dry_run=dry_run,
        max_rejected=max_rejected,
        max_size=settings.max_file_size,
    )
    show_progress = sys.stderr.isatty() if progress is None else progress
    with open_database(settings) as engine:
        outcome = import_remote_file(
            settings,
            engine,
            location,
            credentials,
            host_keys,
            spec,
            workspace=workspace,
            progress=ProgressLine(sys.stderr) if show_progress else None,
        )
    result = outcome.result
    if outcome.unrecorded is not None:
        click.secho(f"usersync: {shown(outcome.unrecorded)}", fg="yellow", err=True)
    if opts["as_json"]:
        emit_json(_result_document(outcome.run_id, result, dry_run))
    else:
        _print_summary(outcome.run_id, result, dry_run)
    if result.error is not None:
        click.secho(f"usersync: {shown(result.error.message)}", fg="red", err=True)
        sys.exit(result.error.exit_code)
    if result.status is RunStatus.PARTIAL:
        sys.exit(1)


def _print_summary(run_id: int, result: RunResult, dry_run: bool) -> None:
    def verb(count: int) -> str:
        return "would be" if dry_run else "was" if count == 1 else "were"

    created, updated = result.users_created, result.users_updated
    unchanged = result.users_unchanged
    left = f"{unchanged:,} {verb(unchanged)} unchanged, " if unchanged else ""
    click.echo(
        f"Run {run_id} {result.status.value} in {result.seconds:.1f} s: "
        f"{counted(result.rows_read, 'row')} read, "
        f"{counted(created, 'user')} {verb(created)} created, "
        f"{updated:,} {verb(updated)} updated, {left}"
        f"{counted(result.rows_rejected, 'row')} rejected."
    )
    for error in result.errors[:10]:
        click.echo(f"  {located(error.line, error.column)}: {shown(error.message)}")
    if result.rows_rejected > 10:
        click.echo(f"  ... the full list: usersync errors {run_id} --output errors.csv")


@click.command()
@click.argument("user_id")
@click.option("--delete", is_flag=True, help="Delete the record instead (an erasure request, say).")
@db_option
@workspace_option
@json_option
@handle_errors
def user(user_id: str, delete: bool, db_url: str | None, workspace: str, as_json: bool) -> None:
    """Show one user's record (exit 1 if there is none), or delete it."""
    with open_database(load_settings(db_url=db_url)) as engine:
        if delete:
            _delete_user(engine, workspace, user_id, as_json)
            return
        record = get_user(engine, workspace, user_id)
    if record is None:
        raise UserNotFound(user_id, workspace)
    if as_json:
        emit_json(user_document(record))
        return
    created, updated = cell(record.created_at), cell(record.updated_at)
    click.echo(f"{cell(record.user_id)}  (created {created}, updated {updated})")
    table(["PROPERTY", "VALUE"], sorted(record.properties.items()), empty="  no properties")


def _delete_user(engine: Engine, workspace: str, user_id: str, as_json: bool) -> None:
    try:
        delete_user(engine, workspace, user_id)
    except user_store.UserNotFound:
        raise UserNotFound(user_id, workspace) from None
    if as_json:
        emit_json({"deleted": user_id})
    else:
        click.echo(f"Deleted user {user_id!r}: an import of a file that has it makes it anew.")


class UserNotFound(NotFound):
    """`usersync user` of a userId the workspace lacks: exit 1, as the contract has it (and
    `handle_errors` says it, as JSON too with --json: code "user_not_found")."""

    exit_code = 1

    def __init__(self, user_id: str, workspace: str) -> None:
        super().__init__(f"no user {user_id!r} in workspace {workspace!r}")


@click.command()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--after", help="Continue after this userId (the previous page's `next`).")
@click.option("--search", help="Only userIds that contain this text.")
@db_option
@workspace_option
@json_option
@handle_errors
def users(
    limit: int,
    after: str | None,
    search: str | None,
    db_url: str | None,
    workspace: str,
    as_json: bool,
) -> None:
    """List users, ordered by userId, a page at a time."""
    with open_database(load_settings(db_url=db_url)) as engine:
        records = list_users(engine, workspace, limit=limit, after=after, search=search)
    cursor = records[-1].user_id if len(records) == limit else None
    if as_json:
        emit_json({"items": [user_document(r) for r in records], "next": cursor})
        return
    table(
        ["USER ID", "PROPERTIES", "UPDATED"],
        [(r.user_id, len(r.properties), r.updated_at) for r in records],
        empty="No users.",
    )
    if cursor:
        click.echo(f"more: usersync users --after {cursor}")


@click.command()
@click.argument("run_id", type=int)
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8", lazy=True),
    default="-",
    help="Write the CSV here (default: standard output).",
)
@db_option
@handle_errors
def errors(run_id: int, output: TextIO, db_url: str | None) -> None:
    """Write a run's rejected rows as CSV: line, column, value, message."""
    with open_database(load_settings(db_url=db_url)) as engine:
        run = runs.get_run(engine, run_id)
        if run is None:
            raise UsageError(f"there is no run {run_id}")
        runs.check_errors_kept(run)
        output.writelines(errors_csv(runs.iter_run_errors(engine, run_id)))
