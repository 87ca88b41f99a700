"""Typed settings from the environment (USERSYNC_*), built by `load_settings`; nothing is read
at import time. Bad values fail loudly with the variable's name."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import platformdirs

from usersync.errors import UsageError
from usersync.files import MAX_FILE_SIZE

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    db_url: str | None  # None: the SQLite file in data_dir
    max_file_size: int
    connect_timeout: float
    io_timeout: float
    secret_key: str | None = None  # USERSYNC_SECRET_KEY: Fernet key(s); None: the key file

    @property
    def secret_key_path(self) -> Path:
        """The key that encrypts stored secrets when USERSYNC_SECRET_KEY is not set."""
        return self.data_dir / "secret.key"

    @property
    def known_hosts_path(self) -> Path:
        """Host keys that usersync was told to trust on first use."""
        return self.data_dir / "known_hosts"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'usersync.db'}"


def _parse(
    env: Mapping[str, str], name: str, convert: Callable[[str], T], default: T, what: str
) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = convert(raw.strip())
    except ValueError:
        raise UsageError(f"{name} must be {what}, got {raw!r}") from None
    if isinstance(value, int | float) and value <= 0:
        raise UsageError(f"{name} must be {what} greater than 0, got {raw!r}")
    return value


def load_settings(env: Mapping[str, str] | None = None, *, db_url: str | None = None) -> Settings:
    """Settings from `env` (default: the process environment); `db_url` (a --db option)
    overrides USERSYNC_DB."""
    env = os.environ if env is None else env
    data_dir = env.get("USERSYNC_DATA_DIR") or platformdirs.user_data_dir(
        "usersync", appauthor=False
    )
    return Settings(
        data_dir=Path(data_dir).expanduser(),
        db_url=db_url or env.get("USERSYNC_DB") or None,
        max_file_size=_parse(env, "USERSYNC_MAX_FILE_SIZE", int, MAX_FILE_SIZE, "a size in bytes"),
        connect_timeout=_parse(env, "USERSYNC_CONNECT_TIMEOUT", float, 15.0, "a number of seconds"),
        io_timeout=_parse(env, "USERSYNC_IO_TIMEOUT", float, 30.0, "a number of seconds"),
        secret_key=env.get("USERSYNC_SECRET_KEY") or None,
    )
