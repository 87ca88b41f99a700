"""Remote locations written as URLs:

    sftp://USER@HOST[:PORT]/PATH       SSH file transfer
    ftp://USER@HOST[:PORT]/PATH        plain FTP (the password travels unencrypted)
    ftps://USER@HOST[:PORT]/PATH       FTP with explicit TLS (AUTH TLS on the usual port 21)
    s3://BUCKET/PREFIX                 an S3-compatible bucket; the endpoint, region and
                                       access key are options (`S3Endpoint`), not URL parts
    file:///PATH, or a PATH            a file or folder of this machine (the command line
                                       only; a relative PATH is from the current folder)

A location's `path` is what the store's `Source` is given: for S3 it is the key prefix inside
the bucket, written as a folder path (`/exports` is the prefix `exports/`).
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from usersync.errors import UsageError

LOCAL = "file"  # the scheme of this machine's files
# S3 has no port in its URL; 443 keeps stored connections' port column meaningful.
DEFAULT_PORTS = {"sftp": 22, "ftp": 21, "ftps": 21, "s3": 443}

EXAMPLES = {
    "sftp": "sftp://USER@HOST[:PORT]/PATH, e.g. sftp://alice@files.example.com/exports",
    "ftp": "ftp://USER@HOST[:PORT]/PATH, e.g. ftp://alice@files.example.com/exports",
    "ftps": "ftps://USER@HOST[:PORT]/PATH, e.g. ftps://alice@files.example.com/exports",
    "s3": "s3://BUCKET/PREFIX, e.g. s3://acme-exports/daily",
}

# Bucket names: 3-63 of lowercase letters, digits, dots and hyphens (older buckets may also
# have capitals and underscores, which some regions still serve).
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]")


@dataclass(frozen=True)
class TlsTrust:
    """How a TLS server's certificate is checked (FTPS, an https S3 endpoint).

    `ca_file`: PEM file of the certificate authorities to trust instead of the system's.
    `verify=False` turns every check off (the connection is still encrypted, but anyone on
    the way can pose as the server): only when asked for explicitly, with a warning.
    """

    ca_file: str | None = None
    verify: bool = True


@dataclass(frozen=True)
class S3Endpoint:
    """Where an S3-compatible service answers. `url` None: AWS itself, by region."""

    url: str | None = None
    region: str | None = None
    path_style: bool = False


@dataclass(frozen=True)
class RemoteLocation:
    scheme: str
    host: str  # for s3: the bucket
    port: int
    username: str  # for s3: "" (the access key id is a credential)
    path: str  # absolute, normalized, without a trailing slash (except "/")
    tls: TlsTrust = field(default_factory=TlsTrust)
    s3: S3Endpoint = field(default_factory=S3Endpoint)

    def with_path(self, path: str) -> RemoteLocation:
        return dataclasses.replace(self, path=normalize_path(path))

    @property
    def origin(self) -> str:
        """The store without the path and without secrets, for messages and run records:
        `sftp://alice@host:22`, `s3://bucket`."""
        if self.scheme == "s3":
            return f"s3://{self.host}"
        if self.scheme == LOCAL:
            return "file://"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{self.username}@{host}:{self.port}"


def normalize_path(path: str) -> str:
    normalized = posixpath.normpath("/" + path.lstrip("/"))
    return "/" if normalized in ("/", "//") else normalized


def parse_remote_url(url: str) -> RemoteLocation:
    """A location from a URL (see the module docstring); UsageError, with an example of the
    right form, for anything else."""
    if "://" not in url:
        return local_location(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(
            f"{url!r} is not a valid URL ({exc}); write it as {EXAMPLES['sftp']}"
        ) from None
    scheme = parts.scheme.lower()
    if scheme == LOCAL:
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"{url!r}: a file:// URL names a path of this machine: file:///PATH")
        return local_location(unquote(parts.path))
    if scheme not in DEFAULT_PORTS:
        kinds = ", ".join(f"{kind}://" for kind in DEFAULT_PORTS)
        raise UsageError(
            f"{url!r}: unsupported scheme {parts.scheme or '(none)'!r}; usersync reaches "
            f"{kinds} stores, e.g. {EXAMPLES['sftp']}, and paths of this machine"
        )
    example = EXAMPLES[scheme]
    if parts.query or parts.fragment:
        raise UsageError(f"{url!r}: a '?' or '#' in a path must be written as %3F or %23")
    path = normalize_path(unquote(parts.path or "/"))
    if scheme == "s3":
        return _s3_location(url, parts.netloc, path, example)
    if parts.password is not None:
        raise UsageError(
            "do not put a password in the URL (it would show in the process list and shell "
            "history); pass --password-env VAR with the password in that environment variable"
        )
    if not parts.hostname:
        raise UsageError(f"{url!r} has no host; write {example}")
    if not parts.username:
        raise UsageError(f"{url!r} has no user name; write {example}")
    return RemoteLocation(
        scheme=scheme,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        username=unquote(parts.username),
        path=path,
    )


def local_location(path: str) -> RemoteLocation:
    """A file or folder of this machine; a relative `path` is from the current folder."""
    if not path.strip():
        raise UsageError(f"give a URL such as {EXAMPLES['sftp']}, or a path of this machine")
    absolute = os.path.abspath(os.path.expanduser(path))
    return RemoteLocation(scheme=LOCAL, host="", port=0, username="", path=absolute)


def _s3_location(url: str, netloc: str, path: str, example: str) -> RemoteLocation:
    if "@" in netloc:
        raise UsageError(
            f"{url!r}: an s3:// URL names only the bucket; give the access key with "
            "--access-key-id (or AWS_ACCESS_KEY_ID) and the secret with --secret-env VAR"
        )
    if ":" in netloc:
        raise UsageError(
            f"{url!r}: an s3:// URL has no port; give the service's address with "
            "--endpoint-url, e.g. --endpoint-url https://minio.example.com:9000"
        )
    if not netloc:
        raise UsageError(f"{url!r} has no bucket; write {example}")
    if not _BUCKET.fullmatch(netloc):
        raise UsageError(
            f"{url!r}: {netloc!r} is not a bucket name (3 to 63 letters, digits, dots or "
            f"hyphens); write {example}"
        )
    return RemoteLocation(
        scheme="s3", host=netloc, port=DEFAULT_PORTS["s3"], username="", path=path
    )
