"""Real FTP servers on 127.0.0.1 and a free port, with explicit TLS (AUTH TLS, PROT P):

    with VsftpdServer() as server:           # Debian's vsftpd: LIST only (no MLSD), TLS and
                                             # TLS session reuse on data connections required
    with PyftpdlibServer() as server:        # pyftpdlib: MLSD/MLST, TLS required;
                                             # PyftpdlibServer(tls=False): plain FTP
        server.put("/in/userdata_1.csv", b"userId\\n1\\n")
        server.url("/in")                    # ftps://usersync-sftp@127.0.0.1:PORT/in
        # log in as server.username with server.password; trust server.ca_file

Both serve the local folder `root` as `/`, from their own directory under
/var/lib/usersync-test (config, certificates, log), removed by `stop()`. The certificate is
signed by a throwaway certificate authority made for the test process (`ca_file`), valid for
127.0.0.1 and localhost; nothing else trusts it.

vsftpd logs in the system user `usersync-sftp` (the sshd tests' user, see sshd.py) through a
PAM service of its own, `/etc/pam.d/usersync-test-vsftpd` (pam_unix only: Debian's vsftpd
service also wants a login shell), and chroots it to `root`. pyftpdlib runs in a child
process (`python -m tests.servers.ftpd`) with a virtual user of the same name and password.
Root only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import ipaddress
import os
import posixpath
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

from tests.servers import (
    LOOPBACK,
    ServerError,
    free_port,
    freeze_tree,
    kill_procs,
    make_state_dir,
    register_stale_cleaner,
    require_root,
    stop_procs,
    tail,
    wait_gone,
)
from tests.servers.sshd import SFTP_PASSWORD, SFTP_USER, ensure_sftp_user

VSFTPD = "/usr/sbin/vsftpd"
PAM_SERVICE = "usersync-test-vsftpd"
PAM_CONFIG = (
    "# usersync's integration tests: vsftpd logins checked against /etc/shadow only\n"
    "auth     required  pam_unix.so nodelay\n"
    "account  required  pam_unix.so\n"
    "session  required  pam_permit.so\n"
)
START_TIMEOUT = 10.0
STOP_GRACE = 5.0
BIND_ATTEMPTS = 5
PROJECT_ROOT = Path(__file__).resolve().parents[2]

_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C"}
_BIND_FAILURES = ("could not bind", "Address already in use")


# --- certificates ----------------------------------------------------------------------------

_certificates: tuple[bytes, bytes, bytes] | None = None


def certificates() -> tuple[bytes, bytes, bytes]:
    """(CA certificate, server certificate, server key), PEM, made once per test process.

    A CA and a server certificate it signs (not one self-signed certificate): that is what a
    custom CA file holds in real life, and strict verifiers want a proper CA.
    """
    global _certificates
    if _certificates is None:
        _certificates = _make_certificates()
    return _certificates


def _make_certificates() -> tuple[bytes, bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "usersync test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca_cert.public_bytes(pem), cert.public_bytes(pem), key_pem


# --- the servers -----------------------------------------------------------------------------


def _read_greeting(port: int, timeout: float) -> bytes:
    """The first line the server at 127.0.0.1:port sends, or b"" if it cannot be read."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            data = b""
            while b"\n" not in data and len(data) < 4096:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                data += chunk
            with contextlib.suppress(OSError):
                sock.sendall(b"QUIT\r\n")
            return data
    except OSError:
        return b""


