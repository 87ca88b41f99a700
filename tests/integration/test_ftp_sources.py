"""Browsing and importing from real FTPS servers through the `usersync` command: Debian's
vsftpd (LIST only, TLS session reuse required) and pyftpdlib (MLSD), each started by the test
setup on loopback with a certificate from a test CA. Most tests run once per server."""

from __future__ import annotations

import dataclasses
import ftplib
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browse_cases import (
    HIDDEN_REASONS,
    PREVIEW_COLUMNS,
    PREVIEW_CSV,
    PREVIEW_ROWS,
    check_names_not_utf8,
    cli_env,
    drain,
    put_mixed_files,
    put_names_not_utf8,
)
from tests.cli import usersync
from tests.servers.blackhole import BlackholeServer
from tests.servers.ftpd import FtpFolder, PyftpdlibServer, VsftpdServer
from usersync.config import load_settings
from usersync.errors import ConnectionLost, RemotePathNotFound, SourceError
from usersync.files import EntryKind
from usersync.sources.connect import Credentials, open_source
from usersync.sources.ftp import FtpSource, _parse_list_line, _parse_mlsx
from usersync.sources.hostkeys import HostKeyPolicy
from usersync.sources.urls import TlsTrust, parse_remote_url

pytestmark = pytest.mark.integration

PASSWORD_VAR = "FTP_TEST_PASSWORD"


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path, **{PASSWORD_VAR: VsftpdServer.password})


@pytest.fixture
def env(base_env: dict[str, str], ftp_folder: FtpFolder) -> dict[str, str]:
    return base_env


def auth(folder: FtpFolder) -> list[str]:
    """Log in with the test password, trusting the test CA."""
    return ["--password-env", PASSWORD_VAR, "--ca-file", str(folder.ca_file)]


def open_ftp(folder: FtpFolder, env: dict[str, str]) -> FtpSource:
    location = dataclasses.replace(
        parse_remote_url(folder.url()), tls=TlsTrust(ca_file=str(folder.ca_file))
    )
    opened = open_source(
        location, Credentials(password=folder.password), HostKeyPolicy(), load_settings(env)
    )
    assert isinstance(opened, FtpSource)
    return opened


@pytest.fixture
def source(ftp_folder: FtpFolder, env: dict[str, str]) -> Iterator[FtpSource]:
    with open_ftp(ftp_folder, env) as opened:
        yield opened


@pytest.fixture
def vsftpd_folder(vsftpd: VsftpdServer, request: pytest.FixtureRequest) -> Iterator[FtpFolder]:
    folder = vsftpd.folder("/" + request.node.name[:60])
    try:
        yield folder
    finally:
        folder.remove()


# --- listing, preview, import: the SFTP cases, once per server ---------------------------------


def test_folders_lists_subfolders_with_spaces_and_non_ascii_names(
    ftp_folder: FtpFolder, env: dict[str, str]
) -> None:
    ftp_folder.mkdir("Kunden Daten")
    ftp_folder.mkdir("überweisungen/2026")
    ftp_folder.mkdir("日本")
    ftp_folder.put("userdata_a.csv", b"userId\n1\n")

    result = usersync(env, "folders", ftp_folder.url(), *auth(ftp_folder), "--json")

    assert result.exit_code == 0, result.stderr
    assert result.json() == {
        "path": ftp_folder.path(),
        "folders": [
            {"name": "Kunden Daten", "path": ftp_folder.path("Kunden Daten")},
            {"name": "überweisungen", "path": ftp_folder.path("überweisungen")},
            {"name": "日本", "path": ftp_folder.path("日本")},
        ],
    }
    sub = usersync(env, "folders", ftp_folder.url("überweisungen"), *auth(ftp_folder), "--json")
    assert sub.json()["folders"] == [
        {"name": "2026", "path": ftp_folder.path("überweisungen/2026")}
    ]


