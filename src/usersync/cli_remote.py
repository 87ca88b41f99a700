"""The options shared by every command that reaches a remote store, and their checking.

Which options fit which URL:

    sftp://   --password-env | --key [--key-passphrase-env]; --known-hosts, --fingerprint,
              --accept-new-host-key
    ftp://    --password-env (none: anonymous)
    ftps://   --password-env; --ca-file or --insecure-skip-verify
    s3://     --access-key-id (else AWS_ACCESS_KEY_ID), --secret-env (else
              AWS_SECRET_ACCESS_KEY); --endpoint-url, --region, --path-style; --ca-file
    a path    none (a file or folder of this machine; file:///PATH too)

An option given with a URL it does not fit is a usage error (exit 2), never silently ignored.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from usersync.cli_output import json_option
from usersync.config import Settings, load_settings
from usersync.errors import UsageError
from usersync.reader import DELIMITER_NAMES, CsvOptions, named_delimiter
from usersync.sources.base import Source
from usersync.sources.connect import Credentials, open_source
from usersync.sources.hostkeys import HostKeyPolicy, check_fingerprint
from usersync.sources.urls import RemoteLocation, S3Endpoint, TlsTrust, parse_remote_url

F = TypeVar("F", bound=Callable[..., Any])

DELIMITERS = frozenset({",", ";", "|", "\t", *DELIMITER_NAMES})  # what --delimiter takes

# option name in `opts` -> (how the user writes it, the URL schemes it fits)
_FITS: dict[str, tuple[str, tuple[str, ...]]] = {
    "key_path": ("--key", ("sftp",)),
    "key_passphrase_env": ("--key-passphrase-env", ("sftp",)),
    "known_hosts": ("--known-hosts", ("sftp",)),
    "fingerprint": ("--fingerprint", ("sftp",)),
    "accept_new_host_key": ("--accept-new-host-key", ("sftp",)),
    "password_env": ("--password-env", ("sftp", "ftp", "ftps")),
    "ca_file": ("--ca-file", ("ftps", "s3")),
    "insecure_skip_verify": ("--insecure-skip-verify", ("ftps",)),
    "endpoint_url": ("--endpoint-url", ("s3",)),
    "region": ("--region", ("s3",)),
    "path_style": ("--path-style", ("s3",)),
    "access_key_id": ("--access-key-id", ("s3",)),
    "secret_env": ("--secret-env", ("s3",)),
}
_HINTS = {
    "s3": "an s3:// bucket takes --access-key-id and --secret-env VAR",
    "ftp": "an ftp:// server takes --password-env VAR (use ftps:// for TLS)",
    "ftps": "an ftps:// server takes --password-env VAR; its certificate is checked (--ca-file)",
    "sftp": "an sftp:// server takes --password-env VAR or --key PATH",
    "file": "a path of this machine takes none of them",
}
INSECURE_WARNING = (
    "usersync: WARNING: --insecure-skip-verify: the server's TLS certificate is not checked. "
    "The connection is encrypted, but anyone on the network path could pose as the server and "
    "read the password. Use --ca-file with the certificate of the authority that signed it."
)


URL_HELP = (
    "URL: sftp://USER@HOST[:PORT]/PATH, ftp:// or ftps:// likewise, s3://BUCKET/PREFIX, or a "
    "path of this machine (file:///PATH)."
)


def _schemes(schemes: tuple[str, ...]) -> str:
    return ", ".join(f"{scheme}://" for scheme in schemes)


def _option(name: str, help_text: str, **kwargs: Any) -> Callable[[F], F]:
    """A `click.option` for `opts[name]`, its help led by the URLs it fits (from `_FITS`)."""
    flag, schemes = _FITS[name]
    return click.option(flag, name, help=f"{_schemes(schemes)}: {help_text}", **kwargs)


def remote_options(func: F) -> F:
    """The options every command that reaches a remote store takes."""
    options = [
        click.argument("url"),
        _option("key_path", "private key file.", type=click.Path(dir_okay=False)),
        _option(
            "key_passphrase_env",
            "environment variable holding the private key's passphrase.",
            metavar="VAR",
        ),
        _option(
            "password_env",
            "environment variable holding the password (never pass it as an argument).",
            metavar="VAR",
        ),
        _option(
            "known_hosts",
            "OpenSSH known_hosts file to check the server's host key against.",
            type=click.Path(dir_okay=False),
        ),
        _option("fingerprint", "trust the host key with this SHA256:... fingerprint."),
        _option(
            "accept_new_host_key",
            "trust a host seen for the first time and remember its key (never a changed key).",
            is_flag=True,
        ),
        _option(
            "ca_file",
            "PEM file of the certificate authorities to trust.",
            type=click.Path(dir_okay=False),
        ),
        _option(
            "insecure_skip_verify",
            "do not check the server's certificate (warns; not recommended).",
            is_flag=True,
        ),
        _option(
            "endpoint_url",
            "the S3-compatible service, e.g. https://minio.example.com:9000 (default: AWS).",
            metavar="URL",
        ),
        _option("region", "the bucket's region (default: us-east-1)."),
        _option(
            "path_style",
            "address the bucket in the path (SERVICE/BUCKET), not the host name.",
            is_flag=True,
        ),
        _option("access_key_id", "the access key id (default: $AWS_ACCESS_KEY_ID).", metavar="ID"),
        _option(
            "secret_env",
            "environment variable holding the secret access key (default: AWS_SECRET_ACCESS_KEY).",
            metavar="VAR",
        ),
        json_option,
    ]
    for option in reversed(options):
        func = option(func)
    func.__doc__ = f"{inspect.cleandoc(func.__doc__ or '')}\n\n{URL_HELP}"
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
        if not files[0].exists() and not opts["accept_new_host_key"]:
            raise UsageError(
                f"--known-hosts {opts['known_hosts']}: there is no such file (with "
                "--accept-new-host-key, usersync creates it to remember the host's key)"
            )
    else:
        files = (settings.known_hosts_path, Path("~/.ssh/known_hosts").expanduser())
    return HostKeyPolicy(
        known_hosts=files,
        fingerprint=check_fingerprint(opts["fingerprint"]) if opts["fingerprint"] else None,
        accept_new=opts["accept_new_host_key"],
        remember_in=files[0],
    )


def _check_fit(scheme: str, opts: dict[str, Any]) -> None:
    for name, (option, schemes) in _FITS.items():
        if opts.get(name) and scheme not in schemes:
            raise UsageError(
                f"{option} is for {_schemes(schemes)} URLs, not {scheme}:// ({_HINTS[scheme]})"
            )
    if opts.get("ca_file") and opts.get("insecure_skip_verify"):
        raise UsageError("give --ca-file or --insecure-skip-verify, not both")


def _endpoint_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"--endpoint-url {value!r} must be an http:// or https:// address, e.g. "
            "https://minio.example.com:9000"
        )
    return value


def connect_args(
    settings: Settings, opts: dict[str, Any]
) -> tuple[RemoteLocation, Credentials, HostKeyPolicy]:
    """What `remote_options` collected, checked: where, with which secrets, which host keys."""
    location = parse_remote_url(opts["url"])
    _check_fit(location.scheme, opts)
    trust = TlsTrust(ca_file=opts.get("ca_file"), verify=not opts.get("insecure_skip_verify"))
    if not trust.verify:
        click.echo(INSECURE_WARNING, err=True)
    location = dataclasses.replace(location, tls=trust)
    if location.scheme == "s3":
        endpoint = S3Endpoint(
            url=_endpoint_url(opts.get("endpoint_url")),
            region=opts.get("region"),
            path_style=bool(opts.get("path_style")),
        )
        location = dataclasses.replace(location, s3=endpoint)
        secret_env = opts.get("secret_env")
        credentials = Credentials(
            access_key_id=opts.get("access_key_id") or os.environ.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=_env_secret(secret_env, "secret")
            if secret_env
            else os.environ.get("AWS_SECRET_ACCESS_KEY"),
        )
    else:
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
    return CsvOptions(encoding=encoding, delimiter=named_delimiter(delimiter))


def csv_format_options(func: F) -> F:
    """--encoding and --delimiter, for the commands that read a file's rows."""
    func = click.option("--delimiter", help="Field separator: , ; tab or | (default ,).")(func)
    return click.option(
        "--encoding", help="The file's encoding (default: UTF-8, or UTF-16 by its BOM)."
    )(func)
