"""SFTP on asyncssh: connect with verified host keys, list folders, stream files.

Every asyncssh error is translated here into `usersync.errors`; every network wait is bounded
by the connect or I/O timeout, so a dead or silent server gives a clear error, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import socket
import stat as stat_mod
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import asyncssh
from asyncssh.saslprep import SASLPrepError

from usersync.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionLost,
    ConnectTimeout,
    RemotePathNotFound,
    RemotePermissionDenied,
    RemoteTimeout,
    SourceError,
    UsersyncError,
)
from usersync.files import EntryKind, RemoteEntry, utf8_named
from usersync.sources.aio import LoopThread, PrefetchingReader
from usersync.sources.base import ClosesOnExit, start_folder_of
from usersync.sources.base import Timeouts as Timeouts  # where it was first defined
from usersync.sources.hostkeys import HostKeyCheck, HostKeyPolicy, host_entry_name

T = TypeVar("T")


@dataclass(frozen=True)
class SftpTarget:
    host: str
    port: int
    username: str


@dataclass(frozen=True, repr=False)
class SftpAuth:
    """Credentials. Kept out of repr so they never reach a log or a traceback."""

    password: str | None = None
    key_path: Path | None = None
    key_passphrase: str | None = None
    private_key: str | None = None  # the key's text, for keys stored by the service

    def __repr__(self) -> str:
        return "SftpAuth(...)"


class _Client(asyncssh.SSHClient):
    def __init__(self, check: HostKeyCheck) -> None:
        self._check = check

    def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        return self._check.validate(key)


def _load_key(auth: SftpAuth) -> Any:
    source = str(auth.key_path) if auth.key_path is not None else "the stored private key"
    try:
        if auth.key_path is not None:
            return asyncssh.read_private_key(str(auth.key_path), auth.key_passphrase)
        return asyncssh.import_private_key(cast(str, auth.private_key), auth.key_passphrase)
    except FileNotFoundError as exc:
        raise AuthenticationFailed(f"private key file {source} does not exist") from exc
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError) as exc:
        hint = (
            "it is encrypted: give its passphrase with --key-passphrase-env VAR"
            if auth.key_passphrase is None and "passphrase" in str(exc).lower()
            else "check the file and its passphrase"
        )
        raise AuthenticationFailed(f"cannot read private key {source}: {exc}; {hint}") from exc


class SftpSource(ClosesOnExit):
    """A connected SFTP server. Use `SftpSource.connect(...)`; close it when done."""

    def __init__(
        self,
        loop: LoopThread,
        conn: asyncssh.SSHClientConnection,
        sftp: asyncssh.SFTPClient,
        target: SftpTarget,
        fingerprint: str,
        timeouts: Timeouts,
    ) -> None:
        self._loop = loop
        self._conn = conn
        self._sftp = sftp
        self.target = target
        self.host_key_fingerprint = fingerprint
        self._timeouts = timeouts

    @classmethod
    def connect(
        cls,
        target: SftpTarget,
        auth: SftpAuth,
        policy: HostKeyPolicy,
        timeouts: Timeouts | None = None,
    ) -> SftpSource:
        timeouts = timeouts or Timeouts()
        loop = LoopThread(f"usersync-sftp-{target.host}")
        try:
            conn, sftp, fingerprint = loop.run(_open(target, auth, policy, timeouts))
        except BaseException:
            loop.close()
            raise
        return cls(loop, conn, sftp, target, fingerprint, timeouts)

    def _where(self, path: str) -> str:
        return f"sftp://{host_entry_name(self.target.host, self.target.port)}{path}"

    async def _call(self, awaitable: Awaitable[T], path: str, what: str) -> T:
        try:
            return await asyncio.wait_for(awaitable, self._timeouts.io)
        except TimeoutError as exc:
            raise RemoteTimeout(
                f"{self._where(path)}: the server did not answer within "
                f"{self._timeouts.io:g} s while {what}; it may be overloaded or the network "
                "down. Try again later."
            ) from exc
        except asyncssh.SFTPNoSuchFile as exc:
            raise RemotePathNotFound(f"{self._where(path)} does not exist") from exc
        except asyncssh.SFTPPermissionDenied as exc:
            raise RemotePermissionDenied(
                f"{self._where(path)}: permission denied while {what}; ask the server's "
                f"administrator to give {self.target.username!r} read access"
            ) from exc
        except (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection) as exc:
            raise ConnectionLost(
                f"{self._where(path)}: the connection was lost while {what} ({exc.reason}); "
                "nothing was changed. Try again."
            ) from exc
        except asyncssh.SFTPError as exc:
            raise SourceError(
                f"{self._where(path)}: the server refused {what}: {exc.reason}"
            ) from exc
        except (asyncssh.DisconnectError, asyncssh.ChannelOpenError, OSError) as exc:
            raise ConnectionLost(
                f"{self._where(path)}: the connection was lost while {what} ({exc}); "
                "nothing was changed. Try again."
            ) from exc

    def list_dir(self, path: str) -> list[RemoteEntry]:
        return self._loop.run(self._list_dir(path))

    async def _list_dir(self, path: str) -> list[RemoteEntry]:
        info = await self._call(self._sftp.stat(path), path, "opening the folder")
        if not stat_mod.S_ISDIR(info.permissions or 0):
            raise RemotePathNotFound(f"{self._where(path)} is a file, not a folder")
        names = await self._call(self._sftp.readdir(path), path, "listing the folder")
        entries = []
        for name in names:
            filename = cast(str, name.filename)
            if filename in (".", ".."):
                continue
            child = posixpath.join(path, filename)
            attrs: asyncssh.SFTPAttrs | None = name.attrs
            if attrs is not None and stat_mod.S_ISLNK(attrs.permissions or 0):
                attrs = await self._follow(child)
            entries.append(utf8_named(_entry(filename, child, attrs)))
        return entries

    async def _follow(self, path: str) -> asyncssh.SFTPAttrs | None:
        try:
            return await self._call(self._sftp.stat(path), path, "following a link")
        except (RemotePathNotFound, RemotePermissionDenied):
            return None  # a broken link: listed as "not a regular file"

    def start_folder(self) -> str:
        try:
            home = self._loop.run(self._call(self._sftp.realpath("."), ".", "finding its home"))
        except UsersyncError:
            return "/"
        return start_folder_of(home)

    def stat(self, path: str) -> RemoteEntry:
        attrs = self._loop.run(self._call(self._sftp.stat(path), path, "reading its size"))
        return _entry(posixpath.basename(path.rstrip("/")) or "/", path, attrs)

    def open(self, path: str) -> BinaryIO:
        handle = self._loop.run(
            self._call(self._sftp.open(path, "rb", block_size=256 * 1024), path, "opening it")
        )

        async def read_chunk(size: int) -> bytes:
            return cast(bytes, await self._call(handle.read(size), path, "reading it"))

        async def close_handle() -> None:
            # a server that is gone has nothing left to release
            with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
                await asyncio.wait_for(handle.close(), self._timeouts.io)

        reader = PrefetchingReader(self._loop, read_chunk, on_close=close_handle)
        return cast(BinaryIO, reader)

    def rename(self, path: str, new_path: str) -> None:
        self._loop.run(
            self._call(self._sftp.rename(path, new_path), path, f"moving it to {new_path}")
        )

    def remove(self, path: str) -> None:
        self._loop.run(self._call(self._sftp.remove(path), path, "deleting it"))

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        try:
            self._loop.run(self._close())
        finally:
            self._loop.close()

    async def _close(self) -> None:
        self._sftp.exit()
        self._conn.close()
        with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
            await asyncio.wait_for(self._conn.wait_closed(), 2)


def _entry(name: str, path: str, attrs: asyncssh.SFTPAttrs | None) -> RemoteEntry:
    if attrs is None:
        return RemoteEntry(name=name, path=path, kind=EntryKind.OTHER)
    mode = attrs.permissions or 0
    if stat_mod.S_ISDIR(mode):
        kind = EntryKind.DIRECTORY
    elif stat_mod.S_ISREG(mode):
        kind = EntryKind.FILE
    else:
        kind = EntryKind.OTHER
    modified = datetime.fromtimestamp(attrs.mtime, UTC) if attrs.mtime is not None else None
    return RemoteEntry(name=name, path=path, kind=kind, size=attrs.size, modified=modified)


# asyncssh's ciphers, AES-GCM first: with the CPU's AES instructions it reads a 200 MB file
# with two thirds of ChaCha20-Poly1305's CPU time (0.45 s against 0.67 s), which the import's
# parsing needs on a small machine. A server without AES-GCM gets the others, as before.
CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)


async def _offering_the_pinned_key(
    target: SftpTarget, check: HostKeyCheck, timeouts: Timeouts
) -> tuple[str, ...] | None:
    """The host key algorithms with which the server offers the pinned key, if it has it
    under another key type than the one it offered (each tried with a handshake of its own,
    no login), else None."""
    for algs in check.other_key_types():
        try:
            key = await asyncio.wait_for(
                asyncssh.get_server_host_key(
                    target.host, target.port, server_host_key_algs=algs, config=[]
                ),
                timeouts.connect,
            )
        except (TimeoutError, asyncssh.Error, OSError):
            continue  # no key of that type (no common algorithm), or the server went away
        if key is not None and check.pinned(key):
            return algs
    return None


async def _open(
    target: SftpTarget, auth: SftpAuth, policy: HostKeyPolicy, timeouts: Timeouts
) -> tuple[asyncssh.SSHClientConnection, asyncssh.SFTPClient, str]:
    check = HostKeyCheck(policy, target.host, target.port)
    where = host_entry_name(target.host, target.port)
    options: dict[str, Any] = {
        "username": target.username,
        "known_hosts": check.known,
        "agent_path": None,
        "config": [],
        "password": auth.password,
        "client_keys": [_load_key(auth)] if auth.key_path or auth.private_key else None,
        "preferred_auth": "publickey,keyboard-interactive,password",
        "connect_timeout": timeouts.connect,
        "keepalive_interval": max(1.0, timeouts.io / 3),
        "keepalive_count_max": 3,
        "encryption_algs": CIPHERS,
    }
    if auth.password is None and options["client_keys"] is None:
        raise AuthenticationFailed(
            f"no credentials for {target.username}@{where}: give --password-env VAR or --key PATH"
        )

    async def connect(host_key_algs: Sequence[str]) -> asyncssh.SSHClientConnection:
        conn, _ = await asyncssh.create_connection(
            lambda: _Client(check),
            target.host,
            target.port,
            server_host_key_algs=host_key_algs,
            **options,
        )
        return conn

    try:
        try:
            conn = await connect(check.algorithms())
        except asyncssh.HostKeyNotVerifiable:
            algs = await _offering_the_pinned_key(target, check, timeouts)
            if algs is None:
                raise
            conn = await connect(algs)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise check.refusal() from exc
    except SASLPrepError as exc:  # before any byte is sent
        raise AuthenticationFailed(
            f"the user name or password for {where} contains characters that SSH cannot "
            f"send ({exc}); check them for stray control or unassigned characters"
        ) from exc
    except asyncssh.PermissionDenied as exc:
        raise AuthenticationFailed(
            f"{target.username}@{where} refused the login: check the user name and the "
            f"password or key (the server said: {exc.reason or 'permission denied'})"
        ) from exc
    except TimeoutError as exc:
        raise ConnectTimeout(
            f"{where} did not complete the SSH handshake within {timeouts.connect:g} s: the "
            "server accepted the connection but never answered as an SSH server. Check the "
            "host and port, or the server's load."
        ) from exc
    except socket.gaierror as exc:
        raise ConnectFailed(f"cannot find host {target.host!r}: {exc.strerror}") from exc
    except ConnectionRefusedError as exc:
        raise ConnectFailed(
            f"{where} refused the connection: no SFTP server is listening there. Check the "
            "host and port, and that the server is running."
        ) from exc
    except (asyncssh.Error, OSError) as exc:
        raise ConnectFailed(f"cannot connect to {where}: {exc}") from exc
    try:
        key = conn.get_server_host_key()
        fingerprint = str(key.get_fingerprint("sha256")) if key is not None else ""
        check.remember()
        # A name that is not UTF-8 is listed (files.utf8_named) rather than failing the folder.
        sftp = await asyncio.wait_for(
            conn.start_sftp_client(path_errors="surrogateescape"), timeouts.io
        )
    except UsersyncError:
        conn.close()
        raise
    except (TimeoutError, asyncssh.Error, OSError) as exc:
        conn.close()
        raise ConnectFailed(f"{where} accepted the login but did not start SFTP: {exc}") from exc
    return conn, sftp, fingerprint
