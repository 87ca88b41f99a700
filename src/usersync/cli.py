"""The `usersync` command. It only wires arguments to the library and prints results."""

from __future__ import annotations

import errno
import gc
import logging
import os
import shlex
import socket
from typing import Any

import click
from sqlalchemy import Engine

from usersync import __version__, db, demo, logs
from usersync.browse import (
    DELIMITER_WORDS,
    PREVIEW_ROWS,
    files_document,
    folders_document,
    list_files,
    list_folders,
    preview_document,
    preview_file,
)
from usersync.cli_export import export
from usersync.cli_import import db_option, errors, import_, user, users, workspace_option
from usersync.cli_output import command_name, emit_json, handle_errors, located, shown, table
from usersync.cli_remote import csv_format_options, csv_options, open_remote, remote_options
from usersync.cli_runs import cancel, runs
from usersync.cli_schedule import schedule
from usersync.config import Settings, load_settings
from usersync.errors import UsageError
from usersync.files import explain, format_size, require_utf8_path
from usersync.reader import delimiter_flag
from usersync.secretbox import SecretBox
from usersync.service import DEFAULT_WORKSPACE, open_database, workspace_id
from usersync.store import tokens, workspaces


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="usersync")
def main() -> None:
    """Keep a User 360 store in sync with userdata_*.csv files on remote stores."""


@main.command()
@remote_options
@handle_errors
def folders(**opts: Any) -> None:
    """List the folders inside URL's folder."""
    source, location, _ = open_remote(opts)
    try:
        listing = list_folders(source, location.path)
    finally:
        source.close()
    if opts["as_json"]:
        emit_json(folders_document(listing))
        return
    table(
        ["FOLDER", "PATH"],
        [(f.name, f.path) for f in listing.folders],
        empty=f"No folders in {listing.path}",
    )


@main.command()
@remote_options
@handle_errors
def files(**opts: Any) -> None:
    """List the importable userdata_*.csv files in URL's folder, and the hidden ones."""
    source, location, settings = open_remote(opts)
    try:
        listing = list_files(source, location.path, settings.max_file_size)
    finally:
        source.close()
    if opts["as_json"]:
        emit_json(files_document(listing))
        return
    table(
        ["FILE", "SIZE", "MODIFIED"],
        [(f.name, format_size(f.size or 0), f.modified) for f in listing.files],
        empty=f"No importable userdata_*.csv files in {listing.path}",
    )
    if listing.hidden:
        click.echo()
        click.echo(f"{len(listing.hidden)} hidden:")
        table(
            ["NAME", "REASON", "WHY"],
            [
                (h.entry.name, h.reason.value, explain(h.reason, settings.max_file_size))
                for h in listing.hidden
            ],
        )


@main.command()
@remote_options
@click.option("--rows", default=PREVIEW_ROWS, show_default=True, type=click.IntRange(1, 1000))
@csv_format_options
@handle_errors
def preview(rows: int, encoding: str | None, delimiter: str | None, **opts: Any) -> None:
    """Show the header and the first rows of the file at URL."""
    options = csv_options(encoding, delimiter)
    source, location, settings = open_remote(opts)
    try:
        require_utf8_path(location.path)
        result = preview_file(
            source, location.path, options, rows=rows, max_size=settings.max_file_size
        )
    finally:
        source.close()
    if opts["as_json"]:
        emit_json(preview_document(location.path, result))
        return
    table(
        ["LINE", *result.columns],
        [(row.line, *row.values) for row in result.rows],
        empty=f"{location.path} has a header and no rows",
        max_width=40,
    )
    for error in result.errors:
        click.secho(
            f"{located(error.line, error.column)}: {shown(error.message)}", fg="yellow", err=True
        )
    if (other := result.other_delimiter) is not None:
        click.secho(
            f"The rows look separated by {DELIMITER_WORDS[other]}s: pass --delimiter "
            f"{delimiter_flag(other)}",
            fg="yellow",
            err=True,
        )


for command in (import_, user, users, export, runs, cancel, errors, schedule):
    main.add_command(command)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@db_option
@handle_errors
def serve(host: str, port: int, db_url: str | None) -> None:
    """Start the web UI, the REST API and the scheduler."""
    import uvicorn

    from usersync.web.app import create_app

    settings = load_settings(db_url=db_url)
    _check_free(host, port)
    with open_database(settings) as engine:  # a clear error now rather than at startup
        lines = startup_lines(settings, engine, f"http://{host}:{port}/")
    app = create_app(settings)
    for line in lines:
        click.echo(line)
    # The app's own lines (its worker's runs) as well as uvicorn's, in one format.
    logs.configure(settings.log_format, settings.log_level)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level, log_config=None)