def test_files_lists_eligible_files_and_hidden_ones_with_their_reason(
    ftp_folder: FtpFolder, env: dict[str, str]
) -> None:
    put_mixed_files(ftp_folder)
    env["USERSYNC_MAX_FILE_SIZE"] = "2000"

    result = usersync(env, "files", ftp_folder.url(), *auth(ftp_folder), "--json")

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["path"] == ftp_folder.path()
    assert [f["name"] for f in doc["files"]] == ["userdata_A.CSV", "userdata_b.csv"]
    assert doc["files"][1] == {
        "name": "userdata_b.csv",
        "path": ftp_folder.path("userdata_b.csv"),
        "size": 9,
        "modified": "2026-01-01T00:00:00+00:00",
    }
    hidden = {h["name"]: h for h in doc["hidden"]}
    assert {name: h["reason"] for name, h in hidden.items()} == HIDDEN_REASONS
    assert hidden["userdata_big.csv"]["size"] == 2001


def test_preview_shows_the_header_and_first_five_rows(
    ftp_folder: FtpFolder, env: dict[str, str]
) -> None:
    ftp_folder.put("userdata_a.csv", PREVIEW_CSV)

    result = usersync(env, "preview", ftp_folder.url("userdata_a.csv"), *auth(ftp_folder), "--json")

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["path"] == ftp_folder.path("userdata_a.csv")
    assert doc["columns"] == PREVIEW_COLUMNS
    assert doc["rows"] == PREVIEW_ROWS


def test_preview_refuses_a_file_that_breaks_the_rules(
    ftp_folder: FtpFolder, env: dict[str, str]
) -> None:
    ftp_folder.put("users.csv", b"userId\n1\n")
    result = usersync(env, "preview", ftp_folder.url("users.csv"), *auth(ftp_folder))
    assert result.exit_code == 4
    assert "must begin with 'userdata_'" in result.stderr


def test_missing_folder_is_a_clear_error(ftp_folder: FtpFolder, env: dict[str, str]) -> None:
    result = usersync(env, "files", ftp_folder.url("nope"), *auth(ftp_folder), "--json")
    assert result.exit_code == 4
    assert "does not exist" in result.stderr
    assert result.json()["error"]["code"] == "remote_path_not_found"


def test_import_creates_users_and_reports_counts(
    ftp_folder: FtpFolder, env: dict[str, str]
) -> None:
    ftp_folder.put("userdata_a.csv", b"userId,name,age\nu1,Ann,41\nu2,Bob,37\n")

    result = usersync(
        env,
        "import",
        ftp_folder.url("userdata_a.csv"),
        *auth(ftp_folder),
        "--json",
        *("--user-id", "userId", "--map", "name=name", "--map", "age=age"),
        *("--type", "age=integer"),
    )

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert (doc["status"], doc["rows_read"], doc["users_created"], doc["rows_rejected"]) == (
        "succeeded",
        2,
        2,
        0,
    )
    record = usersync(env, "user", "u1", "--json").json()
    assert record["properties"] == {"name": "Ann", "age": 41}


# --- errors ------------------------------------------------------------------------------------


def test_wrong_password_is_refused_with_exit_3(ftp_folder: FtpFolder, env: dict[str, str]) -> None:
    env[PASSWORD_VAR] = "not-the-password"
    result = usersync(env, "folders", ftp_folder.url(), *auth(ftp_folder), "--json")
    assert result.exit_code == 3
    assert "refused the login" in result.stderr
    assert result.json()["error"]["code"] == "authentication_failed"
    assert "not-the-password" not in result.stderr + result.stdout


def test_untrusted_certificate_is_refused_with_a_clear_error(
    ftp_folder: FtpFolder, env: dict[str, str]
) -> None:
    result = usersync(env, "folders", ftp_folder.url(), "--password-env", PASSWORD_VAR, "--json")
    assert result.exit_code == 3
    assert f"the TLS certificate of 127.0.0.1:{ftp_folder.port} is not trusted" in result.stderr
    assert "--ca-file" in result.stderr
    # the same message reaches runs and connection tests in the web UI and REST API
    assert "Certificate authority file in the web UI, or its ca_pem option" in result.stderr
    assert result.json()["error"]["code"] == "untrusted_certificate"