def _kill_stale(directory: Path) -> None:
    """Kill the server a dead test run left in `directory` (called by the stale-dir sweep)."""
    try:
        pid = int((directory / "server.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if str(directory).encode() in cmdline:
        procs = freeze_tree(pid)
        kill_procs(procs)
        wait_gone(procs, 5.0)


class FtpServer:
    """What the FTP test servers share: a served folder, TLS files, start and stop.

    Attributes after `start()`: `host`, `port`, `username`, `password`, `scheme` ("ftps" or
    "ftp"), `root` (the local folder served as `/`), `ca_file`, `dir`, `log_path`.
    """

    host = LOOPBACK
    username = SFTP_USER
    password = SFTP_PASSWORD
    name = "ftp server"
    dir_prefix = "ftpd-"

    def __init__(self, *, tls: bool = True, start_timeout: float = START_TIMEOUT) -> None:
        self.tls = tls
        self.start_timeout = start_timeout
        self._dir: Path | None = None
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._uid = 0
        self._gid = 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def scheme(self) -> str:
        return "ftps" if self.tls else "ftp"

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server and wait (at most `start_timeout` s) until it greets with 220."""
        if self.running:
            raise ServerError(f"{self.name} is already running")
        try:
            if self._dir is None:
                self._prepare()
            self._launch_with_retries()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and its sessions (SIGTERM, SIGKILL after 5 s); remove its folder."""
        try:
            if self._proc is not None:
                procs = freeze_tree(self._proc.pid)
                left = stop_procs(procs, grace=STOP_GRACE)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=5)
                self._proc = None
                if left:
                    raise ServerError(f"{self.name} processes {left} survived SIGKILL")
        finally:
            self._port = None
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    def kill(self) -> None:
        """SIGKILL the server and all its session processes at once; open connections drop."""
        if self._proc is None:
            return
        procs = freeze_tree(self._proc.pid)
        kill_procs(procs)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        self._proc = None
        if wait_gone(procs, 5.0):
            raise ServerError(f"{self.name} processes survived SIGKILL")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _prepare(self) -> None:
        require_root(type(self).__name__)
        self._dir = make_state_dir(self.dir_prefix)
        ca, cert, key = certificates()
        self.ca_file.write_bytes(ca)
        (self._dir / "server.crt").write_bytes(cert)
        key_path = self._dir / "server.key"
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        self.root.mkdir(mode=0o755)
        os.chmod(self.root, 0o755)

    def _command(self, port: int) -> list[str]:
        raise NotImplementedError

    def _launch_with_retries(self) -> None:
        for _ in range(BIND_ATTEMPTS):
            port = free_port()
            if self._launch(port):
                self._port = port
                return
        raise ServerError(
            f"{self.name} found no free port in {BIND_ATTEMPTS} tries:\n{self.log_text()}"
        )

    def _launch(self, port: int) -> bool:
        """Start on `port`; False if the port was taken meanwhile (try another)."""
        cmd = self._command(port)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                start_new_session=True,
            )
        (self.dir / "server.pid").write_text(f"{self._proc.pid}\n")
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                self._proc = None
                log_text = tail(self.log_path)
                if any(failure in log_text for failure in _BIND_FAILURES):
                    self.log_path.write_bytes(b"")
                    return False
                raise ServerError(
                    f"{self.name} exited at start.\ncommand: {' '.join(cmd)}\n"
                    f"log {self.log_path}:\n{log_text}"
                )
            remaining = max(deadline - time.monotonic(), 0.1)
            if _read_greeting(port, min(remaining, 2.0)).startswith(b"220"):
                return True
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"{self.name} did not greet on {LOOPBACK}:{port} within "
                    f"{self.start_timeout} s.\ncommand: {' '.join(cmd)}\n"
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            time.sleep(0.02)

    # --- paths ---------------------------------------------------------------------------

    def _need_dir(self) -> Path:
        if self._dir is None:
            raise ServerError(f"the {self.name} is not started (or already stopped)")
        return self._dir

    @property
    def dir(self) -> Path:
        return self._need_dir()

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError(f"the {self.name} is not started")
        return self._port

    @property
    def root(self) -> Path:
        """The local folder served as `/`."""
        return self._need_dir() / "root"

    @property
    def ca_file(self) -> Path:
        """The PEM certificate of the authority that signed the server's certificate."""
        return self._need_dir() / "ca.pem"

    @property
    def log_path(self) -> Path:
        return self._need_dir() / "server.log"

    def log_text(self) -> str:
        return tail(self.log_path)

    def url(self, path: str = "/") -> str:
        """`ftps://usersync-sftp@127.0.0.1:PORT/path` (ftp:// without TLS), path encoded."""
        path = "/" + path.lstrip("/")
        user = quote(self.username, safe="")
        return f"{self.scheme}://{user}@{self.host}:{self.port}{quote(path)}"

    # --- the served tree -----------------------------------------------------------------

    def local_path(self, remote_path: str) -> Path:
        normalized = posixpath.normpath("/" + remote_path.lstrip("/"))
        return self.root / normalized.lstrip("/") if normalized != "/" else self.root

    def _make_parents(self, local: Path) -> None:
        missing = []
        parent = local.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):
            folder.mkdir(mode=0o755)
            os.chmod(folder, 0o755)

    def mkdir(self, remote_path: str, *, writable: bool = False) -> Path:
        """Create folder `remote_path` (and parents, 0755); `writable`: owned by the login
        user, who may then create, rename and delete in it."""
        local = self.local_path(remote_path)
        self._make_parents(local)
        local.mkdir(mode=0o755, exist_ok=True)
        os.chmod(local, 0o755)
        if writable:
            os.chown(local, self._uid, self._gid)
        return local

    def put(
        self,
        remote_path: str,
        data: bytes,
        mtime: float | dt.datetime | None = None,
        *,
        mode: int = 0o644,
        writable: bool = False,
    ) -> Path:
        """Write a file (parents made 0755); `mtime`: epoch seconds or a datetime."""
        local = self.local_path(remote_path)
        self._make_parents(local)
        local.write_bytes(data)
        os.chmod(local, mode)
        if writable:
            os.chown(local, self._uid, self._gid)
        if mtime is not None:
            seconds = mtime.timestamp() if isinstance(mtime, dt.datetime) else float(mtime)
            os.utime(local, (seconds, seconds))
        return local

    def symlink(self, remote_path: str, target: str) -> Path:
        """A symlink at `remote_path` to `target` (as the server resolves it)."""
        local = self.local_path(remote_path)
        self._make_parents(local)
        local.symlink_to(target)
        return local

    def folder(self, remote_path: str) -> FtpFolder:
        """A fresh, empty folder for one test, writable by the login user."""
        local = self.local_path(remote_path)
        if local.exists():
            shutil.rmtree(local)
        self.mkdir(remote_path, writable=True)
        return FtpFolder(self, posixpath.normpath("/" + remote_path.lstrip("/")))