def _check_free(host: str, port: int) -> None:
    """A clear error, before anything starts, when the address cannot be listened on."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        why = os.strerror(error.errno) if error.errno else str(error)
        advice = (
            "another server, maybe a usersync serve (make run) already running, uses it. Stop "
            "it, or give another --port."
            if error.errno == errno.EADDRINUSE
            else "check --host and --port."
        )
        raise UsageError(f"cannot listen on {host}:{port} ({why}): {advice}") from None


def startup_lines(settings: Settings, engine: Engine, url: str) -> list[str]:
    """What `usersync serve` says as it starts: where its data is, its address, how to sign
    in (on the very first start, with a new token of the default workspace, shown once) and
    the demo server."""
    lines = [
        f"usersync {__version__}: data in {db.describe(engine)}",
        f"listening on {url}  (Ctrl-C stops it)",
    ]
    first = tokens.first_token(engine, workspaces.get_or_create(engine, DEFAULT_WORKSPACE))
    if first is not None:
        lines.append(f"sign in with this token (shown once, keep it): {first.token}")
    else:
        lines.append(
            f"sign in with a token from: {command_name()} token create "
            f"--workspace {DEFAULT_WORKSPACE}"
        )
    note = demo.startup_note(settings, engine, command_name())
    return lines if note is None else [*lines, note]


@main.command("demo")
@workspace_option
@db_option
@handle_errors
def demo_command(workspace: str, db_url: str | None) -> None:
    """Add a connection to a demo SFTP server with sample userdata_*.csv files.

    The server runs inside `usersync serve`, on 127.0.0.1 (USERSYNC_DEMO_PORT, default
    2222). Running this again keeps one connection and puts back missing sample files.
    """
    settings = load_settings(db_url=db_url)
    setup = demo.set_up(settings)
    with open_database(settings) as engine:
        ws = workspace_id(engine, workspace)
        box = SecretBox.from_settings(settings)
        connection, created = demo.add_connection(engine, box, ws, setup, settings.demo_port)
    click.echo(_samples_line(setup))
    click.echo(
        f'{"Added" if created else "Updated"} the connection "{connection.name}" '
        f"(id {connection.id}) in workspace {workspace!r}: "
        f"sftp://{connection.username}@{connection.host}:{connection.port}/, "
        f"host key {connection.host_key_fingerprint} confirmed."
    )
    click.echo(
        "The demo server runs inside `usersync serve` (make run); one already running "
        "starts it within seconds."
    )
    click.echo(
        f"Open http://127.0.0.1:8000/, Integrations → {demo.CONNECTION_NAME} → Sync on, and "
        "import userdata_customers.csv; or userdata_with_errors.csv, with age typed as "
        "integer, signup_date as date and newsletter as boolean, to see rejected rows."
    )
    click.echo(
        "From the command line: SFTP_PASSWORD=$(cat "
        f"{shlex.quote(str(demo.password_path(settings)))}) {command_name()} files "
        f"sftp://{connection.username}@{connection.host}:{connection.port}/ "
        f"--password-env SFTP_PASSWORD --fingerprint {connection.host_key_fingerprint}"
    )


def _samples_line(setup: demo.DemoSetup) -> str:
    if len(setup.written) == len(demo.sample_files()):
        return f"Wrote the sample files to {setup.folder}"
    if setup.written:
        return f"Sample files in {setup.folder} (put back: {', '.join(setup.written)})"
    return f"Sample files in {setup.folder}"


from usersync.cli_admin import backup, secrets_group, token, workspace  # noqa: E402

main.add_command(workspace)
main.add_command(token)
main.add_command(secrets_group)
main.add_command(backup)

from usersync.cli_syncs import sync  # noqa: E402
from usersync.cli_worker import worker  # noqa: E402

main.add_command(sync)
main.add_command(worker)


def run() -> None:
    """The `usersync` program: `main`, with what is loaded so far (modules, which live until
    exit anyway) left out of Python's cycle collection. Exiting then takes about 0.1 s less."""
    gc.freeze()
    # psycopg warns "error ignored terminating COPY" after a lost connection that usersync
    # reports itself, with what it means for the run.
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    # Alembic tells of each plugin and migration at INFO: noise before a worker's own lines.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    main()
