"""Open a `Source` for a remote location: the one place that picks the kind of store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from usersync.config import Settings
from usersync.errors import UsageError
from usersync.sources.base import Source
from usersync.sources.hostkeys import HostKeyPolicy
from usersync.sources.sftp import SftpAuth, SftpSource, SftpTarget, Timeouts
from usersync.sources.urls import RemoteLocation


@dataclass(frozen=True, repr=False)
class Credentials:
    password: str | None = None
    key_path: str | None = None
    key_passphrase: str | None = None
    private_key: str | None = None

    def __repr__(self) -> str:
        return "Credentials(...)"


def open_source(
    location: RemoteLocation,
    credentials: Credentials,
    host_keys: HostKeyPolicy,
    settings: Settings,
) -> Source:
    timeouts = Timeouts(connect=settings.connect_timeout, io=settings.io_timeout)
    if location.scheme == "sftp":
        auth = SftpAuth(
            password=credentials.password,
            key_path=Path(credentials.key_path) if credentials.key_path else None,
            key_passphrase=credentials.key_passphrase,
            private_key=credentials.private_key,
        )
        target = SftpTarget(location.host, location.port, location.username)
        return SftpSource.connect(target, auth, host_keys, timeouts)
    raise UsageError(f"unsupported kind of store: {location.scheme}")
