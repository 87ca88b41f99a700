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
import contextlib
import fcntl
import hashlib
import os
import posixpath
import pwd
import re
import shutil
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from tests.servers import (
    LOOPBACK,
    STATE_ROOT,
    ServerError,
    descendants,
    ensure_state_root,
    free_port,
    freeze_tree,
    kill_procs,
    make_state_dir,
    register_stale_cleaner,
    require_root,
    run_checked,
    stop_procs,
    tail,
    wait_gone,
)

SSHD = "/usr/sbin/sshd"
SFTP_USER = "usersync-sftp"
SFTP_PASSWORD = "usersync-test-password"
CLIENT_KEY_PASSPHRASE = "usersync-test-passphrase"
START_TIMEOUT = 10.0
STOP_GRACE = 5.0
BIND_ATTEMPTS = 5
DIR_PREFIX = "sshd-"

_SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_ENV = {"PATH": _SYSTEM_PATH, "LANG": "C", "LC_ALL": "C"}
_BIND_FAILURE = re.compile(r"Address already in use|Cannot bind any address")

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


def _read_banner(port: int, timeout: float) -> bytes:
    """The first line the server at 127.0.0.1:port sends, or b"" if it cannot be read."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            sock.sendall(b"SSH-2.0-usersync-readiness-probe\r\n")
            data = b""
            while b"\n" not in data and len(data) < 4096:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                data += chunk
            return data
    except OSError:
        return b""


def _kill_stale(directory: Path) -> None:
    """Kill the sshd a dead test run left in `directory` (called by the stale-dir sweep)."""
    try:
        pid = int((directory / "sshd.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if str(directory / "sshd_config").encode() in cmdline:
        procs = freeze_tree(pid)
        kill_procs(procs)
        wait_gone(procs, 5.0)


register_stale_cleaner(DIR_PREFIX, _kill_stale)


class SshServer:
    """A real sshd (SFTP only, chrooted) on 127.0.0.1 and a free port. Root only.

    Attributes after `start()`: `host`, `port`, `username`, `password`, `root` (the local
    folder the client sees as `/`), `client_key_path` (ed25519), `client_key_rsa_path`,
    `client_key_ecdsa_path`, `client_key_encrypted_path` + `client_key_passphrase`
    (ed25519, OpenSSH format, bcrypt-protected), `known_hosts_path`, `host_public_keys`,
    `host_key_fingerprints`, `dir` (all the server's state), `log_path`, `config_path`.

    `stop()` ends it for good (processes and directory); `kill()` SIGKILLs sshd and every
    session process at once (open connections drop) but keeps the directory, so `start()`
    can bring it back on the same port with the same keys.
    """

    host = LOOPBACK
    username = SFTP_USER
    password = SFTP_PASSWORD
    client_key_passphrase = CLIENT_KEY_PASSPHRASE

    def __init__(self, *, start_timeout: float = START_TIMEOUT) -> None:
        self.start_timeout = start_timeout
        self._dir: Path | None = None
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._host_public_keys: list[str] = []
        self._uid = -1
        self._gid = -1

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> SshServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> SshServer:
        """Start sshd and wait (at most `start_timeout` s) until it sends its SSH banner."""
        if self.running:
            raise ServerError("sshd is already running")
        try:
            if self._dir is None:
                self._prepare()
            self._launch_with_retries()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop sshd and its sessions (SIGTERM, SIGKILL after 5 s); remove its directory."""
        try:
            if self._proc is not None:
                procs = freeze_tree(self._proc.pid)
                left = stop_procs(procs, grace=STOP_GRACE)
                self._reap()
                if left:
                    raise ServerError(f"sshd processes {left} survived SIGKILL")
        finally:
            self._port = None
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    def kill(self) -> None:
        """SIGKILL sshd and all its session processes at once; open connections drop.

        Per-connection processes run in their own sessions (sshd calls setsid), so a
        process-group kill would miss them: the whole process tree is frozen with SIGSTOP
        (no forks, no reparenting meanwhile), then SIGKILLed. The directory stays.
        """
        if self._proc is None:
            return
        procs = freeze_tree(self._proc.pid)
        kill_procs(procs)
        self._reap()
        left = wait_gone(procs, 5.0)
        if left:
            raise ServerError(f"sshd processes {left} survived SIGKILL")

    def _reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._proc = None

    @property
    def running(self) -> bool:
        """Whether the sshd listener process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def processes(self) -> list[int]:
        """Pids of the sshd listener and all its connection/session processes."""
        if self._proc is None or self._proc.poll() is not None:
            return []
        return [self._proc.pid, *descendants(self._proc.pid)]

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
        root = self._dir / "root"
        root.mkdir(mode=0o755)
        os.chmod(root, 0o755)
        self.mkdir("/upload", writable=True)

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
            "ForceCommand internal-sftp",
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

    def _launch_with_retries(self) -> None:
        fixed_port = self._port is not None  # a restart after kill() keeps its port
        for _attempt in range(1 if fixed_port else BIND_ATTEMPTS):
            port = self._port if self._port is not None else free_port()
            if self._launch(port):
                self._port = port
                return
        raise ServerError(
            f"sshd could not bind a port after {BIND_ATTEMPTS} attempts:\n{tail(self.log_path)}"
        )

    def _launch(self, port: int) -> bool:
        """Start sshd on `port`; True once ready, False if the port was taken meanwhile."""
        assert self._dir is not None
        self.config_path.write_text(self._config_text(port))
        self._write_known_hosts(port)
        pid_file = self._dir / "sshd.pid"
        pid_file.unlink(missing_ok=True)
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        cmd = [SSHD, "-D", "-e", "-f", str(self.config_path)]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                cwd="/",
                env=_ENV,
            )
        deadline = time.monotonic() + self.start_timeout
        while True:
            returncode = self._proc.poll()
            if returncode is not None:
                self._proc = None
                with open(self.log_path, "rb") as log:
                    log.seek(log_start)
                    new_log = log.read().decode("utf-8", "replace")
                if _BIND_FAILURE.search(new_log) and not self._port:
                    return False
                raise ServerError(
                    f"sshd exited with {returncode} before accepting connections on port "
                    f"{port}.\ncommand: {' '.join(cmd)}\nlog {self.log_path}:\n{new_log}"
                )
            # The pid file is written after the listen socket is bound; the banner proves
            # that it is our sshd answering on the port.
            try:
                pid_ok = int(pid_file.read_text().split()[0]) == self._proc.pid
            except (OSError, ValueError, IndexError):
                pid_ok = False
            if pid_ok:
                remaining = max(deadline - time.monotonic(), 0.1)
                if _read_banner(port, min(remaining, 2.0)).startswith(b"SSH-2.0-"):
                    return True
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"sshd did not send an SSH banner on {LOOPBACK}:{port} within "
                    f"{self.start_timeout} s.\ncommand: {' '.join(cmd)}\n"
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            time.sleep(0.02)

    # --- paths and credentials -----------------------------------------------------------

    def _need_dir(self) -> Path:
        if self._dir is None:
            raise ServerError("the SshServer is not started (or already stopped)")
        return self._dir

    @property
    def dir(self) -> Path:
        """The server's own directory (config, keys, log, chroot)."""
        return self._need_dir()

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("the SshServer is not started")
        return self._port

    @property
    def root(self) -> Path:
        """The local folder the SFTP client sees as `/` (root-owned, 0755)."""
        return self._need_dir() / "root"

    @property
    def config_path(self) -> Path:
        return self._need_dir() / "sshd_config"

    @property
    def log_path(self) -> Path:
        """sshd's log (its stderr, LogLevel VERBOSE)."""
        return self._need_dir() / "sshd.log"

    def log_text(self) -> str:
        return tail(self.log_path)

    @property
    def authorized_keys_path(self) -> Path:
        return self._need_dir() / "authorized_keys"

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

    def url(self, path: str = "/") -> str:
        """`sftp://usersync-sftp@127.0.0.1:PORT/path`, path percent-encoded."""
        path = "/" + path.lstrip("/")
        return f"sftp://{quote(self.username, safe='')}@{self.host}:{self.port}{quote(path)}"

    # --- the served tree -----------------------------------------------------------------

    def local_path(self, remote_path: str) -> Path:
        """The local path of `remote_path` as the SFTP client names it (cannot escape root)."""
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

    def mkdir(self, remote_path: str, mode: int = 0o755, *, writable: bool = False) -> Path:
        """Create folder `remote_path` (and missing parents, root-owned 0755).

        The folder gets `mode`; with `writable=True` it is owned by the SFTP user, who may
        then create, rename and delete entries in it. Returns the local path.
        """
        local = self.local_path(remote_path)
        self._make_parents(local)
        local.mkdir(mode=0o700, exist_ok=True)
        if writable:
            os.chown(local, self._uid, self._gid)
        os.chmod(local, mode)
        return local

    def put(
        self,
        remote_path: str,
        data: bytes,
        mode: int = 0o644,
        mtime: float | datetime | None = None,
        *,
        writable: bool = False,
    ) -> Path:
        """Write a file at `remote_path` (missing parents: root-owned 0755); return its path.

        The file is root-owned with `mode` (0644: readable by the SFTP user; 0600: not), or
        owned by the SFTP user with `writable=True`. `mtime`: epoch seconds or a datetime.
        """
        local = self.local_path(remote_path)
        self._make_parents(local)
        local.write_bytes(data)
        if writable:
            os.chown(local, self._uid, self._gid)
        os.chmod(local, mode)
        if mtime is not None:
            seconds = mtime.timestamp() if isinstance(mtime, datetime) else float(mtime)
            os.utime(local, (seconds, seconds))
        return local

    def symlink(self, remote_path: str, target: str) -> Path:
        """Create a symlink at `remote_path` pointing to `target` (as the server resolves it:
        an absolute target is inside the chroot)."""
        local = self.local_path(remote_path)
        self._make_parents(local)
        local.symlink_to(target)
        return local

    def folder(self, remote_path: str) -> SftpFolder:
        """A fresh, empty folder (root-owned 0755) for one test; see `SftpFolder`."""
        local = self.local_path(remote_path)
        if local.exists():
            shutil.rmtree(local)
        self.mkdir(remote_path)
        return SftpFolder(self, posixpath.normpath("/" + remote_path.lstrip("/")))


class SftpFolder:
    """One test's own folder `base` on a shared `SshServer`, plus the server's credentials.

    Paths given to `path`, `local`, `put`, `mkdir`, `symlink` and `url` are relative to
    `base` (a leading `/` is ignored) and may not leave it. `base` itself is root-owned,
    so the SFTP user cannot write in it: make writable folders with `mkdir(..., writable=True)`.
    """

    def __init__(self, server: SshServer, base: str) -> None:
        self.server = server
        self.base = base
        self.host = server.host
        self.port = server.port
        self.username = server.username
        self.password = server.password
        self.client_key_path = server.client_key_path
        self.client_key_rsa_path = server.client_key_rsa_path
        self.client_key_ecdsa_path = server.client_key_ecdsa_path
        self.client_key_encrypted_path = server.client_key_encrypted_path
        self.client_key_passphrase = server.client_key_passphrase
        self.known_hosts_path = server.known_hosts_path
        self.host_key_fingerprints = server.host_key_fingerprints

    def path(self, rel: str = "") -> str:
        """The absolute remote path of `rel` (as the SFTP client names it)."""
        joined = posixpath.normpath(posixpath.join(self.base, rel.lstrip("/")))
        if joined != self.base and not joined.startswith(self.base + "/"):
            raise ValueError(f"{rel!r} leaves the test folder {self.base}")
        return joined

    def local(self, rel: str = "") -> Path:
        """The local path of `rel`."""
        return self.server.local_path(self.path(rel))

    def url(self, rel: str = "") -> str:
        """`sftp://usersync-sftp@127.0.0.1:PORT/<base>/<rel>`."""
        return self.server.url(self.path(rel))

    def put(
        self,
        rel: str,
        data: bytes,
        mode: int = 0o644,
        mtime: float | datetime | None = None,
        *,
        writable: bool = False,
    ) -> Path:
        """`SshServer.put` relative to `base`."""
        return self.server.put(self.path(rel), data, mode, mtime, writable=writable)

    def mkdir(self, rel: str, mode: int = 0o755, *, writable: bool = False) -> Path:
        """`SshServer.mkdir` relative to `base`."""
        return self.server.mkdir(self.path(rel), mode, writable=writable)

    def symlink(self, rel: str, target: str) -> Path:
        """`SshServer.symlink` relative to `base` (`target` is used as given)."""
        return self.server.symlink(self.path(rel), target)

    def remove(self) -> None:
        """Delete the folder and everything in it."""
        shutil.rmtree(self.local(), ignore_errors=True)
