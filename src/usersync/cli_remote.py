"""The options shared by every command that reaches a remote store, and their checking."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from usersync.config import Settings, load_settings
from usersync.errors import UsageError
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


def connect_args(
    settings: Settings, opts: dict[str, Any]
) -> tuple[RemoteLocation, Credentials, HostKeyPolicy]:
    """What `remote_options` collected, checked: where, with which secrets, which host keys."""
    location = parse_remote_url(opts["url"])
    credentials = Credentials(
        password=_env_secret(opts["password_env"], "password"),
        key_path=opts["key_path"],
        key_passphrase=_env_secret(opts["key_passphrase_env"], "key-passphrase"),
    )
    return location, credentials, _host_key_policy(settings, opts)


def open_remote(opts: dict[str, Any]) -> tuple[Source, RemoteLocation, Settings]:
    settings = load_settings()
    location, credentials, host_keys = connect_args(settings, opts)
    return open_source(location, credentials, host_keys, settings), location, settings


def csv_options(encoding: str | None, delimiter: str | None) -> CsvOptions:
    if delimiter is None:
        return CsvOptions(encoding=encoding)
    if delimiter not in DELIMITERS:
        raise UsageError(f"--delimiter must be one of , ; tab | (got {delimiter!r})")
    return CsvOptions(encoding=encoding, delimiter=DELIMITERS[delimiter])


def csv_format_options(func: F) -> F:
    """--encoding and --delimiter, for the commands that read a file's rows."""
    func = click.option("--delimiter", help="Field separator: , ; tab or | (default ,).")(func)
    return click.option(
        "--encoding", help="The file's encoding (default: UTF-8, or UTF-16 by its BOM)."
    )(func)
