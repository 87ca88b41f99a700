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
import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

from tests.servers import (
    LOOPBACK,
    FileServer,
    ServedFolder,
    ServerError,
    kill_stale_server,
    make_state_dir,
    read_first_line,
    register_stale_cleaner,
    require_root,
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
PROJECT_ROOT = Path(__file__).resolve().parents[2]


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


class FtpServer(FileServer):
    """What the FTP test servers share: a served folder, TLS files, start and stop.

    Attributes after `start()`: `host`, `port`, `username`, `password`, `scheme` ("ftps" or
    "ftp"), `root` (the local folder served as `/`), `ca_file`, `dir`, `log_path`.
    """

    username = SFTP_USER
    password = SFTP_PASSWORD
    name = "ftp server"
    ready_sign = "a 220 greeting"
    bind_failures = ("could not bind", "Address already in use")
    cwd = PROJECT_ROOT
    dir_prefix = "ftpd-"

    def __init__(self, *, tls: bool = True, start_timeout: float = START_TIMEOUT) -> None:
        super().__init__(start_timeout=start_timeout)
        self.tls = tls

    @property
    def scheme(self) -> str:
        return "ftps" if self.tls else "ftp"

    def _prepare(self) -> None:
        require_root(type(self).__name__)
        self._dir = make_state_dir(self.dir_prefix)
        ca, cert, key = certificates()
        self.ca_file.write_bytes(ca)
        (self._dir / "server.crt").write_bytes(cert)
        key_path = self._dir / "server.key"
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        self._make_root()

    def _ready(self, port: int, timeout: float) -> bool:
        return read_first_line(port, timeout, then=b"QUIT\r\n").startswith(b"220")

    @property
    def ca_file(self) -> Path:
        """The PEM certificate of the authority that signed the server's certificate."""
        return self._need_dir() / "ca.pem"

    def folder(self, remote_path: str) -> FtpFolder:
        """A fresh, empty folder for one test, writable by the login user."""
        return FtpFolder(self, self._fresh_folder(remote_path, writable=True))


class VsftpdServer(FtpServer):
    """Debian's vsftpd with TLS required for logins and data, and `require_ssl_reuse=YES`:
    a data connection must resume the control connection's TLS session."""

    name = "vsftpd"
    dir_prefix = "vsftpd-"
    passive = True  # False: a server that refuses PASV and EPSV

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
            "pasv_enable": "YES" if self.passive else "NO",
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


def _kill_stale(directory: Path) -> None:
    """Kill the server a dead test run left in `directory` (called by the stale-dir sweep)."""
    kill_stale_server(directory / "server.pid", str(directory).encode())


for _prefix in (VsftpdServer.dir_prefix, PyftpdlibServer.dir_prefix):
    register_stale_cleaner(_prefix, _kill_stale)


class FtpFolder(ServedFolder[FtpServer]):
    """One test's own folder `base` on a shared FTP server (see `ServedFolder`), plus the
    server's `ca_file`. `base` is writable by the login user."""

    def __init__(self, server: FtpServer, base: str) -> None:
        super().__init__(server, base)
        self.ca_file = server.ca_file


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
