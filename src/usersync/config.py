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
from usersync.logs import LOG_FORMATS, LOG_LEVELS

T = TypeVar("T")

KEEP_REJECTED_RUNS = 20
WEBHOOK_RETRY = (2.0, 10.0)  # a webhook call that fails is tried twice more, after these


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    db_url: str | None  # None: the SQLite file in data_dir
    max_file_size: int
    connect_timeout: float
    io_timeout: float
    secret_key: str | None = None  # USERSYNC_SECRET_KEY: Fernet key(s); None: the key file
    worker_poll: float = 1.0  # USERSYNC_WORKER_POLL: seconds between looks at an idle queue
    worker_lease: float = 60.0  # USERSYNC_WORKER_LEASE: a running run's lease, in seconds
    settle_seconds: float = 3.0  # USERSYNC_SETTLE_SECONDS: the growing-file guard's wait
    retry_backoff: tuple[float, ...] = (10.0, 60.0, 300.0)  # USERSYNC_RETRY_BACKOFF
    # USERSYNC_WEBHOOK_RETRY: seconds before a webhook call's 2nd, 3rd... attempt ("none").
    webhook_retry: tuple[float, ...] = WEBHOOK_RETRY
    demo_port: int = 2222  # USERSYNC_DEMO_PORT: the demo SFTP server's port on 127.0.0.1
    # USERSYNC_KEEP_REJECTED_RUNS: of how many of a sync's newest runs that rejected rows
    # those rows are kept ("all": every run's).
    keep_rejected_runs: int | None = KEEP_REJECTED_RUNS
    log_format: str = "text"  # USERSYNC_LOG_FORMAT: how serve and worker log (text or json)
    log_level: str = "info"  # USERSYNC_LOG_LEVEL: what they log (debug, info or warning)

    @property
    def secret_key_path(self) -> Path:
        """The key that encrypts stored secrets when USERSYNC_SECRET_KEY is not set."""
        return self.data_dir / "secret.key"

    @property
    def known_hosts_path(self) -> Path:
        """Host keys that usersync was told to trust on first use."""
        return self.data_dir / "known_hosts"

    @property
    def demo_dir(self) -> Path:
        """The demo's sample files, host key and password (made by `usersync demo`)."""
        return self.data_dir / "demo"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'usersync.db'}"


def make_private_dir(path: Path) -> None:
    """Create `path` (and its parents) if missing; a new data folder is for its owner only
    (0700): the user store, the secret key and known_hosts live there."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


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
    keep: int | None = KEEP_REJECTED_RUNS
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
        worker_poll=_parse(env, "USERSYNC_WORKER_POLL", float, 1.0, "a number of seconds"),
        worker_lease=_parse(env, "USERSYNC_WORKER_LEASE", float, 60.0, "a number of seconds"),
        settle_seconds=_parse_seconds(env, "USERSYNC_SETTLE_SECONDS", 3.0),
        retry_backoff=_parse(
            env,
            "USERSYNC_RETRY_BACKOFF",
            _seconds_list,
            (10.0, 60.0, 300.0),
            "comma-separated numbers of seconds (e.g. 10,60,300)",
        ),
        webhook_retry=_parse(
            env,
            "USERSYNC_WEBHOOK_RETRY",
            _pauses,
            WEBHOOK_RETRY,
            'comma-separated numbers of seconds (e.g. 2,10), or "none"',
        ),
        demo_port=_parse(env, "USERSYNC_DEMO_PORT", _port, 2222, "a port number (1-65535)"),
        keep_rejected_runs=_parse(
            env, "USERSYNC_KEEP_REJECTED_RUNS", _count_or_all, keep, 'a number of runs, or "all"'
        ),
        log_format=_parse(
            env, "USERSYNC_LOG_FORMAT", _one_of(LOG_FORMATS), "text", '"text" or "json"'
        ),
        log_level=_parse(
            env, "USERSYNC_LOG_LEVEL", _one_of(LOG_LEVELS), "info", '"debug", "info" or "warning"'
        ),
    )


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    """A parser of one of `choices`, in any case."""

    def parse(text: str) -> str:
        if text.strip().lower() not in choices:
            raise ValueError(text)
        return text.strip().lower()

    return parse


def _count_or_all(text: str) -> int | None:
    return None if text.lower() == "all" else int(text)


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError(text)
    return value


def _pauses(text: str) -> tuple[float, ...]:
    return () if text.strip().lower() == "none" else _seconds_list(text)


def _seconds_list(text: str) -> tuple[float, ...]:
    values = tuple(float(part) for part in text.split(","))
    if any(value < 0 for value in values):
        raise ValueError(text)
    return values


def _parse_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A number of seconds that may be 0 (which turns the feature off)."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise UsageError(f"{name} must be a number of seconds (0 or more), got {raw!r}")
    return value
