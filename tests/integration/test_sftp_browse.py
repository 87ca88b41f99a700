"""Browsing a real OpenSSH server through the `usersync` command: folders, files, preview,
authentication, host keys and timeouts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.browse_cases import (
    HIDDEN_REASONS,
    PREVIEW_COLUMNS,
    PREVIEW_CSV,
    PREVIEW_ROWS,
    check_names_not_utf8,
    drain,
    put_mixed_files,
    put_names_not_utf8,
)
from tests.cli import key_args, usersync, usersync_in_terminal
from tests.servers.blackhole import BlackholeServer
from tests.servers.sshd import SftpFolder, SshServer
from usersync.config import load_settings
from usersync.errors import SourceError
from usersync.sources.base import Source
from usersync.sources.connect import Credentials, open_source
from usersync.sources.hostkeys import HostKeyPolicy
from usersync.sources.urls import parse_remote_url

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "USERSYNC_DATA_DIR": str(tmp_path / "data"),
        "USERSYNC_CONNECT_TIMEOUT": "3",
        "USERSYNC_IO_TIMEOUT": "3",
        "HOME": str(tmp_path / "home"),
    }


def test_folders_lists_subfolders_with_spaces_and_non_ascii_names(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    sftp.mkdir("Kunden Daten")
    sftp.mkdir("überweisungen/2026")
    sftp.mkdir("日本")
    sftp.put("userdata_a.csv", b"userId\n1\n")

    result = usersync(env, "folders", sftp.url(), *key_args(sftp), "--json")

    assert result.exit_code == 0, result.stderr
    assert result.json() == {
        "path": sftp.path(),
        "folders": [
            {"name": "Kunden Daten", "path": sftp.path("Kunden Daten")},
            {"name": "überweisungen", "path": sftp.path("überweisungen")},
            {"name": "日本", "path": sftp.path("日本")},
        ],
    }
    sub = usersync(env, "folders", sftp.url("überweisungen"), *key_args(sftp), "--json")
    assert sub.json()["folders"] == [{"name": "2026", "path": sftp.path("überweisungen/2026")}]


def test_folders_prints_a_table_without_json(sftp: SftpFolder, env: dict[str, str]) -> None:
    sftp.mkdir("exports")
    result = usersync(env, "folders", sftp.url(), *key_args(sftp))
    assert result.exit_code == 0, result.stderr
    assert "FOLDER" in result.stdout
    assert "exports" in result.stdout


def test_files_lists_eligible_files_and_hidden_ones_with_their_reason(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    put_mixed_files(sftp)
    os.mkfifo(sftp.local("userdata_pipe.csv"))
    sftp.symlink("userdata_link.csv", sftp.path("userdata_b.csv"))
    sftp.symlink("userdata_broken.csv", sftp.path("missing.csv"))
    env["USERSYNC_MAX_FILE_SIZE"] = "2000"

    result = usersync(env, "files", sftp.url(), *key_args(sftp), "--json")

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["path"] == sftp.path()
    assert [f["name"] for f in doc["files"]] == [
        "userdata_A.CSV",
        "userdata_b.csv",
        "userdata_link.csv",
    ]
    b = doc["files"][1]
    assert b == {
        "name": "userdata_b.csv",
        "path": sftp.path("userdata_b.csv"),
        "size": 9,
        "modified": "2026-01-01T00:00:00+00:00",
    }
    hidden = {h["name"]: h for h in doc["hidden"]}
    assert {name: h["reason"] for name, h in hidden.items()} == {
        **HIDDEN_REASONS,
        "userdata_pipe.csv": "not_a_regular_file",
        "userdata_broken.csv": "not_a_regular_file",
    }
    assert hidden["userdata_big.csv"] == {
        "name": "userdata_big.csv",
        "path": sftp.path("userdata_big.csv"),
        "size": 2001,
        "reason": "too_large",
    }


def test_a_name_that_is_not_utf8_is_hidden_saying_so_and_the_rest_of_its_folder_lists(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    put_names_not_utf8(sftp)

    files = usersync(env, "files", sftp.url(), *key_args(sftp), "--json")
    folders = usersync(env, "folders", sftp.url(), *key_args(sftp), "--json")
    table = usersync(env, "files", sftp.url(), *key_args(sftp))

    assert (files.exit_code, folders.exit_code, table.exit_code) == (0, 0, 0), files.stderr
    check_names_not_utf8(sftp, files.json(), folders.json())
    assert "its name is not valid UTF-8" in table.stdout
    preview = usersync(env, "preview", sftp.url("userdata_ok.csv"), *key_args(sftp), "--json")
    assert preview.json()["rows"] == [["1"]]


def test_files_table_explains_hidden_files(sftp: SftpFolder, env: dict[str, str]) -> None:
    sftp.put("userdata_a.csv", b"userId\n1\n")
    sftp.put("users.csv", b"userId\n1\n")
    result = usersync(env, "files", sftp.url(), *key_args(sftp))
    assert result.exit_code == 0, result.stderr
    assert "userdata_a.csv" in result.stdout
    assert "1 hidden" in result.stdout
    assert "must begin with 'userdata_'" in result.stdout


def test_preview_shows_the_header_and_first_five_rows(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    sftp.put("userdata_a.csv", PREVIEW_CSV)

    result = usersync(env, "preview", sftp.url("userdata_a.csv"), *key_args(sftp), "--json")

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["path"] == sftp.path("userdata_a.csv")
    assert doc["columns"] == PREVIEW_COLUMNS
    assert doc["rows"] == PREVIEW_ROWS


def test_preview_rows_option_and_table_output(sftp: SftpFolder, env: dict[str, str]) -> None:
    sftp.put("userdata_a.csv", b"userId,name\n1,Ann\n2,Bob\n3,Cy\n")
    result = usersync(env, "preview", sftp.url("userdata_a.csv"), *key_args(sftp), "--rows", "2")
    assert result.exit_code == 0, result.stderr
    assert "Ann" in result.stdout
    assert "Bob" in result.stdout
    assert "Cy" not in result.stdout


def test_preview_on_a_narrow_terminal_shows_each_row_as_a_record(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    header = "userId," + ",".join(f"column_{i}" for i in range(12))
    sftp.put("userdata_a.csv", f"{header}\nu1,{','.join(f'v{i}' for i in range(12))}\n".encode())
    url = sftp.url("userdata_a.csv")

    narrow = usersync_in_terminal(env, "preview", url, *key_args(sftp), columns=60)
    wide = usersync_in_terminal(env, "preview", url, *key_args(sftp), columns=200)

    assert narrow.exit_code == 0, narrow.stdout
    lines = [line.strip() for line in narrow.stdout.splitlines()]
    assert "-[ RECORD 1 ]" in narrow.stdout
    assert "LINE       2" in lines
    assert "column_11  v11" in lines
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60 + len("\x1b[1m\x1b[0m")
    assert wide.exit_code == 0, wide.stdout
    assert "RECORD" not in wide.stdout
    assert any(line.startswith("2     u1      v0") for line in wide.stdout.splitlines())


@pytest.mark.parametrize(("delimiter", "flag"), [(";", "';'"), ("\t", "tab"), ("|", "'|'")])
def test_preview_of_a_single_column_says_which_delimiter_the_rows_seem_to_use(
    sftp: SftpFolder, env: dict[str, str], delimiter: str, flag: str
) -> None:
    rows = "".join(f"u{i}{delimiter}city {i}{delimiter}{i}\n" for i in range(5))
    sftp.put("userdata_a.csv", f"userId{delimiter}city{delimiter}n\n{rows}".encode())
    url = sftp.url("userdata_a.csv")

    guessed = usersync(env, "preview", url, *key_args(sftp))
    told = usersync(env, "preview", url, *key_args(sftp), "--delimiter", flag.strip("'"))

    assert guessed.exit_code == 0, guessed.stderr
    word = {";": "semicolon", "\t": "tab", "|": "pipe"}[delimiter]
    assert f"The rows look separated by {word}s: pass --delimiter {flag}" in guessed.stderr
    assert told.exit_code == 0, told.stderr
    assert "look separated" not in told.stderr
    assert "city 4" in told.stdout


def test_preview_table_names_the_line_and_column_of_a_bad_row(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    sftp.put("userdata_a.csv", b"userId,name\n1,Ann\n2,B\xffb\n3\n")
    result = usersync(env, "preview", sftp.url("userdata_a.csv"), *key_args(sftp))
    assert result.exit_code == 0, result.stderr
    assert "line 3, column 'name': bytes that are not valid UTF-8 (\\xff)" in result.stderr
    assert "line 4: row has 1 field but the header has 2 columns" in result.stderr


def test_preview_refuses_a_file_that_breaks_the_rules(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    sftp.put("users.csv", b"userId\n1\n")
    result = usersync(env, "preview", sftp.url("users.csv"), *key_args(sftp))
    assert result.exit_code == 4
    assert "must begin with 'userdata_'" in result.stderr


def test_missing_folder_is_a_clear_error(sftp: SftpFolder, env: dict[str, str]) -> None:
    result = usersync(env, "files", sftp.url("nope"), *key_args(sftp), "--json")
    assert result.exit_code == 4
    assert "does not exist" in result.stderr
    assert result.json()["error"]["code"] == "remote_path_not_found"


def test_password_login(sftp: SftpFolder, env: dict[str, str]) -> None:
    sftp.put("userdata_a.csv", b"userId\n1\n")
    env["SFTP_PASSWORD"] = sftp.password
    result = usersync(
        env,
        "files",
        sftp.url(),
        "--password-env",
        "SFTP_PASSWORD",
        "--known-hosts",
        str(sftp.known_hosts_path),
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert [f["name"] for f in result.json()["files"]] == ["userdata_a.csv"]


def test_wrong_password_is_refused_with_exit_3(sftp: SftpFolder, env: dict[str, str]) -> None:
    env["SFTP_PASSWORD"] = "not-the-password"
    result = usersync(
        env,
        "folders",
        sftp.url(),
        "--password-env",
        "SFTP_PASSWORD",
        "--known-hosts",
        str(sftp.known_hosts_path),
    )
    assert result.exit_code == 3
    assert "refused the login" in result.stderr
    assert "not-the-password" not in result.stderr + result.stdout


def test_password_env_that_is_not_set_is_a_usage_error(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    result = usersync(env, "folders", sftp.url(), "--password-env", "NO_SUCH_VAR")
    assert result.exit_code == 2
    assert "NO_SUCH_VAR" in result.stderr


@pytest.mark.parametrize("key", ["client_key_path", "client_key_rsa_path", "client_key_ecdsa_path"])
def test_key_login_with_each_key_type(sftp: SftpFolder, env: dict[str, str], key: str) -> None:
    result = usersync(
        env,
        "folders",
        sftp.url(),
        "--key",
        str(getattr(sftp, key)),
        "--known-hosts",
        str(sftp.known_hosts_path),
    )
    assert result.exit_code == 0, result.stderr


def test_encrypted_key_needs_its_passphrase(sftp: SftpFolder, env: dict[str, str]) -> None:
    args = [
        "folders",
        sftp.url(),
        "--key",
        str(sftp.client_key_encrypted_path),
        "--known-hosts",
        str(sftp.known_hosts_path),
    ]
    without = usersync(env, *args)
    assert without.exit_code == 3
    assert "--key-passphrase-env" in without.stderr

    env["KEY_PASS"] = "wrong"
    wrong = usersync(env, *args, "--key-passphrase-env", "KEY_PASS")
    assert wrong.exit_code == 3
    assert "cannot read private key" in wrong.stderr

    env["KEY_PASS"] = sftp.client_key_passphrase
    right = usersync(env, *args, "--key-passphrase-env", "KEY_PASS")
    assert right.exit_code == 0, right.stderr


def test_unknown_host_key_is_refused_showing_the_offered_fingerprint(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    result = usersync(env, "folders", sftp.url(), "--key", str(sftp.client_key_path), "--json")
    assert result.exit_code == 3
    offered = result.json()["error"]["fingerprint"]
    assert offered in sftp.host_key_fingerprints
    assert f"the server offered {offered}" in result.stderr
    assert "is not known" in result.stderr


def test_pinned_fingerprint_is_trusted(sftp: SftpFolder, env: dict[str, str]) -> None:
    refused = usersync(env, "folders", sftp.url(), "--key", str(sftp.client_key_path), "--json")
    offered = refused.json()["error"]["fingerprint"]
    result = usersync(
        env, "folders", sftp.url(), "--key", str(sftp.client_key_path), "--fingerprint", offered
    )
    assert result.exit_code == 0, result.stderr


def test_the_offered_key_is_the_one_openssh_would_show_and_every_key_can_be_pinned(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    ed25519, rsa = sftp.host_key_fingerprints  # the test server has one key of each
    key = ["--key", str(sftp.client_key_path)]

    refused = usersync(env, "folders", sftp.url(), *key, "--json")
    by_ed25519 = usersync(env, "folders", sftp.url(), *key, "--fingerprint", ed25519)
    by_rsa = usersync(env, "folders", sftp.url(), *key, "--fingerprint", rsa)

    assert refused.json()["error"]["fingerprint"] == ed25519
    assert by_ed25519.exit_code == 0, by_ed25519.stderr
    assert by_rsa.exit_code == 0, by_rsa.stderr


@pytest.mark.parametrize("kind", ["ssh-ed25519", "ssh-rsa"])
def test_a_known_hosts_file_with_one_of_the_servers_keys_is_enough(
    sftp: SftpFolder, env: dict[str, str], tmp_path: Path, kind: str
) -> None:
    lines = sftp.known_hosts_path.read_text().splitlines()
    only = tmp_path / "known_hosts"
    only.write_text("".join(f"{line}\n" for line in lines if line.split()[1] == kind))

    result = usersync(
        env, "folders", sftp.url(), "--key", str(sftp.client_key_path), "--known-hosts", str(only)
    )

    assert only.read_text().count("\n") == 1
    assert result.exit_code == 0, result.stderr


def test_a_host_given_by_name_is_checked_like_an_address(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    by_name = sftp.url().replace("@127.0.0.1:", "@localhost:")
    key = ["--key", str(sftp.client_key_path)]

    refused = usersync(env, "folders", by_name, *key, "--json")
    first = usersync(env, "folders", by_name, *key, "--accept-new-host-key")
    again = usersync(env, "files", by_name, *key, "--json")

    assert refused.exit_code == 3, refused.stderr
    assert f"the host key of [localhost]:{sftp.port} is not known" in refused.stderr
    assert first.exit_code == 0, first.stderr
    remembered = Path(env["USERSYNC_DATA_DIR"]) / "known_hosts"
    assert remembered.read_text().startswith(f"[localhost]:{sftp.port} ")
    assert again.exit_code == 0, again.stderr


def test_wrong_pinned_fingerprint_is_refused(sftp: SftpFolder, env: dict[str, str]) -> None:
    wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    result = usersync(
        env, "folders", sftp.url(), "--key", str(sftp.client_key_path), "--fingerprint", wrong
    )
    assert result.exit_code == 3
    assert "does not match the pinned fingerprint" in result.stderr


def test_a_fingerprint_of_the_wrong_form_is_a_usage_error(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    result = usersync(
        env, "folders", sftp.url(), "--key", str(sftp.client_key_path), "--fingerprint", "abc"
    )
    assert result.exit_code == 2
    assert "'abc' is not a SHA256 host key fingerprint" in result.stderr


def test_a_known_hosts_file_that_is_not_there_is_a_usage_error(
    sftp: SftpFolder, env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "no_such_known_hosts"
    key = ["--key", str(sftp.client_key_path)]

    refused = usersync(env, "folders", sftp.url(), *key, "--known-hosts", str(missing))
    made = usersync(
        env, "folders", sftp.url(), *key, "--known-hosts", str(missing), "--accept-new-host-key"
    )

    assert refused.exit_code == 2
    assert f"--known-hosts {missing}: there is no such file" in refused.stderr
    assert made.exit_code == 0, made.stderr
    assert missing.read_text().startswith(f"[127.0.0.1]:{sftp.port} ssh-ed25519 ")


def test_a_known_hosts_file_with_bytes_that_are_not_utf8_still_checks_the_key(
    sftp: SftpFolder, env: dict[str, str], tmp_path: Path
) -> None:
    latin1 = tmp_path / "known_hosts"
    latin1.write_bytes(b"# serveur de M\xfcller\n" + sftp.known_hosts_path.read_bytes())

    result = usersync(
        env, "folders", sftp.url(), "--key", str(sftp.client_key_path), "--known-hosts", str(latin1)
    )

    assert result.exit_code == 0, result.stderr


def test_known_hosts_dev_null_trusts_no_key_but_a_pinned_one(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    key = ["--key", str(sftp.client_key_path), "--known-hosts", "/dev/null"]

    unknown = usersync(env, "folders", sftp.url(), *key)
    pinned = usersync(
        env, "folders", sftp.url(), *key, "--fingerprint", sftp.host_key_fingerprints[0]
    )

    assert unknown.exit_code == 3
    assert "is not known" in unknown.stderr
    assert pinned.exit_code == 0, pinned.stderr


def test_accept_new_host_key_remembers_it(sftp: SftpFolder, env: dict[str, str]) -> None:
    key = ["--key", str(sftp.client_key_path)]
    first = usersync(env, "folders", sftp.url(), *key, "--accept-new-host-key")
    assert first.exit_code == 0, first.stderr
    remembered = Path(env["USERSYNC_DATA_DIR"]) / "known_hosts"
    assert f"[127.0.0.1]:{sftp.port} " in remembered.read_text()
    assert oct(remembered.stat().st_mode & 0o777) == "0o600"

    again = usersync(env, "folders", sftp.url(), *key)
    assert again.exit_code == 0, again.stderr


def test_changed_host_key_is_refused_even_with_accept_new(
    sftp: SftpFolder, env: dict[str, str], tmp_path: Path
) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    stale = tmp_path / "known_hosts"
    stale.write_text(f"[127.0.0.1]:{sftp.port} {other.with_suffix('.pub').read_text()}")

    result = usersync(
        env,
        "folders",
        sftp.url(),
        "--key",
        str(sftp.client_key_path),
        "--known-hosts",
        str(stale),
        "--accept-new-host-key",
        "--json",
    )

    assert result.exit_code == 3
    assert "has CHANGED" in result.stderr
    assert result.json()["error"]["fingerprint"] in sftp.host_key_fingerprints


def test_an_entry_without_a_port_is_for_port_22_only_as_in_openssh(
    sftp: SftpFolder, env: dict[str, str], tmp_path: Path
) -> None:
    """~/.ssh/known_hosts names the host's port-22 server (another key); the server on this
    port is another one, not a changed key, and trusting it on first use works."""
    other = tmp_path / "port22_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    ssh_dir = Path(env["HOME"]) / ".ssh"
    ssh_dir.mkdir(parents=True)
    (ssh_dir / "known_hosts").write_text(f"127.0.0.1 {other.with_suffix('.pub').read_text()}")
    own_keys = tmp_path / "known_hosts"  # the server's own keys, written without the port
    own_keys.write_text(
        "".join(
            f"127.0.0.1 {line.split(' ', 1)[1]}\n"
            for line in sftp.known_hosts_path.read_text().splitlines()
        )
    )
    key = ["--key", str(sftp.client_key_path)]

    refused = usersync(env, "folders", sftp.url(), *key)
    by_port_less_entry = usersync(env, "folders", sftp.url(), *key, "--known-hosts", str(own_keys))
    first = usersync(env, "folders", sftp.url(), *key, "--accept-new-host-key")
    again = usersync(env, "folders", sftp.url(), *key)

    assert refused.exit_code == 3
    assert f"the host key of [127.0.0.1]:{sftp.port} is not known" in refused.stderr
    assert by_port_less_entry.exit_code == 3
    assert "is not known" in by_port_less_entry.stderr
    assert first.exit_code == 0, first.stderr
    remembered = Path(env["USERSYNC_DATA_DIR"]) / "known_hosts"
    assert remembered.read_text().startswith(f"[127.0.0.1]:{sftp.port} ")
    assert again.exit_code == 0, again.stderr


def test_silent_server_times_out_with_a_clear_error(
    blackhole: BlackholeServer, env: dict[str, str], sftp: SftpFolder
) -> None:
    env["USERSYNC_CONNECT_TIMEOUT"] = "1"
    url = f"sftp://someone@127.0.0.1:{blackhole.port}/"
    result = usersync(env, "folders", url, "--key", str(sftp.client_key_path))
    assert result.exit_code == 3
    assert "did not complete the SSH handshake within 1 s" in result.stderr


def test_an_import_from_a_silent_server_reports_the_time_it_waited(
    blackhole: BlackholeServer, env: dict[str, str], sftp: SftpFolder
) -> None:
    env["USERSYNC_CONNECT_TIMEOUT"] = "1"
    url = f"sftp://someone@127.0.0.1:{blackhole.port}/userdata_x.csv"
    key = str(sftp.client_key_path)
    result = usersync(env, "import", url, "--key", key, "--user-id", "userId", "--json")
    assert result.exit_code == 3
    assert "did not complete the SSH handshake within 1 s" in result.stderr
    assert result.json()["seconds"] >= 1  # the run's time includes connecting


def test_server_that_is_down_is_a_clear_error(
    closed_port: int, env: dict[str, str], sftp: SftpFolder
) -> None:
    url = f"sftp://someone@127.0.0.1:{closed_port}/"
    result = usersync(env, "folders", url, "--key", str(sftp.client_key_path))
    assert result.exit_code == 3
    assert "refused the connection" in result.stderr


def open_big_file(server: SshServer, env: dict[str, str]) -> tuple[Source, BinaryIO]:
    """A connection to `server` and a stream of a 33 MB file on it, its first bytes read."""
    server.put("/userdata_big.csv", b"userId\n" + b"1234567890\n" * 3_000_000)
    location = parse_remote_url(server.url("/userdata_big.csv"))
    source = open_source(
        location,
        Credentials(key_path=str(server.client_key_path)),
        HostKeyPolicy(known_hosts=(server.known_hosts_path,)),
        load_settings(env),
    )
    stream = source.open(location.path)
    assert stream.read(1000)
    return source, stream


def open_on(server: SshServer, env: dict[str, str]) -> Source:
    return open_source(
        parse_remote_url(server.url("/")),
        Credentials(key_path=str(server.client_key_path)),
        HostKeyPolicy(known_hosts=(server.known_hosts_path,)),
        load_settings(env),
    )


def test_the_start_folder_is_where_the_servers_sessions_start(
    sftp: SftpFolder, env: dict[str, str]
) -> None:
    with closing(open_on(sftp.server, env)) as chrooted:
        assert chrooted.start_folder() == "/"
    with SshServer(start_folder="/home/alice") as server, closing(open_on(server, env)) as source:
        assert source.start_folder() == "/home/alice"


def test_server_killed_mid_read_gives_a_clear_error(
    fresh_sshd: SshServer, env: dict[str, str]
) -> None:
    source, stream = open_big_file(fresh_sshd, env)
    try:
        fresh_sshd.kill()
        with pytest.raises(SourceError, match=r"connection was lost|did not answer"):
            drain(stream)
    finally:
        source.close()


def test_the_installed_command_runs(sftp: SftpFolder, tmp_path: Path) -> None:
    sftp.put("userdata_a.csv", b"userId\n1\n")
    command = Path(sys.executable).with_name("usersync")
    completed = subprocess.run(
        [str(command), "files", sftp.url(), *key_args(sftp), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "USERSYNC_DATA_DIR": str(tmp_path)},
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["files"][0]["name"] == "userdata_a.csv"


def test_server_that_goes_silent_mid_read_times_out(
    fresh_sshd: SshServer, env: dict[str, str]
) -> None:
    env["USERSYNC_IO_TIMEOUT"] = "1"
    source, stream = open_big_file(fresh_sshd, env)
    stopped = fresh_sshd.processes()  # the listener and this connection's session
    try:
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        with pytest.raises(SourceError, match=r"did not answer within 1 s|connection was lost"):
            drain(stream)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        source.close()