def test_insecure_skip_verify_connects_with_a_warning(
    ftp_folder: FtpFolder, env: dict[str, str]
) -> None:
    ftp_folder.mkdir("exports")
    result = usersync(
        env,
        "folders",
        ftp_folder.url(),
        *("--password-env", PASSWORD_VAR, "--insecure-skip-verify", "--json"),
    )
    assert result.exit_code == 0, result.stderr
    assert "WARNING: --insecure-skip-verify" in result.stderr
    assert [f["name"] for f in result.json()["folders"]] == ["exports"]


def test_a_ca_file_that_does_not_exist_is_a_usage_error(
    ftp_folder: FtpFolder, env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.pem"
    result = usersync(
        env, "folders", ftp_folder.url(), "--password-env", PASSWORD_VAR, "--ca-file", str(missing)
    )
    assert result.exit_code == 2
    assert f"--ca-file {missing}: no such file" in result.stderr


# --- the Source: stat, streams, rename, remove -----------------------------------------------


def test_stat_gives_size_and_time_and_tells_folders(
    source: FtpSource, ftp_folder: FtpFolder
) -> None:
    ftp_folder.put("userdata_a.csv", b"userId\n1\n", mtime=1_767_225_600)
    ftp_folder.mkdir("sub")
    entry = source.stat(ftp_folder.path("userdata_a.csv"))
    assert (entry.kind, entry.size, entry.modified and entry.modified.isoformat()) == (
        EntryKind.FILE,
        9,
        "2026-01-01T00:00:00+00:00",
    )
    assert source.stat(ftp_folder.path("sub")).kind is EntryKind.DIRECTORY
    with pytest.raises(RemotePathNotFound, match="does not exist"):
        source.stat(ftp_folder.path("nope.csv"))
    with pytest.raises(RemotePathNotFound, match="is a file, not a folder"):
        source.list_dir(ftp_folder.path("userdata_a.csv"))


def test_a_stream_read_to_its_end_frees_the_session(
    source: FtpSource, ftp_folder: FtpFolder
) -> None:
    data = b"userId\n" + b"1234567890\n" * 100_000
    ftp_folder.put("userdata_a.csv", data)
    with source.open(ftp_folder.path("userdata_a.csv")) as stream:
        assert stream.read() == data
        # the importer checks the file again before closing the stream
        assert source.stat(ftp_folder.path("userdata_a.csv")).size == len(data)


def test_a_stream_closed_early_reads_only_the_head(
    source: FtpSource, ftp_folder: FtpFolder
) -> None:
    ftp_folder.put("userdata_big.csv", b"userId\n" + b"1234567890\n" * 1_000_000)  # 11 MB
    stream = source.open(ftp_folder.path("userdata_big.csv"))
    assert stream.read(1000).startswith(b"userId\n")
    stream.close()
    assert getattr(stream, "bytes_received", None) is not None
    assert stream.bytes_received <= 1024 * 1024  # type: ignore[attr-defined]
    # the session is usable again at once
    assert [e.name for e in source.list_dir(ftp_folder.path())] == ["userdata_big.csv"]


def test_a_call_made_while_a_stream_is_open_abandons_the_stream(
    source: FtpSource, ftp_folder: FtpFolder
) -> None:
    ftp_folder.put("userdata_big.csv", b"userId\n" + b"1234567890\n" * 1_000_000)
    stream = source.open(ftp_folder.path("userdata_big.csv"))
    assert stream.read(1000)
    assert source.stat(ftp_folder.path("userdata_big.csv")).size == 11_000_007
    with pytest.raises(ConnectionLost, match="the download was stopped before its end"):
        stream.read(1000)
    stream.close()


def test_rename_and_remove(source: FtpSource, ftp_folder: FtpFolder) -> None:
    ftp_folder.put("userdata_a.csv", b"userId\n1\n", writable=True)
    ftp_folder.put("userdata_b.csv", b"userId\n2\n", writable=True)
    ftp_folder.mkdir("done", writable=True)
    source.rename(ftp_folder.path("userdata_a.csv"), ftp_folder.path("done/userdata_a.csv"))
    assert (ftp_folder.local("done/userdata_a.csv")).read_bytes() == b"userId\n1\n"
    assert not ftp_folder.local("userdata_a.csv").exists()
    with pytest.raises(SourceError, match="already exists"):
        source.rename(ftp_folder.path("userdata_b.csv"), ftp_folder.path("done/userdata_a.csv"))
    source.remove(ftp_folder.path("userdata_b.csv"))
    assert not ftp_folder.local("userdata_b.csv").exists()
    with pytest.raises(RemotePathNotFound):
        source.remove(ftp_folder.path("userdata_b.csv"))


def test_server_killed_mid_read_gives_a_clear_error(base_env: dict[str, str]) -> None:
    with VsftpdServer() as server:
        folder = server.folder("/in")
        folder.put("userdata_big.csv", b"userId\n" + b"1234567890\n" * 3_000_000)  # 33 MB
        with open_ftp(folder, base_env) as opened:
            stream = opened.open("/in/userdata_big.csv")
            assert stream.read(1000)
            server.kill()
            with pytest.raises(SourceError, match="connection was lost"):
                drain(stream)


def test_a_server_that_refuses_passive_mode_is_said_to(base_env: dict[str, str]) -> None:
    # vsftpd answers a disabled PASV with "550 Permission denied.": not the file's permissions
    server = VsftpdServer()
    server.passive = False
    with server:
        folder = server.folder("/in")
        folder.put("userdata_a.csv", b"userId\n1\n")
        result = usersync(base_env, "files", folder.url(), *auth(folder), "--json")
    assert result.exit_code == 3, result.stderr
    assert "the server refused passive mode while listing" in result.stderr
    assert "(vsftpd: pasv_enable=YES)" in result.stderr
    assert "permission denied" not in result.stderr


# --- vsftpd only: links, pipes, permissions, TLS session reuse --------------------------------


def test_the_start_folder_is_the_folder_of_the_login_even_after_moving_elsewhere(
    ftp_folder: FtpFolder, env: dict[str, str]
) -> None:
    ftp_folder.mkdir("sub")
    with open_ftp(ftp_folder, env) as source:
        source.list_dir(ftp_folder.path("sub"))  # the session is in that folder now
        assert source.start_folder() == "/"  # both test servers chroot the account


def test_vsftpd_hides_a_name_that_is_not_utf8_saying_so_and_lists_the_rest_of_its_folder(
    vsftpd_folder: FtpFolder, base_env: dict[str, str]
) -> None:
    # (pyftpdlib sends such a name with "?" for its bytes: it is lost before it reaches us.)
    folder = vsftpd_folder
    put_names_not_utf8(folder)

    files = usersync(base_env, "files", folder.url(), *auth(folder), "--json")
    folders = usersync(base_env, "folders", folder.url(), *auth(folder), "--json")

    assert (files.exit_code, folders.exit_code) == (0, 0), files.stderr + folders.stderr
    check_names_not_utf8(folder, files.json(), folders.json())
    preview = usersync(base_env, "preview", folder.url("userdata_ok.csv"), *auth(folder), "--json")
    assert preview.json()["rows"] == [["1"]]


def test_vsftpd_lists_links_as_their_targets_and_pipes_as_not_regular_files(
    vsftpd_folder: FtpFolder, base_env: dict[str, str]
) -> None:
    folder = vsftpd_folder
    folder.put("userdata_b.csv", b"userId\n1\n", mtime=1_767_225_600)
    os.mkfifo(folder.local("userdata_pipe.csv"))
    folder.symlink("userdata_link.csv", folder.path("userdata_b.csv"))
    folder.symlink("userdata_broken.csv", folder.path("missing.csv"))

    result = usersync(base_env, "files", folder.url(), *auth(folder), "--json")

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["files"] == [
        {
            "name": name,
            "path": folder.path(name),
            "size": 9,
            "modified": "2026-01-01T00:00:00+00:00",
        }
        for name in ("userdata_b.csv", "userdata_link.csv")
    ]
    assert {h["name"]: h["reason"] for h in doc["hidden"]} == {
        "userdata_broken.csv": "not_a_regular_file",
        "userdata_pipe.csv": "not_a_regular_file",
    }


def test_a_file_the_server_refuses_to_send_is_permission_denied(
    vsftpd_folder: FtpFolder, base_env: dict[str, str]
) -> None:
    vsftpd_folder.put("userdata_secret.csv", b"userId\n1\n", mode=0o600)
    result = usersync(
        base_env, "preview", vsftpd_folder.url("userdata_secret.csv"), *auth(vsftpd_folder)
    )
    assert result.exit_code == 4
    assert "the server refuses to send the file" in result.stderr


def test_vsftpd_refuses_data_connections_that_do_not_reuse_the_tls_session(
    vsftpd_folder: FtpFolder,
) -> None:
    """Why FtpSource resumes the session: the stock FTP_TLS is refused with 522."""
    context = ssl.create_default_context(cafile=str(vsftpd_folder.ca_file))
    stock = ftplib.FTP_TLS(context=context, timeout=5)
    try:
        stock.connect(vsftpd_folder.host, vsftpd_folder.port)
        stock.login(vsftpd_folder.username, vsftpd_folder.password)
        stock.prot_p()
        with pytest.raises(ftplib.error_perm, match=r"522 .*session reuse required"):
            stock.nlst(vsftpd_folder.path())
    finally:
        stock.close()


def test_plain_ftp_to_a_server_that_requires_tls_says_to_use_ftps(
    vsftpd_folder: FtpFolder, base_env: dict[str, str]
) -> None:
    url = vsftpd_folder.url().replace("ftps://", "ftp://", 1)
    result = usersync(base_env, "folders", url, "--password-env", PASSWORD_VAR)
    assert result.exit_code == 3
    assert "requires TLS" in result.stderr
    assert "ftps://" in result.stderr


# --- plain FTP, unreachable servers, options -------------------------------------------------


def test_plain_ftp_lists_and_previews(base_env: dict[str, str]) -> None:
    with PyftpdlibServer(tls=False) as server:
        server.mkdir("/in/archive")
        server.put("/in/userdata_a.csv", b"userId,name\nu1,Ann\n")
        assert server.url("/in").startswith("ftp://")
        folders = usersync(
            base_env, "folders", server.url("/in"), "--password-env", PASSWORD_VAR, "--json"
        )
        assert folders.exit_code == 0, folders.stderr
        assert folders.json()["folders"] == [{"name": "archive", "path": "/in/archive"}]
        preview = usersync(
            base_env,
            "preview",
            server.url("/in/userdata_a.csv"),
            *("--password-env", PASSWORD_VAR, "--json"),
        )
        assert preview.exit_code == 0, preview.stderr
        assert preview.json()["rows"] == [["u1", "Ann"]]


def test_silent_server_times_out_with_a_clear_error(
    blackhole: BlackholeServer, base_env: dict[str, str]
) -> None:
    base_env["USERSYNC_CONNECT_TIMEOUT"] = "1"
    url = f"ftps://someone@127.0.0.1:{blackhole.port}/"
    result = usersync(base_env, "folders", url, "--password-env", PASSWORD_VAR)
    assert result.exit_code == 3
    assert "did not answer as an FTP server within 1 s" in result.stderr


def test_server_that_is_down_is_a_clear_error(closed_port: int, base_env: dict[str, str]) -> None:
    url = f"ftps://someone@127.0.0.1:{closed_port}/"
    result = usersync(base_env, "folders", url, "--password-env", PASSWORD_VAR)
    assert result.exit_code == 3
    assert "refused the connection" in result.stderr


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("ftps://a@host/", ["--key", "/k"], "--key is for sftp:// URLs, not ftps://"),
        ("ftp://a@host/", ["--ca-file", "/ca.pem"], "--ca-file is for ftps://, s3:// URLs"),
        ("sftp://a@host/", ["--insecure-skip-verify"], "--insecure-skip-verify is for ftps://"),
        ("s3://bucket/", ["--password-env", "X"], "an s3:// bucket takes --access-key-id"),
        ("ftps://a@host/", ["--region", "eu-west-1"], "--region is for s3:// URLs"),
        (
            "ftps://a@host/",
            ["--ca-file", "/ca.pem", "--insecure-skip-verify"],
            "not both",
        ),
    ],
)
def test_options_that_do_not_fit_the_url_are_usage_errors(
    base_env: dict[str, str], url: str, options: list[str], message: str
) -> None:
    result = usersync(base_env, "folders", url, *options)
    assert result.exit_code == 2
    assert message in result.stderr


