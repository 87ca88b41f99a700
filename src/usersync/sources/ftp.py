"""FTP and FTPS on the standard library's ftplib: log in, list folders, stream files.

FTPS is explicit TLS (`AUTH TLS` on the usual port, then `PROT P` so that listings and files
are encrypted too), with the server's certificate checked against the system's authorities or
a given CA file. Data connections are passive. Folders are listed with MLSD where the server
offers it (exact types, sizes and UTC times) and with LIST otherwise, whose `ls -l` lines are
parsed and whose coarse times are replaced by MDTM's exact ones for the files that matter.

Every ftplib, socket and TLS error is translated here into `usersync.errors`; every network
wait is bounded by the connect or I/O timeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ftplib
import logging
import posixpath
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, NamedTuple, TypeVar, cast

from usersync.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionLost,
    ConnectTimeout,
    RemotePathNotFound,
    RemotePermissionDenied,
    RemoteTimeout,
    SourceError,
    UntrustedCertificate,
    UsageError,
    UsersyncError,
)
from usersync.files import EXTENSION, EntryKind, RemoteEntry, utf8_named
from usersync.sources.base import ClosesOnExit, Timeouts, start_folder_of
from usersync.sources.tls import TRUST_YOUR_CA, tls_context
from usersync.sources.urls import TlsTrust
from usersync.streams import ChunkReader

T = TypeVar("T")

logger = logging.getLogger(__name__)

# LIST gives times to the minute at best (to the day for older files): each listed .csv file's
# exact time is asked with MDTM, one round trip each, up to this many per listing.
MTIME_LOOKUPS_MAX = 200
ANONYMOUS_USERS = ("anonymous", "ftp")
_ABORT_REPLY_WAIT = 5.0  # seconds to wait for the reply that ends an abandoned transfer
_CHUNK_MAX = 1024 * 1024


@dataclass(frozen=True)
class FtpTarget:
    host: str
    port: int
    username: str
    tls: bool  # explicit TLS (ftps://)

    @property
    def scheme(self) -> str:
        return "ftps" if self.tls else "ftp"

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 21 else f"{host}:{self.port}"


def untrusted_certificate(address: str, exc: ssl.SSLCertVerificationError) -> SourceError:
    reason = exc.verify_message or exc.reason or str(exc)
    return UntrustedCertificate(
        f"the TLS certificate of {address} is not trusted ({reason}). {TRUST_YOUR_CA} "
        "--insecure-skip-verify (verify_tls false in the REST API) turns the check off: the "
        "connection is then still encrypted, but anyone on the network path could pose as "
        "the server and read the password."
    )


class _PassiveRefused(ftplib.error_perm):
    """The server said no to passive mode (PASV or EPSV), the only mode usersync uses."""


class _PassiveFTP(ftplib.FTP):
    """ftplib.FTP whose refused PASV/EPSV is told apart from other refusals: vsftpd with
    `pasv_enable=NO` answers "550 Permission denied.", which read as a file's permissions."""

    def makepasv(self) -> tuple[str, int]:
        try:
            return super().makepasv()
        except ftplib.error_perm as exc:
            raise _PassiveRefused(*exc.args) from exc


