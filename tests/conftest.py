"""Fixtures that start real servers for the integration tests (see tests/servers).

    sshd         session   SshServer shared by all tests (do not kill it: use fresh_sshd)
    sftp_tree    function  "/t-<test>-<hash>": a fresh, empty folder on `sshd`, removed after
    sftp         function  SftpFolder: `sshd`'s credentials + that folder (base, put, mkdir...)
    fresh_sshd   function  an SshServer of the test's own, which it may kill()
    postgres     session   PostgresServer shared by all tests
    pg_url       function  SQLAlchemy URL of a fresh, empty database (dropped after)
    blackhole    function  BlackholeServer: accepts TCP, never answers
    closed_port  function  a port on 127.0.0.1 where connections are refused

A server that cannot start makes the test ERROR with the server's log; nothing is skipped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.blackhole import BlackholeServer, ClosedPort
from tests.servers.ftpd import FtpFolder, FtpServer, PyftpdlibServer, VsftpdServer
from tests.servers.postgres import PostgresServer
from tests.servers.s3 import MotoS3Server, S3Bucket
from tests.servers.sshd import SftpFolder, SshServer


def _test_folder_name(request: pytest.FixtureRequest) -> str:
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:40].strip("._")
    return f"/t-{name}-{digest}"


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    """One real sshd for the whole session (SFTP only, chrooted; see SshServer)."""
    with SshServer() as server:
        yield server


@pytest.fixture
def sftp(sshd: SshServer, request: pytest.FixtureRequest) -> Iterator[SftpFolder]:
    """The shared sshd's credentials plus this test's own fresh folder `base`."""
    if not sshd.running:  # an earlier test killed the shared server: bring it back
        sshd.start()
    folder = sshd.folder(_test_folder_name(request))
    try:
        yield folder
    finally:
        folder.remove()


@pytest.fixture
def sftp_tree(sftp: SftpFolder) -> str:
    """The remote path of this test's own fresh, empty folder on `sshd` (== `sftp.base`)."""
    return sftp.base


@pytest.fixture
def fresh_sshd() -> Iterator[SshServer]:
    """An sshd of this test's own (new port, keys and chroot), which it may `kill()`."""
    with SshServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL cluster for the whole session (superuser `usersync`, trust auth)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database, dropped after the test."""
    url = postgres.create_database()
    try:
        yield url
    finally:
        postgres.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def blackhole() -> Iterator[BlackholeServer]:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte."""
    with BlackholeServer() as server:
        yield server


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens (reserved for the test: always refused)."""
    with ClosedPort() as reserved:
        yield reserved.port


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each kind the store supports: the test runs once per kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'usersync.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


# --- FTP, FTPS and S3 servers (tests/servers/ftpd.py, tests/servers/s3.py) -------------------
#
#   vsftpd      session   VsftpdServer: Debian's vsftpd, TLS and TLS session reuse required,
#                         LIST only (no MLSD)
#   pyftpdlib   session   PyftpdlibServer: TLS required, MLSD/MLST
#   ftp_server  function  each of the two in turn: the test runs once per server
#   ftp_folder  function  FtpFolder: a fresh folder of this test's own on `ftp_server`
#   moto_s3     session   MotoS3Server: moto's S3 in server mode, request signatures checked
#   s3_bucket   function  S3Bucket: a fresh bucket of this test's own on `moto_s3`


@pytest.fixture(scope="session")
def vsftpd() -> Iterator[VsftpdServer]:
    with VsftpdServer() as server:
        yield server


@pytest.fixture(scope="session")
def pyftpdlib() -> Iterator[PyftpdlibServer]:
    with PyftpdlibServer() as server:
        yield server


@pytest.fixture(params=["vsftpd", "pyftpdlib"])
def ftp_server(request: pytest.FixtureRequest) -> FtpServer:
    server: FtpServer = request.getfixturevalue(request.param)
    return server


@pytest.fixture
def ftp_folder(ftp_server: FtpServer, request: pytest.FixtureRequest) -> Iterator[FtpFolder]:
    folder = ftp_server.folder(_test_folder_name(request))
    try:
        yield folder
    finally:
        folder.remove()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3Server]:
    with MotoS3Server() as server:
        yield server


@pytest.fixture
def s3_bucket(moto_s3: MotoS3Server, request: pytest.FixtureRequest) -> Iterator[S3Bucket]:
    bucket = moto_s3.bucket("t-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20])
    try:
        yield bucket
    finally:
        bucket.remove()