# --- listings as servers write them ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-rw-r--r--    1 0        0               9 Jan 01  2026 userdata_b.csv", ("file", 9)),
        ("-rw-r--r--   1 ftp ftp  1234 Nov 25 22:16 Kunden Daten.csv", ("file", 1234)),
        ("-rw-r--r--   1 owner      42 Nov 25 22:16 no group.csv", ("file", 42)),
        ("drwxr-xr-x    2 0        0            4096 Nov 25 22:16 archive", ("directory", None)),
        (
            "lrwxrwxrwx    1 0        0              18 Nov 25 22:16 a.csv -> /x/b.csv",
            ("link", None),
        ),
        ("prw-r--r--    1 0        0               0 Nov 25 22:16 pipe.csv", ("other", None)),
        ("crw-rw-rw-    1 0        0          1,   3 Nov 25 22:16 null.csv", ("other", None)),
        ("11-25-26  10:16PM                 1234 userdata_iis.csv", ("file", 1234)),
        ("11-25-2026  22:16       <DIR>          Kunden Daten", ("directory", None)),
        ("total 12", None),
    ],
)
def test_list_lines_of_unix_and_windows_servers(
    line: str, expected: tuple[str, int | None] | None
) -> None:
    listed = _parse_list_line(line, "/in")
    if expected is None:
        assert listed is None
        return
    assert listed is not None
    kind = "link" if listed.is_link else listed.entry.kind.value
    assert (kind, listed.entry.size) == expected
    assert listed.entry.path == "/in/" + listed.entry.name


def test_list_lines_keep_names_with_spaces_and_drop_link_targets() -> None:
    link = _parse_list_line("lrwxrwxrwx 1 0 0 18 Nov 25 22:16 my file.csv -> /x/b.csv", "/")
    assert link is not None
    assert (link.entry.name, link.is_link) == ("my file.csv", True)


def test_mlsd_lines() -> None:
    file = _parse_mlsx("type=file;size=9;modify=20260101000000.5;perm=r; userdata_b.csv", "/in")
    assert file is not None
    assert (file.entry.kind, file.entry.size, file.entry.path) == (
        EntryKind.FILE,
        9,
        "/in/userdata_b.csv",
    )
    assert file.entry.modified is not None
    assert file.entry.modified.isoformat() == "2026-01-01T00:00:00.500000+00:00"
    assert _parse_mlsx("type=cdir;modify=20260101000000; .", "/in") is None
    link = _parse_mlsx("type=OS.unix=slink:/x;size=3; a.csv", "/in")
    assert link is not None
    assert link.is_link