class VsftpdServer(FtpServer):
    """Debian's vsftpd with TLS required for logins and data, and `require_ssl_reuse=YES`:
    a data connection must resume the control connection's TLS session."""

    name = "vsftpd"
    dir_prefix = "vsftpd-"

    def _prepare(self) -> None:
        if not os.access(VSFTPD, os.X_OK):
            raise ServerError(f"{VSFTPD} not found: run scripts/ensure-system-packages.sh")
        require_root("VsftpdServer")
        user = ensure_sftp_user()
        self._uid, self._gid = user.pw_uid, user.pw_gid
        pam = Path("/etc/pam.d") / PAM_SERVICE
        if not pam.exists() or pam.read_text() != PAM_CONFIG:
            pam.write_text(PAM_CONFIG)
        super()._prepare()
        empty = self.dir / "empty"
        empty.mkdir(mode=0o755)
        os.chmod(empty, 0o755)

    def _command(self, port: int) -> list[str]:
        config = self.dir / "vsftpd.conf"
        options = {
            "listen": "YES",
            "listen_ipv6": "NO",
            "listen_address": LOOPBACK,
            "listen_port": str(port),
            "background": "NO",
            "anonymous_enable": "NO",
            "local_enable": "YES",
            "write_enable": "YES",
            "local_umask": "022",
            "chroot_local_user": "YES",
            "allow_writeable_chroot": "YES",
            "local_root": str(self.root),
            "pam_service_name": PAM_SERVICE,
            "secure_chroot_dir": str(self.dir / "empty"),
            "nopriv_user": "nobody",
            "seccomp_sandbox": "NO",
            "isolate": "NO",
            "isolate_network": "NO",
            "pasv_enable": "YES",
            "port_enable": "NO",
            "connect_from_port_20": "NO",
            "ssl_enable": "NO",
            "utf8_filesystem": "YES",
            "use_localtime": "NO",
            "hide_ids": "NO",
            "xferlog_enable": "YES",
            "xferlog_std_format": "NO",
            "log_ftp_protocol": "YES",
            "vsftpd_log_file": str(self.log_path),
            "syslog_enable": "NO",
            "dual_log_enable": "NO",
            "delay_failed_login": "0",
            "idle_session_timeout": "60",
            "data_connection_timeout": "30",
        }
        if self.tls:
            options |= {
                "ssl_enable": "YES",
                "allow_anon_ssl": "NO",
                "force_local_logins_ssl": "YES",
                "force_local_data_ssl": "YES",
                "require_ssl_reuse": "YES",
                "ssl_ciphers": "HIGH",
                "rsa_cert_file": str(self.dir / "server.crt"),
                "rsa_private_key_file": str(self.dir / "server.key"),
            }
        config.write_text("".join(f"{key}={value}\n" for key, value in options.items()))
        return [VSFTPD, str(config)]


