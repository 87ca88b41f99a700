"""`usersync export`: every user of a workspace as CSV (a userdata file) or JSON Lines."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import click

from usersync.cli_import import db_option, workspace_option
from usersync.cli_output import counted, handle_errors
from usersync.config import load_settings
from usersync.errors import UsageError
from usersync.exports import FORMATS, export_users
from usersync.files import written_whole
from usersync.service import open_database, workspace_id


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default="csv",
    show_default=True,
    help="csv: a userdata file (userId, then a column per property), which imports back to "
    "the same records; jsonl: one user's JSON document a line, with its times.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the file here, complete or not at all (default: standard output).",
)
@db_option
@workspace_option
@handle_errors
def export(fmt: str, output: Path | None, db_url: str | None, workspace: str) -> None:
    """Write every user of the workspace, in userId order, as CSV or JSON Lines."""
    with open_database(load_settings(db_url=db_url)) as engine:
        exported = export_users(engine, workspace_id(engine, workspace), fmt)
        if output is None:
            sys.stdout.writelines(exported.chunks)
            return
        _write_whole(output, exported.chunks)
    kind = FORMATS[fmt].description
    columns = f", {counted(exported.properties, 'property', 'properties')}" if fmt == "csv" else ""
    click.echo(f"Wrote {counted(exported.users, 'user')}{columns} to {output} ({kind}).", err=True)


def _write_whole(path: Path, chunks: Iterable[str]) -> None:
    """Write `chunks` to a file beside `path`, then put it in `path`'s place: a failure
    leaves `path` as it was."""
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"--output {path}: there is no folder {folder}")
    with (
        written_whole(path, replace=True) as partial,
        partial.open("w", encoding="utf-8", newline="") as handle,
    ):
        handle.writelines(chunks)
