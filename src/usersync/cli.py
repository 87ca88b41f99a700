"""The `usersync` command. It only wires arguments to the library and prints results."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from usersync import __version__
from usersync.browse import PREVIEW_ROWS, list_files, list_folders, preview_file
from usersync.cli_output import emit_json, handle_errors, iso, table
from usersync.cli_schedule import schedule
from usersync.config import Settings, load_settings
from usersync.errors import UsageError
from usersync.files import explain, format_size
from usersync.reader import CsvOptions
from usersync.sources.base import Source
from usersync.sources.connect import Credentials, open_source
from usersync.sources.hostkeys import HostKeyPolicy
from usersync.sources.urls import RemoteLocation, parse_remote_url

F = TypeVar("F", bound=Callable[..., Any])

DELIMITERS = {",": ",", ";": ";", "tab": "\t", "\\t": "\t", "\t": "\t", "|": "|"}


def remote_options(func: F) -> F:
    """The options every command that reaches a remote store takes."""
    options = [
        click.argument("url"),
        click.option(
            "--key", "key_path", type=click.Path(dir_okay=False), help="Private key file."
        ),
        click.option(
            "--key-passphrase-env",
            metavar="VAR",
            help="Environment variable holding the private key's passphrase.",
        ),
        click.option(
            "--password-env",
            metavar="VAR",
            help="Environment variable holding the password (never pass it as an argument).",
        ),
        click.option(
            "--known-hosts",
            type=click.Path(dir_okay=False),
            help="OpenSSH known_hosts file to check the server's host key against.",
        ),
        click.option("--fingerprint", help="Trust the host key with this SHA256:... fingerprint."),
        click.option(
            "--accept-new-host-key",
            is_flag=True,
            help="Trust a host seen for the first time and remember its key (never a changed key).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _env_secret(var: str | None, what: str) -> str | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if value is None:
        raise UsageError(f"environment variable {var} (named by --{what}-env) is not set")
    return value


def _host_key_policy(settings: Settings, opts: dict[str, Any]) -> HostKeyPolicy:
    if opts["known_hosts"]:
        files: tuple[Path, ...] = (Path(opts["known_hosts"]),)
    else:
        files = (settings.known_hosts_path, Path("~/.ssh/known_hosts").expanduser())
    return HostKeyPolicy(
        known_hosts=files,
        fingerprint=opts["fingerprint"],
        accept_new=opts["accept_new_host_key"],
        remember_in=files[0],
    )


def _connect(opts: dict[str, Any]) -> tuple[Source, RemoteLocation, Settings]:
    settings = load_settings()
    location = parse_remote_url(opts["url"])
    credentials = Credentials(
        password=_env_secret(opts["password_env"], "password"),
        key_path=opts["key_path"],
        key_passphrase=_env_secret(opts["key_passphrase_env"], "key-passphrase"),
    )
    source = open_source(location, credentials, _host_key_policy(settings, opts), settings)
    return source, location, settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="usersync")
def main() -> None:
    """Keep a User 360 store in sync with userdata_*.csv files on remote stores."""


@main.command()
@remote_options
@handle_errors
def folders(**opts: Any) -> None:
    """List the folders inside URL's folder."""
    source, location, _ = _connect(opts)
    try:
        listing = list_folders(source, location.path)
    finally:
        source.close()
    if opts["as_json"]:
        emit_json(
            {
                "path": listing.path,
                "folders": [{"name": f.name, "path": f.path} for f in listing.folders],
            }
        )
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
    source, location, settings = _connect(opts)
    try:
        listing = list_files(source, location.path, settings.max_file_size)
    finally:
        source.close()
    if opts["as_json"]:
        emit_json(
            {
                "path": listing.path,
                "files": [
                    {"name": f.name, "path": f.path, "size": f.size, "modified": iso(f.modified)}
                    for f in listing.files
                ],
                "hidden": [
                    {
                        "name": h.entry.name,
                        "path": h.entry.path,
                        "size": h.entry.size,
                        "reason": h.reason.value,
                    }
                    for h in listing.hidden
                ],
            }
        )
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


def _csv_options(encoding: str | None, delimiter: str | None) -> CsvOptions:
    if delimiter is None:
        return CsvOptions(encoding=encoding)
    if delimiter not in DELIMITERS:
        raise UsageError(f"--delimiter must be one of , ; tab | (got {delimiter!r})")
    return CsvOptions(encoding=encoding, delimiter=DELIMITERS[delimiter])


@main.command()
@remote_options
@click.option("--rows", default=PREVIEW_ROWS, show_default=True, type=click.IntRange(1, 1000))
@click.option("--encoding", help="The file's encoding (default: UTF-8, or UTF-16 by its BOM).")
@click.option("--delimiter", help="Field separator: , ; tab or | (default ,).")
@handle_errors
def preview(rows: int, encoding: str | None, delimiter: str | None, **opts: Any) -> None:
    """Show the header and the first rows of the file at URL."""
    options = _csv_options(encoding, delimiter)
    source, location, settings = _connect(opts)
    try:
        result = preview_file(
            source, location.path, options, rows=rows, max_size=settings.max_file_size
        )
    finally:
        source.close()
    if opts["as_json"]:
        emit_json(
            {
                "path": location.path,
                "columns": result.columns,
                "rows": [row.values for row in result.rows],
                "errors": [
                    {"line": e.line, "column": e.column, "value": e.value, "message": e.message}
                    for e in result.errors
                ],
            }
        )
        return
    table(
        ["LINE", *result.columns],
        [(row.line, *row.values) for row in result.rows],
        empty=f"{location.path} has a header and no rows",
        max_width=40,
    )
    for error in result.errors:
        click.secho(f"line {error.line}: {error.message}", fg="yellow", err=True)


main.add_command(schedule)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--db", "db_url", help="Database URL (default: USERSYNC_DB, else SQLite).")
@handle_errors
def serve(host: str, port: int, db_url: str | None) -> None:
    """Start the web UI, the REST API and the scheduler."""
    import uvicorn

    from usersync.web.app import create_app

    settings = load_settings()
    if db_url:
        settings = dataclasses.replace(settings, db_url=db_url)
    app = create_app(settings)
    click.echo(f"usersync {__version__} listening on http://{host}:{port}/  (Ctrl-C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="info")