class PyftpdlibServer(FtpServer):
    """pyftpdlib (MLSD, MLST) in a child process; TLS required unless `tls=False`."""

    name = "pyftpdlib"
    dir_prefix = "pyftpd-"

    def _command(self, port: int) -> list[str]:
        cmd = [sys.executable, "-m", "tests.servers.ftpd", "--port", str(port)]
        cmd += ["--root", str(self.root), "--user", self.username, "--password", self.password]
        if self.tls:
            cmd += ["--cert", str(self.dir / "server.crt"), "--key", str(self.dir / "server.key")]
        return cmd


for _prefix in (VsftpdServer.dir_prefix, PyftpdlibServer.dir_prefix):
    register_stale_cleaner(_prefix, _kill_stale)


class FtpFolder:
    """One test's own folder `base` on a shared FTP server, plus the server's credentials.

    Paths given to `path`, `local`, `put`, `mkdir`, `symlink` and `url` are relative to
    `base` and may not leave it. `base` is writable by the login user.
    """

    def __init__(self, server: FtpServer, base: str) -> None:
        self.server = server
        self.base = base
        self.host = server.host
        self.port = server.port
        self.username = server.username
        self.password = server.password
        self.ca_file = server.ca_file

    def path(self, rel: str = "") -> str:
        joined = posixpath.normpath(posixpath.join(self.base, rel.lstrip("/")))
        if joined != self.base and not joined.startswith(self.base + "/"):
            raise ValueError(f"{rel!r} leaves the test folder {self.base}")
        return joined

    def local(self, rel: str = "") -> Path:
        return self.server.local_path(self.path(rel))

    def url(self, rel: str = "") -> str:
        return self.server.url(self.path(rel))

    def put(
        self,
        rel: str,
        data: bytes,
        mtime: float | dt.datetime | None = None,
        *,
        mode: int = 0o644,
        writable: bool = False,
    ) -> Path:
        return self.server.put(self.path(rel), data, mtime, mode=mode, writable=writable)

    def mkdir(self, rel: str, *, writable: bool = False) -> Path:
        return self.server.mkdir(self.path(rel), writable=writable)

    def symlink(self, rel: str, target: str) -> Path:
        return self.server.symlink(self.path(rel), target)

    def remove(self) -> None:
        shutil.rmtree(self.local(), ignore_errors=True)


def _serve_pyftpdlib() -> None:
    """The child process of `PyftpdlibServer`."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()

    from pyftpdlib.authorizers import DummyAuthorizer  # type: ignore[import-untyped]
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler  # type: ignore[import-untyped]
    from pyftpdlib.servers import FTPServer  # type: ignore[import-untyped]

    authorizer = DummyAuthorizer()
    authorizer.add_user(args.user, args.password, args.root, perm="elradfmwMT")
    handler = FTPHandler
    if args.cert:
        handler = TLS_FTPHandler
        handler.certfile = args.cert
        handler.keyfile = args.key
        handler.tls_control_required = True
        handler.tls_data_required = True
    handler.authorizer = authorizer
    handler.banner = "usersync test pyftpdlib ready"
    handler.auth_failed_timeout = 0.1  # the default 3 s would slow the wrong-password tests
    server = FTPServer((LOOPBACK, args.port), handler)
    server.serve_forever()


if __name__ == "__main__":
    _serve_pyftpdlib()
