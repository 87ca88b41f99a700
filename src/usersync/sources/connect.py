"""Open a `Source` for a remote location: the one place that picks the kind of store.

    sftp://   SftpSource   password or private key; host keys checked by `HostKeyPolicy`
    ftp://    FtpSource    password (anonymous without one); no encryption
    ftps://   FtpSource    password; TLS certificate checked as `location.tls` says
    s3://     S3Source     access key id + secret; endpoint, region and addressing style
                           from `location.s3`, TLS as `location.tls` says
    file://   LocalSource  this machine's files (the command line only)

A stored S3 connection keeps its access key id as the user name and its secret as the
password: `Credentials.access_key_id` / `secret_access_key` win when given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from usersync.config import Settings
from usersync.errors import UsageError
from usersync.sources.base import Source, Timeouts
from usersync.sources.ftp import FtpSource, FtpTarget
from usersync.sources.hostkeys import HostKeyPolicy
from usersync.sources.local import LocalSource
from usersync.sources.sftp import SftpAuth, SftpSource, SftpTarget
from usersync.sources.urls import LOCAL, RemoteLocation


@dataclass(frozen=True, repr=False)
class Credentials:
    password: str | None = None
    key_path: str | None = None
    key_passphrase: str | None = None
    private_key: str | None = None
    access_key_id: str | None = None  # S3
    secret_access_key: str | None = None  # S3

    def __repr__(self) -> str:
        return "Credentials(...)"


def open_source(
    location: RemoteLocation,
    credentials: Credentials,
    host_keys: HostKeyPolicy,
    settings: Settings,
) -> Source:
    timeouts = Timeouts(connect=settings.connect_timeout, io=settings.io_timeout)
    if location.scheme == LOCAL:
        return LocalSource()
    if location.scheme == "sftp":
        auth = SftpAuth(
            password=credentials.password,
            key_path=Path(credentials.key_path) if credentials.key_path else None,
            key_passphrase=credentials.key_passphrase,
            private_key=credentials.private_key,
        )
        target = SftpTarget(location.host, location.port, location.username)
        return SftpSource.connect(target, auth, host_keys, timeouts)
    if location.scheme in ("ftp", "ftps"):
        ftp_target = FtpTarget(
            location.host, location.port, location.username, tls=location.scheme == "ftps"
        )
        return FtpSource.connect(ftp_target, credentials.password, location.tls, timeouts)
    if location.scheme == "s3":
        # boto3 takes a while to import: only those who reach S3 pay for it
        from usersync.sources.s3 import S3Auth, S3Source

        s3_auth = S3Auth(
            access_key_id=credentials.access_key_id or location.username or None,
            secret_access_key=credentials.secret_access_key or credentials.password,
        )
        return S3Source.connect(location.host, s3_auth, location.s3, location.tls, timeouts)
    raise UsageError(f"unsupported kind of store: {location.scheme}")
