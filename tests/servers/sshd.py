"""A real OpenSSH sshd serving SFTP from a chroot, on 127.0.0.1 and a free port.

    with SshServer() as server:          # or server = SshServer().start(); ...; server.stop()
        server.put("/data/userdata_1.csv", b"id\\n1\\n")
        # connect to server.host:server.port as server.username with server.password,
        # or with server.client_key_path; trust server.known_hosts_path.

Logins use the system user `usersync-sftp` (created when missing, with a known password),
which sees only `server.root` as `/` (`ChrootDirectory`, `ForceCommand internal-sftp`).
Everything else (host keys, client keys, authorized_keys, known_hosts, config, log, pid file)
lives in the server's own directory under /var/lib/usersync-test, removed by `stop()`.
Root only: creating the user and chrooting need it.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import (
    LOOPBACK,
    STATE_ROOT,
    FileServer,
    ServedFolder,
    ServerError,
    ensure_state_root,
    free_port,
    kill_stale_server,
    make_state_dir,
    read_first_line,
    register_stale_cleaner,
    require_root,
    run_checked,
)

SSHD = "/usr/sbin/sshd"
SFTP_USER = "usersync-sftp"
SFTP_PASSWORD = "usersync-test-password"
CLIENT_KEY_PASSPHRASE = "usersync-test-passphrase"
START_TIMEOUT = 10.0
DIR_PREFIX = "sshd-"

_SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_ENV = {"PATH": _SYSTEM_PATH, "LANG": "C", "LC_ALL": "C"}

# (file name in the server directory, key type, bits, passphrase)
_HOST_KEYS = [
    ("ssh_host_ed25519_key", "ed25519", None, ""),
    ("ssh_host_rsa_key", "rsa", 2048, ""),
]
_CLIENT_KEYS = [
    ("client/id_ed25519", "ed25519", None, ""),
    ("client/id_rsa", "rsa", 2048, ""),
    ("client/id_ecdsa", "ecdsa", 256, ""),
    ("client/id_ed25519_encrypted", "ed25519", None, CLIENT_KEY_PASSPHRASE),
]

_user_ready = False
# The client keys are made once per test process and reused by every server (the host keys
# are each server's own): ssh-keygen is the slowest part of starting a server.
_client_key_files: dict[str, bytes] = {}


def _tool(name: str) -> str:
    found = shutil.which(name, path=_SYSTEM_PATH)
    if found is None:
        raise ServerError(
            f"{name} not found in {_SYSTEM_PATH}: run scripts/ensure-system-packages.sh"
        )
    return found


def ensure_sftp_user() -> pwd.struct_passwd:
    """Create the login user `usersync-sftp` if missing and (re)set its known password.

    Done once per test process, under a file lock (other test processes may do it too).
    `UsePAM no` makes sshd check /etc/shadow itself: the account must have a real password
    hash (not locked), an executable shell and no expiry.
    """
    global _user_ready
    ensure_state_root()
    with open(STATE_ROOT / ".user.lock", "a") as lock:
        deadline = time.monotonic() + 60
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ServerError(
                        f"{STATE_ROOT / '.user.lock'} stayed locked for 60 s (another test "
                        "process setting up the SFTP user?)"
                    ) from None
                time.sleep(0.05)
        try:
            entry: pwd.struct_passwd | None = pwd.getpwnam(SFTP_USER)
        except KeyError:
            entry = None
        if entry is None:
            run_checked(
                [
                    _tool("useradd"),
                    *("--system", "--user-group", "--no-create-home", "--home-dir", "/"),
                    *("--shell", "/usr/sbin/nologin", SFTP_USER),
                ],
                timeout=30,
                what="creating the SFTP test user",
                env=_ENV,
            )
        elif entry.pw_dir != "/" or entry.pw_shell != "/usr/sbin/nologin":
            run_checked(
                [_tool("usermod"), "--home", "/", "--shell", "/usr/sbin/nologin", SFTP_USER],
                timeout=30,
                what="fixing the SFTP test user",
                env=_ENV,
            )
        if not _user_ready:
            run_checked(
                [_tool("chpasswd")],
                input_text=f"{SFTP_USER}:{SFTP_PASSWORD}\n",
                timeout=30,
                what="setting the SFTP test user's password",
                env=_ENV,
            )
            run_checked(
                [
                    _tool("chage"),
                    *("--expiredate", "-1", "--maxdays", "-1", "--inactive", "-1", SFTP_USER),
                ],
                timeout=30,
                what="removing expiry from the SFTP test user",
                env=_ENV,
            )
            _user_ready = True
    return pwd.getpwnam(SFTP_USER)


_openssh_version: tuple[int, int] | None = None


def openssh_version() -> tuple[int, int]:
    """(major, minor) of the installed sshd."""
    global _openssh_version
    if _openssh_version is None:
        out = subprocess.run(
            [SSHD, "-V"], capture_output=True, text=True, timeout=10, check=False, env=_ENV
        )
        match = re.search(r"OpenSSH_(\d+)\.(\d+)", out.stdout + out.stderr)
        if match is None:
            raise ServerError(f"cannot tell the version of {SSHD}: {out.stderr or out.stdout}")
        _openssh_version = (int(match.group(1)), int(match.group(2)))
    return _openssh_version


def fingerprint(public_key_line: str) -> str:
    """The `SHA256:...` fingerprint of an OpenSSH public key line, as `ssh-keygen -lf` prints."""
    blob = base64.b64decode(public_key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _generate_keys(directory: Path, specs: list[tuple[str, str, int | None, str]]) -> None:
    """Run ssh-keygen for all keys in parallel."""
    keygen = _tool("ssh-keygen")
    running: list[tuple[list[str], subprocess.Popen[bytes]]] = []
    try:
        for name, kind, bits, passphrase in specs:
            path = directory / name
            path.parent.mkdir(mode=0o700, exist_ok=True)
            cmd = [keygen, "-q", "-t", kind, "-N", passphrase, "-C", f"usersync-test-{kind}"]
            if bits is not None:
                cmd += ["-b", str(bits)]
            cmd += ["-f", str(path)]
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=_ENV,
            )
            running.append((cmd, proc))
        for cmd, proc in running:
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired as exc:
                raise ServerError(f"{' '.join(cmd)} did not finish within 30 s") from exc
            if proc.returncode != 0:
                raise ServerError(f"{' '.join(cmd)} failed: {out.decode(errors='replace')}")
    finally:
        for _, proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


register_stale_cleaner(
    DIR_PREFIX,
    lambda directory: kill_stale_server(
        directory / "sshd.pid", str(directory / "sshd_config").encode()
    ),
)


class SshServer(FileServer):
    """A real sshd (SFTP only, chrooted) on 127.0.0.1 and a free port. Root only. Sessions
    start in `/`, or in `start_folder` (as a non-chrooted account starts in its home).

    Attributes after `start()`: `host`, `port`, `username`, `password`, `root` (the local
    folder the client sees as `/`), `client_key_path` (ed25519), `client_key_rsa_path`,
    `client_key_ecdsa_path`, `client_key_encrypted_path` + `client_key_passphrase`
    (ed25519, OpenSSH format, bcrypt-protected), `known_hosts_path`, `host_public_keys`,
    `host_key_fingerprints`, `dir` (all the server's state), `log_path`, `config_path`.

    `stop()` ends it for good (processes and directory); `kill()` SIGKILLs sshd and every
    session process at once (open connections drop) but keeps the directory, so `start()`
    can bring it back on the same port with the same keys.
    """

    username = SFTP_USER
    password = SFTP_PASSWORD
    client_key_passphrase = CLIENT_KEY_PASSPHRASE
    name = "sshd"
    ready_sign = "an SSH banner"
    bind_failures = ("Address already in use", "Cannot bind any address")
    pid_file = None  # sshd writes sshd.pid itself, once it listens
    log_name = "sshd.log"
    cwd = "/"

    def __init__(
        self, *, start_timeout: float = START_TIMEOUT, start_folder: str | None = None
    ) -> None:
        super().__init__(start_timeout=start_timeout)
        self._host_public_keys: list[str] = []
        self._start_folder = start_folder  # where sessions start (made): sftp-server -d

    @property
    def scheme(self) -> str:
        return "sftp"

    # --- setup ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        require_root("SshServer")
        user = ensure_sftp_user()
        self._uid, self._gid = user.pw_uid, user.pw_gid
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        self._dir = make_state_dir(DIR_PREFIX)
        (self._dir / "client").mkdir(mode=0o700)
        if _client_key_files:
            _generate_keys(self._dir, _HOST_KEYS)
            for name, content in _client_key_files.items():
                path = self._dir / name
                path.write_bytes(content)
                os.chmod(path, 0o644 if name.endswith(".pub") else 0o600)
        else:
            _generate_keys(self._dir, _HOST_KEYS + _CLIENT_KEYS)
            for name, *_ in _CLIENT_KEYS:
                for file_name in (name, f"{name}.pub"):
                    _client_key_files[file_name] = (self._dir / file_name).read_bytes()
        self._host_public_keys = [
            (self._dir / f"{name}.pub").read_text().strip() for name, *_ in _HOST_KEYS
        ]
        authorized = "".join((self._dir / f"{name}.pub").read_text() for name, *_ in _CLIENT_KEYS)
        # sshd reads authorized_keys as the user: world-readable, in a traversable folder.
        self.authorized_keys_path.write_text(authorized)
        os.chmod(self.authorized_keys_path, 0o644)
        self._make_root()
        self.mkdir("/upload", writable=True)
        if self._start_folder is not None:
            self.mkdir(self._start_folder)

    def _config_text(self, port: int) -> str:
        assert self._dir is not None
        lines = [
            f"ListenAddress {LOOPBACK}:{port}",
            "AddressFamily inet",
            *(f"HostKey {self._dir / name}" for name, *_ in _HOST_KEYS),
            f"PidFile {self._dir / 'sshd.pid'}",
            "LogLevel VERBOSE",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin no",
            f"AllowUsers {SFTP_USER}",
            "PasswordAuthentication yes",
            "PermitEmptyPasswords no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            f"AuthorizedKeysFile {self.authorized_keys_path}",
            "MaxAuthTries 10",
            "LoginGraceTime 30",
            "MaxStartups 100",
            "MaxSessions 50",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowAgentForwarding no",
            "AllowTcpForwarding no",
            "AllowStreamLocalForwarding no",
            "PermitTunnel no",
            "GatewayPorts no",
            "PermitUserEnvironment no",
            "Subsystem sftp internal-sftp",
            f"ChrootDirectory {self.root}",
            "ForceCommand internal-sftp"
            + ("" if self._start_folder is None else f" -d {self._start_folder}"),
        ]
        if openssh_version() >= (9, 8):
            # Newer sshd penalise a source address after failed logins: tests fail logins
            # on purpose, all from 127.0.0.1.
            lines.append("PerSourcePenalties no")
        return "\n".join(lines) + "\n"

    def _write_known_hosts(self, port: int) -> None:
        self.known_hosts_path.write_text(
            "".join(
                f"[{LOOPBACK}]:{port} {' '.join(key.split()[:2])}\n"
                for key in self._host_public_keys
            )
        )
        os.chmod(self.known_hosts_path, 0o644)

    def _pick_port(self) -> int:
        return free_port()  # this module's name: a test patches it

    def _env(self) -> dict[str, str]:
        return dict(_ENV)

    def _command(self, port: int) -> list[str]:
        self.config_path.write_text(self._config_text(port))
        self._write_known_hosts(port)
        (self.dir / "sshd.pid").unlink(missing_ok=True)
        return [SSHD, "-D", "-e", "-f", str(self.config_path)]

    def _ready(self, port: int, timeout: float) -> bool:
        """sshd writes its pid file once the listen socket is bound; the banner proves that
        it is our sshd answering on the port."""
        assert self._proc is not None
        try:
            pid_ok = int((self.dir / "sshd.pid").read_text().split()[0]) == self._proc.pid
        except (OSError, ValueError, IndexError):
            return False
        probe = b"SSH-2.0-usersync-readiness-probe\r\n"
        return pid_ok and read_first_line(port, timeout, send=probe).startswith(b"SSH-2.0-")

    # --- paths and credentials -----------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self._need_dir() / "sshd_config"

    @property
    def authorized_keys_path(self) -> Path:
        return self._need_dir() / "authorized_keys"

    @contextmanager
    def authorizing(self, public_key: str) -> Iterator[None]:
        """Within the block the server also lets in the key of `public_key` (an OpenSSH
        public key line), as an administrator adding it to authorized_keys would."""
        path = self.authorized_keys_path
        before = path.read_text()
        path.write_text(before + public_key.strip() + "\n")
        try:
            yield
        finally:
            path.write_text(before)

    @property
    def known_hosts_path(self) -> Path:
        """An OpenSSH known_hosts file: `[127.0.0.1]:PORT <key>` for each host key."""
        return self._need_dir() / "known_hosts"

    @property
    def client_key_path(self) -> Path:
        """An authorized ed25519 private key without passphrase (OpenSSH format)."""
        return self._need_dir() / "client" / "id_ed25519"

    @property
    def client_key_rsa_path(self) -> Path:
        """An authorized RSA (2048) private key without passphrase (OpenSSH format)."""
        return self._need_dir() / "client" / "id_rsa"

    @property
    def client_key_ecdsa_path(self) -> Path:
        """An authorized ECDSA (P-256) private key without passphrase (OpenSSH format)."""
        return self._need_dir() / "client" / "id_ecdsa"

    @property
    def client_key_encrypted_path(self) -> Path:
        """An authorized ed25519 key protected by `client_key_passphrase` (bcrypt KDF)."""
        return self._need_dir() / "client" / "id_ed25519_encrypted"

    @property
    def host_public_keys(self) -> list[str]:
        """The host public keys as `type base64 comment` lines (ed25519, then RSA)."""
        return list(self._host_public_keys)

    @property
    def host_key_fingerprints(self) -> list[str]:
        """`SHA256:...` fingerprints of the host keys (ed25519, then RSA), unpadded."""
        return [fingerprint(key) for key in self._host_public_keys]

    # --- the served tree -----------------------------------------------------------------

    def folder(self, remote_path: str) -> SftpFolder:
        """A fresh, empty folder (root-owned 0755) for one test; see `SftpFolder`."""
        return SftpFolder(self, self._fresh_folder(remote_path, writable=False))


class SftpFolder(ServedFolder[SshServer]):
    """One test's own folder `base` on a shared `SshServer` (see `ServedFolder`), plus the
    server's keys and known_hosts. `base` itself is root-owned, so the SFTP user cannot
    write in it: make writable folders with `mkdir(..., writable=True)`."""

    def __init__(self, server: SshServer, base: str) -> None:
        super().__init__(server, base)
        self.client_key_path = server.client_key_path
        self.client_key_rsa_path = server.client_key_rsa_path
        self.client_key_ecdsa_path = server.client_key_ecdsa_path
        self.client_key_encrypted_path = server.client_key_encrypted_path
        self.client_key_passphrase = server.client_key_passphrase
        self.known_hosts_path = server.known_hosts_path
        self.host_key_fingerprints = server.host_key_fingerprints