class _SessionReusingFTP(_PassiveFTP, ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session.

    Servers that require it (vsftpd's default `require_ssl_reuse=YES`, FileZilla Server) use
    it to know that a data connection comes from the client that logged in, and refuse a
    fresh handshake with "522 SSL connection failed: session reuse required". The stock
    FTP_TLS does not offer the session (a long-standing CPython issue).
    """

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        control = cast(ssl.SSLSocket, self.sock)
        wrapped = self.context.wrap_socket(conn, server_hostname=self.host, session=control.session)
        return wrapped, size


def _reply_code(exc: ftplib.Error) -> str:
    return str(exc)[:3]


def _refused_with(error: UsersyncError, *codes: str) -> bool:
    """Whether `error` comes from a permanent refusal (5xx) of the server with one of `codes`."""
    cause = error.__cause__
    return isinstance(cause, ftplib.error_perm) and _reply_code(cause) in codes


class FtpSource(ClosesOnExit):
    """A logged-in FTP or FTPS server. Use `FtpSource.connect(...)`; close it when done.

    One control connection serves every call; a stream from `open` holds it until the stream
    is read to its end or closed (a call made meanwhile abandons the transfer first). After a
    timeout or a dropped connection the next call logs in again.
    """

    def __init__(
        self, target: FtpTarget, password: str | None, trust: TlsTrust, timeouts: Timeouts
    ) -> None:
        self.target = target
        self._password = password
        self._trust = trust
        self._timeouts = timeouts
        self._ftp: ftplib.FTP | None = None
        self._features: frozenset[str] = frozenset()
        self._mlsd = False
        self._transfer: _Download | None = None
        self._start_folder: str | None = None  # as the first login found it

    @classmethod
    def connect(
        cls,
        target: FtpTarget,
        password: str | None,
        trust: TlsTrust | None = None,
        timeouts: Timeouts | None = None,
    ) -> FtpSource:
        source = cls(target, password, trust or TlsTrust(), timeouts or Timeouts())
        source._login()
        return source

    def __repr__(self) -> str:
        return f"FtpSource({self.target.scheme}://{self.target.username}@{self.target.address})"

    def _where(self, path: str) -> str:
        return f"{self.target.scheme}://{self.target.address}{path}"

    # --- the session -----------------------------------------------------------------------

    def _login(self) -> None:
        target = self.target
        password = self._password
        if password is None:
            if target.username.lower() not in ANONYMOUS_USERS:
                raise AuthenticationFailed(
                    f"no password for {target.username}@{target.address}: give --password-env "
                    "VAR with the password in that environment variable"
                )
            password = ""  # ftplib sends its conventional anonymous password
        if not self._trust.verify:
            logger.warning(
                "the TLS certificate of %s is not checked (insecure-skip-verify)", target.address
            )
        ftp: ftplib.FTP = (
            _SessionReusingFTP(context=tls_context(self._trust)) if target.tls else _PassiveFTP()
        )
        try:
            self._greet(ftp)
            self._authenticate(ftp, password)
            ftp.voidcmd("TYPE I")  # SIZE and byte-exact transfers need binary mode
            self._features = _features(ftp)
            if "UTF8" in self._features:
                with contextlib.suppress(ftplib.Error):
                    ftp.sendcmd("OPTS UTF8 ON")  # some servers send UTF-8 names only then
            if self._start_folder is None:  # before any CWD: the account's home folder
                self._start_folder = _working_folder(ftp)
        except BaseException:
            ftp.close()
            raise
        self._mlsd = "MLST" in self._features
        self._ftp = ftp

    def _greet(self, ftp: ftplib.FTP) -> None:
        target = self.target
        address = target.address
        try:
            ftp.connect(target.host, target.port, timeout=self._timeouts.connect)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.auth()
        except socket.gaierror as exc:
            raise ConnectFailed(f"cannot find host {target.host!r}: {exc.strerror}") from exc
        except ConnectionRefusedError as exc:
            raise ConnectFailed(
                f"{address} refused the connection: no FTP server is listening there. Check "
                "the host and port, and that the server is running."
            ) from exc
        except TimeoutError as exc:
            raise ConnectTimeout(
                f"{address} did not answer as an FTP server within {self._timeouts.connect:g} s"
                ": check the host and port, or the server's load."
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise untrusted_certificate(address, exc) from exc
        except ssl.SSLError as exc:
            raise SourceError(
                f"the TLS handshake with {address} failed ({exc.reason or exc}); check that the "
                "server speaks explicit FTPS (AUTH TLS) on that port"
            ) from exc
        except ftplib.error_perm as exc:
            raise SourceError(
                f"{address} does not offer TLS (it answered AUTH TLS with {exc}). If it only "
                "speaks plain FTP, use an ftp:// URL: the password then travels unencrypted."
            ) from exc
        except ftplib.error_temp as exc:
            raise ConnectFailed(
                f"{address} is not accepting logins now ({exc}); try again"
            ) from exc
        except (ftplib.Error, EOFError, OSError) as exc:
            raise ConnectFailed(f"cannot connect to {address}: {_describe(exc)}") from exc

    def _authenticate(self, ftp: ftplib.FTP, password: str) -> None:
        target = self.target
        who = f"{target.username}@{target.address}"
        try:
            ftp.login(target.username, password)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            sock = cast(socket.socket, ftp.sock)
            sock.settimeout(self._timeouts.io)
            ftp.timeout = self._timeouts.io  # data connections too
        except ftplib.error_perm as exc:
            reply = str(exc)
            if re.search(r"\b(TLS|SSL|encrypt)", reply, re.IGNORECASE) and not target.tls:
                raise AuthenticationFailed(
                    f"{target.address} requires TLS ({reply}): use an ftps:// URL"
                ) from exc
            raise AuthenticationFailed(
                f"{who} refused the login ({reply}): check the user name and the password"
            ) from exc
        except TimeoutError as exc:
            raise ConnectTimeout(
                f"{target.address} did not complete the login within "
                f"{self._timeouts.connect:g} s; try again later"
            ) from exc
        except ssl.SSLError as exc:
            raise SourceError(f"TLS failed while logging in to {who}: {exc}") from exc
        except ftplib.error_temp as exc:
            raise ConnectFailed(f"{who}: the server refused the login for now ({exc})") from exc
        except (ftplib.Error, EOFError, OSError) as exc:
            raise ConnectFailed(
                f"{who}: the connection failed while logging in ({_describe(exc)})"
            ) from exc

    def _session(self) -> ftplib.FTP:
        """The control connection, free for a new command: an unfinished download is
        abandoned, and a session lost to an earlier error is logged in again."""
        if self._transfer is not None:
            self._transfer.abandon()
        if self._ftp is None:
            self._login()
        assert self._ftp is not None
        return self._ftp

    def _drop(self) -> None:
        """Forget a session that timed out or dropped (its replies can no longer be trusted)."""
        if self._ftp is not None:
            self._ftp.close()
            self._ftp = None

    @contextlib.contextmanager
    def _call(self, path: str, what: str) -> Iterator[None]:
        """Translate what goes wrong in the block into usersync's errors."""
        try:
            yield
        except UsersyncError:
            raise
        except TimeoutError as exc:
            self._drop()
            raise RemoteTimeout(
                f"{self._where(path)}: the server did not answer within {self._timeouts.io:g} s "
                f"while {what}; it may be overloaded or the network down. Try again later."
            ) from exc
        except _PassiveRefused as exc:  # permanent: a setting of the server
            raise SourceError(
                f"{self._where(path)}: the server refused passive mode while {what} ({exc}); "
                "usersync opens every data connection in passive mode: ask the server's "
                "administrator to allow it (vsftpd: pasv_enable=YES)"
            ) from exc
        except ftplib.error_perm as exc:
            raise self._refusal(exc, path, what) from exc
        except ftplib.error_temp as exc:
            code = _reply_code(exc)
            if code in ("421", "426"):
                self._drop()
            if code == "425":
                raise ConnectFailed(
                    f"{self._where(path)}: the server could not open a data connection while "
                    f"{what} ({exc}); a firewall may block its passive-mode ports"
                ) from exc
            raise ConnectionLost(
                f"{self._where(path)}: the server could not finish {what} ({exc}); nothing "
                "was changed. Try again."
            ) from exc
        except UnicodeError as exc:
            self._drop()  # the rest of that reply is still on its way
            raise SourceError(
                f"{self._where(path)}: the server sent a name that is not UTF-8 while {what}"
            ) from exc
        except (ftplib.Error, EOFError, OSError) as exc:
            self._drop()
            raise ConnectionLost(
                f"{self._where(path)}: the connection was lost while {what} "
                f"({_describe(exc)}); nothing was changed. Try again."
            ) from exc

    def _refusal(self, exc: ftplib.error_perm, path: str, what: str) -> UsersyncError:
        reply = str(exc)
        code = _reply_code(exc)
        lowered = reply.lower()
        if code == "530":
            return AuthenticationFailed(f"{self._where(path)}: not logged in ({reply})")
        if "denied" in lowered or "permission" in lowered or code == "553":
            return RemotePermissionDenied(
                f"{self._where(path)}: permission denied while {what} ({reply}); ask the "
                f"server's administrator to give {self.target.username!r} access"
            )
        if code == "550":
            return RemotePathNotFound(
                f"{self._where(path)} does not exist (the server answered {reply!r})"
            )
        return SourceError(f"{self._where(path)}: the server refused {what} ({reply})")

    # --- the Source protocol -----------------------------------------------------------------

    def list_dir(self, path: str) -> list[RemoteEntry]:
        _check_path(path)
        self._enter_folder(path)
        entries = []
        lookups = 0
        for listed, is_link in self._list_here(path):
            entry = utf8_named(listed)
            if not entry.name_is_utf8:  # the server cannot be asked about it: hidden as it is
                entries.append(entry)
                continue
            if is_link:
                entry = self._follow(entry)
            elif (
                not self._mlsd
                and entry.kind is EntryKind.FILE
                and entry.name.lower().endswith(EXTENSION)
                and lookups < MTIME_LOOKUPS_MAX
            ):
                lookups += 1
                modified = self._mdtm(entry.path)
                if modified is not None:
                    entry = dataclasses.replace(entry, modified=modified)
            entries.append(entry)
        return entries

    def start_folder(self) -> str:
        return self._start_folder or "/"

    def stat(self, path: str) -> RemoteEntry:
        _check_path(path)
        name = posixpath.basename(path.rstrip("/")) or "/"
        if path == "/":
            return RemoteEntry(name="/", path="/", kind=EntryKind.DIRECTORY)
        if "MLST" in self._features:
            listed = self._mlst(path, name)
            return self._follow(listed.entry) if listed.is_link else listed.entry
        return self._stat_by_probing(path, name)

    def open(self, path: str) -> BinaryIO:
        _check_path(path)
        ftp = self._session()
        try:
            with self._call(path, "opening it"):
                conn = ftp.transfercmd(f"RETR {path}")
        except RemotePathNotFound:
            # 550 means "no" to anything: tell a missing file from one the server won't send
            if self.stat(path).kind is EntryKind.DIRECTORY:
                raise RemotePathNotFound(f"{self._where(path)} is a folder, not a file") from None
            raise RemotePermissionDenied(
                f"{self._where(path)}: the server refuses to send the file; ask its "
                f"administrator to give {self.target.username!r} read access"
            ) from None
        self._transfer = _Download(self, conn, path)
        return cast(BinaryIO, self._transfer)

    def rename(self, path: str, new_path: str) -> None:
        _check_path(path)
        _check_path(new_path)
        if self._exists(new_path):
            raise SourceError(f"cannot move {path} to {self._where(new_path)}: it already exists")
        ftp = self._session()
        with self._call(path, f"moving it to {new_path}"):
            ftp.rename(path, new_path)

    def remove(self, path: str) -> None:
        _check_path(path)
        ftp = self._session()
        with self._call(path, "deleting it"):
            ftp.delete(path)

    def close(self) -> None:
        if self._transfer is not None:
            with contextlib.suppress(UsersyncError):
                self._transfer.abandon()
        ftp, self._ftp = self._ftp, None
        if ftp is None:
            return
        try:
            sock = ftp.sock
            if sock is not None:
                sock.settimeout(min(self._timeouts.io, 2.0))
            ftp.quit()
        except (ftplib.Error, EOFError, OSError):
            pass  # a server that is gone has nothing left to release
        finally:
            ftp.close()

    # --- listing -------------------------------------------------------------------------------

    def _enter_folder(self, path: str) -> None:
        ftp = self._session()
        try:
            with self._call(path, "opening the folder"):
                ftp.cwd(path)
        except RemotePathNotFound:
            if self._size(path) is not None:
                raise RemotePathNotFound(f"{self._where(path)} is a file, not a folder") from None
            raise

    def _list_here(self, path: str) -> list[_Listed]:
        """The entries of the current folder `path`, as listed (links not followed)."""
        if self._mlsd:
            try:
                lines = self._listing("MLSD", path)
            except SourceError as error:
                if not _refused_with(error, "500", "501", "502", "504"):
                    raise
                self._mlsd = False  # advertised but not understood: LIST from now on
            else:
                return [e for e in (_parse_mlsx(line, path) for line in lines) if e is not None]
        lines = self._listing("LIST", path)
        return [e for e in (_parse_list_line(line, path) for line in lines) if e is not None]

    def _listing(self, command: str, path: str) -> list[str]:
        ftp = self._session()
        with self._call(path, "listing the folder"):
            conn = ftp.transfercmd(command)
            data = bytearray()
            try:
                while chunk := conn.recv(64 * 1024):
                    data += chunk
                _end_data(conn)
            finally:
                conn.close()
            ftp.voidresp()
        return [_decode(line) for line in bytes(data).splitlines() if line.strip()]

    def _follow(self, link: RemoteEntry) -> RemoteEntry:
        """A listed link as what it points to; a broken one stays "other"."""
        try:
            if "MLST" in self._features:
                listed = self._mlst(link.path, link.name)  # most servers answer for the target
                if not listed.is_link:
                    return listed.entry
            return self._stat_by_probing(link.path, link.name, look_in_parent=False)
        except (RemotePathNotFound, RemotePermissionDenied):
            return RemoteEntry(link.name, link.path, EntryKind.OTHER)

    # --- one path --------------------------------------------------------------------------

    def _mlst(self, path: str, name: str) -> _Listed:
        ftp = self._session()
        with self._call(path, "reading its size"):
            reply = ftp.sendcmd(f"MLST {path}")
        for line in reply.splitlines()[1:]:
            listed = _parse_mlsx(line[1:], posixpath.dirname(path)) if line[:1] == " " else None
            if listed is not None:
                entry = dataclasses.replace(listed.entry, name=name, path=path)
                return listed._replace(entry=entry)
        raise SourceError(f"{self._where(path)}: the server's MLST reply was not understood")

    def _stat_by_probing(self, path: str, name: str, *, look_in_parent: bool = True) -> RemoteEntry:
        """For servers without MLST: SIZE answers for regular files only (links followed),
        CWD for folders; anything else is looked for in the parent folder's listing."""
        size = self._size(path)
        if size is not None:
            return RemoteEntry(name, path, EntryKind.FILE, size, self._mdtm(path))
        if self._is_folder(path):
            return RemoteEntry(name, path, EntryKind.DIRECTORY)
        if look_in_parent:
            parent = posixpath.dirname(path) or "/"
            with contextlib.suppress(RemotePathNotFound, RemotePermissionDenied):
                self._enter_folder(parent)
                if any(listed.entry.name == name for listed in self._list_here(parent)):
                    return RemoteEntry(name, path, EntryKind.OTHER)
        raise RemotePathNotFound(f"{self._where(path)} does not exist")

    def _probe(self, path: str, what: str, request: Callable[[ftplib.FTP], T]) -> T | None:
        """`request`'s answer, or None when the server refuses it (a 5xx reply: no such file,
        a folder, a device, a broken link...); other failures raise as usual."""
        ftp = self._session()
        with self._call(path, what):
            try:
                return request(ftp)
            except ftplib.error_perm:
                return None

    def _size(self, path: str) -> int | None:
        """SIZE of a regular file; None when the server refuses it."""
        return self._probe(path, "reading its size", lambda ftp: ftp.size(path))

    def _mdtm(self, path: str) -> datetime | None:
        if self._features and "MDTM" not in self._features:
            return None
        what = "reading its modification time"
        reply = self._probe(path, what, lambda ftp: ftp.sendcmd(f"MDTM {path}"))
        if reply is None or not reply.startswith("213"):
            return None
        return _parse_time(reply[4:].strip())

    def _is_folder(self, path: str) -> bool:
        return self._probe(path, "opening the folder", lambda ftp: ftp.cwd(path)) is not None

    def _exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except RemotePathNotFound:
            return False
        return True


class _Download(ChunkReader):
    """RETR's data connection as a binary stream. Read to its end, it collects the server's
    closing reply at once (the session is free again); closed early, it drops the data
    connection and takes whatever reply the server gives to that."""

    def __init__(self, source: FtpSource, conn: socket.socket, path: str) -> None:
        super().__init__()
        self._source = source
        self._conn: socket.socket | None = conn
        self._path = path
        self._abandoned = False
        self.bytes_received = 0

    def read_chunk(self, size: int) -> bytes:
        conn = self._conn
        ftp = self._source._ftp
        if self._abandoned or (conn is not None and ftp is None):
            raise ConnectionLost(
                f"{self._source._where(self._path)}: the download was stopped before its end "
                "(another request used the connection, or it was closed)"
            )
        if conn is None or ftp is None:
            return b""
        try:
            with self._source._call(self._path, "reading it"):
                data = conn.recv(min(size, _CHUNK_MAX))
                if not data:
                    self._conn = None
                    self._source._transfer = None
                    try:
                        _end_data(conn)
                    finally:
                        conn.close()
                    ftp.voidresp()
        except BaseException:
            self._forget()
            self._abandoned = True  # what follows the error can no longer be read
            raise
        self.bytes_received += len(data)
        return data

    def _forget(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._source._transfer is self:
            self._source._transfer = None

    def abandon(self) -> None:
        """Stop the transfer before its end and take the server's reply to that (426 or 226).
        A server that does not answer soon is dropped: the next call logs in again."""
        conn = self._conn
        self._forget()
        if conn is None:
            return
        self._abandoned = True
        ftp = self._source._ftp
        if ftp is None or ftp.sock is None:
            return
        try:
            ftp.sock.settimeout(min(_ABORT_REPLY_WAIT, self._source._timeouts.io))
            ftp.getresp()
            ftp.sock.settimeout(self._source._timeouts.io)
        except ftplib.error_temp:
            ftp.sock.settimeout(self._source._timeouts.io)  # 426: the transfer was aborted
        except (ftplib.Error, EOFError, OSError, UnicodeError):
            self._source._drop()

    def close(self) -> None:
        if not self.closed:
            try:
                self.abandon()
            finally:
                super().close()


def _describe(exc: BaseException) -> str:
    """An exception for a message: its text, or its kind when it has none (EOFError...)."""
    return str(exc) or type(exc).__name__


def _end_data(conn: socket.socket) -> None:
    """Close a finished data connection's TLS layer properly (servers may log a truncated
    transfer otherwise); a plain socket has nothing to do."""
    if isinstance(conn, ssl.SSLSocket):
        with contextlib.suppress(ssl.SSLError, OSError):
            conn.unwrap()


def _check_path(path: str) -> None:
    if "\r" in path or "\n" in path:
        raise UsageError(f"{path!r}: FTP cannot name a path with a line break in it")


def _decode(line: bytes) -> str:
    # Bytes that are not UTF-8 stay recognizable (files.utf8_named shows them as such).
    return line.decode("utf-8", errors="surrogateescape")


def _working_folder(ftp: ftplib.FTP) -> str:
    """PWD's folder, "/" if the server cannot say (or says it in another encoding)."""
    try:
        return start_folder_of(ftp.pwd())
    except (ftplib.Error, UnicodeError):
        return "/"


def _features(ftp: ftplib.FTP) -> frozenset[str]:
    """The commands FEAT advertises (first word of each line, upper case)."""
    try:
        reply = ftp.sendcmd("FEAT")
    except ftplib.Error:
        return frozenset()
    words = (line.split()[0].upper() for line in reply.splitlines()[1:-1] if line.strip())
    return frozenset(words)


def _parse_time(value: str) -> datetime | None:
    """An MLSD `modify` fact or MDTM reply, YYYYMMDDHHMMSS[.fff] in UTC."""
    match = re.fullmatch(r"(\d{14})(?:\.(\d{1,6}))?", value)
    if match is None:
        return None
    try:
        moment = datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    fraction = match.group(2)
    if fraction:
        moment = moment.replace(microsecond=int(fraction.ljust(6, "0")))
    return moment


class _Listed(NamedTuple):
    """An entry as a listing gave it: a link is "other" until it is followed."""

    entry: RemoteEntry
    is_link: bool = False


def _parse_mlsx(line: str, folder: str) -> _Listed | None:
    """One MLSD/MLST line: `fact=value;fact=value; name` (RFC 3659)."""
    facts_text, sep, name = line.partition(" ")
    if not sep or not name or name in (".", ".."):
        return None
    facts = {}
    for fact in facts_text.split(";"):
        key, eq, value = fact.partition("=")
        if eq:
            facts[key.strip().lower()] = value
    kind_name = facts.get("type", "").lower()
    if kind_name in ("cdir", "pdir"):
        return None
    name = posixpath.basename(name.rstrip("/")) or name  # MLST may give the full path
    path = posixpath.join(folder, name)
    size_text = facts.get("size") or facts.get("sizd")
    size = int(size_text) if size_text and size_text.isdigit() else None
    modified = _parse_time(facts.get("modify", ""))
    if kind_name == "file":
        return _Listed(RemoteEntry(name, path, EntryKind.FILE, size, modified))
    if kind_name == "dir":
        return _Listed(RemoteEntry(name, path, EntryKind.DIRECTORY, None, modified))
    is_link = "slink" in kind_name or "symlink" in kind_name
    return _Listed(RemoteEntry(name, path, EntryKind.OTHER), is_link)


_UNIX_LINE = re.compile(
    r"(?P<type>[-dlpscbD])[-rwxsStTlL]{9}[.+@]?\s+\d+\s+\S+\s+(?:\S+\s+)?"
    r"(?P<size>\d+|\d+,\s*\d+)\s+"
    r"[A-Za-z]{3}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4})\s(?P<name>.+)"
)
_DOS_LINE = re.compile(
    r"\d{1,2}-\d{1,2}-\d{2,4}\s+\d{1,2}:\d{2}\s*(?:[AP]M)?\s+(?P<size><DIR>|\d+)\s+(?P<name>.+)",
    re.IGNORECASE,
)


def _parse_list_line(line: str, folder: str) -> _Listed | None:
    """One LIST line, Unix `ls -l` style or Windows/IIS style. Times are left out: they are
    too coarse (and in an unknown zone); MDTM gives the exact ones."""
    unix = _UNIX_LINE.fullmatch(line)
    if unix is not None:
        name = unix.group("name")
        kind_char = unix.group("type")
        if kind_char == "l":
            name = name.split(" -> ", 1)[0]
        if name in (".", ".."):
            return None
        path = posixpath.join(folder, name)
        if kind_char == "-":
            return _Listed(RemoteEntry(name, path, EntryKind.FILE, int(unix.group("size"))))
        if kind_char in "dD":
            return _Listed(RemoteEntry(name, path, EntryKind.DIRECTORY))
        return _Listed(RemoteEntry(name, path, EntryKind.OTHER), kind_char == "l")
    dos = _DOS_LINE.fullmatch(line)
    if dos is not None:
        name = dos.group("name")
        path = posixpath.join(folder, name)
        if dos.group("size").upper() == "<DIR>":
            return _Listed(RemoteEntry(name, path, EntryKind.DIRECTORY))
        return _Listed(RemoteEntry(name, path, EntryKind.FILE, int(dos.group("size"))))
    if not line.lower().startswith("total "):
        logger.debug("LIST line not understood, left out: %r", line)
    return None
