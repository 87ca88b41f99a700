"""Remote locations written as URLs: `sftp://USER@HOST[:PORT]/PATH`."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from usersync.errors import UsageError

DEFAULT_PORTS = {"sftp": 22}


@dataclass(frozen=True)
class RemoteLocation:
    scheme: str
    host: str
    port: int
    username: str
    path: str  # absolute, normalized, without a trailing slash (except "/")

    def with_path(self, path: str) -> RemoteLocation:
        return RemoteLocation(
            self.scheme, self.host, self.port, self.username, normalize_path(path)
        )


def normalize_path(path: str) -> str:
    normalized = posixpath.normpath("/" + path.lstrip("/"))
    return "/" if normalized in ("/", "//") else normalized


def parse_remote_url(url: str) -> RemoteLocation:
    example = "sftp://USER@HOST[:PORT]/PATH, e.g. sftp://alice@files.example.com/exports"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{url!r} is not a valid URL ({exc}); write it as {example}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UsageError(
            f"{url!r}: unsupported scheme {parts.scheme or '(none)'!r}; write {example}"
        )
    if parts.password is not None:
        raise UsageError(
            "do not put a password in the URL (it would show in the process list and shell "
            "history); pass --password-env VAR with the password in that environment variable"
        )
    if not parts.hostname:
        raise UsageError(f"{url!r} has no host; write {example}")
    if not parts.username:
        raise UsageError(f"{url!r} has no user name; write {example}")
    if parts.query or parts.fragment:
        raise UsageError(f"{url!r}: a '?' or '#' in a path must be written as %3F or %23")
    return RemoteLocation(
        scheme=scheme,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        username=unquote(parts.username),
        path=normalize_path(unquote(parts.path or "/")),
    )
