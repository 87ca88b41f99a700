"""Browsing and importing from an S3-compatible bucket through the `usersync` command: moto's
S3 in server mode, started by the test setup on loopback, with request signatures checked."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.browse_cases import (
    HIDDEN_REASONS,
    PREVIEW_COLUMNS,
    PREVIEW_CSV,
    PREVIEW_ROWS,
    cli_env,
    drain,
)
from tests.cli import usersync
from tests.servers.blackhole import BlackholeServer
from tests.servers.s3 import MotoS3Server, S3Bucket
from tests.syncs import settings_for
from usersync import db
from usersync.config import load_settings
from usersync.errors import RemotePathNotFound, SourceError
from usersync.files import EntryKind
from usersync.secretbox import SecretBox
from usersync.sources.connect import Credentials, open_source
from usersync.sources.hostkeys import HostKeyPolicy
from usersync.sources.s3 import ObjectChanged, S3Source
from usersync.sources.urls import S3Endpoint, parse_remote_url
from usersync.store import connections, workspaces
from usersync.store.connections import NewConnection

pytestmark = pytest.mark.integration

SECRET_VAR = "S3_TEST_SECRET"


@pytest.fixture
def env(tmp_path: Path, s3_bucket: S3Bucket) -> dict[str, str]:
    return cli_env(tmp_path, **{SECRET_VAR: s3_bucket.secret_access_key})


def auth(bucket: S3Bucket) -> list[str]:
    """The service's address and the test access key (the secret from the environment)."""
    return [
        *("--endpoint-url", bucket.endpoint_url, "--region", bucket.region),
        *("--access-key-id", bucket.access_key_id, "--secret-env", SECRET_VAR),
    ]


@pytest.fixture
def source(s3_bucket: S3Bucket, env: dict[str, str]) -> Iterator[S3Source]:
    location = dataclasses.replace(
        parse_remote_url(s3_bucket.url()), s3=S3Endpoint(url=s3_bucket.endpoint_url)
    )
    credentials = Credentials(
        access_key_id=s3_bucket.access_key_id, secret_access_key=s3_bucket.secret_access_key
    )
    opened = open_source(location, credentials, HostKeyPolicy(), load_settings(env))
    assert isinstance(opened, S3Source)
    with opened:
        yield opened


# --- listing, preview, import: the SFTP cases --------------------------------------------------


def test_folders_are_the_prefixes_under_the_path(s3_bucket: S3Bucket, env: dict[str, str]) -> None:
    s3_bucket.put("in/Kunden Daten/userdata_a.csv", b"userId\n1\n")
    s3_bucket.put("in/überweisungen/2026/userdata_b.csv", b"userId\n1\n")
    s3_bucket.put("in/日本/", b"")  # a folder marker, as consoles make them
    s3_bucket.put("in/userdata_a.csv", b"userId\n1\n")

    result = usersync(env, "folders", s3_bucket.url("in"), *auth(s3_bucket), "--json")

    assert result.exit_code == 0, result.stderr
    assert result.json() == {
        "path": "/in",
        "folders": [
            {"name": "Kunden Daten", "path": "/in/Kunden Daten"},
            {"name": "überweisungen", "path": "/in/überweisungen"},
            {"name": "日本", "path": "/in/日本"},
        ],
    }
    sub = usersync(env, "folders", s3_bucket.url("in/überweisungen"), *auth(s3_bucket), "--json")
    assert sub.json()["folders"] == [{"name": "2026", "path": "/in/überweisungen/2026"}]
    root = usersync(env, "folders", s3_bucket.url(), *auth(s3_bucket), "--json")
    assert root.json() == {"path": "/", "folders": [{"name": "in", "path": "/in"}]}


def test_files_lists_eligible_files_and_hidden_ones_with_their_reason(
    s3_bucket: S3Bucket, env: dict[str, str]
) -> None:
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    s3_bucket.put("in/userdata_b.csv", b"userId\n1\n")
    s3_bucket.put("in/userdata_A.CSV", b"userId\n")
    s3_bucket.put("in/userdata_big.csv", b"x" * 2001)
    s3_bucket.put("in/UserData_c.csv", b"userId\n")
    s3_bucket.put("in/notes.txt", b"hello")
    s3_bucket.put("in/userdata_dir.csv/userdata_inner.csv", b"userId\n")
    s3_bucket.put("in/archive/userdata_old.csv", b"userId\n")
    s3_bucket.put("in/", b"")  # the folder's own marker is not a file in it
    env["USERSYNC_MAX_FILE_SIZE"] = "2000"

    result = usersync(env, "files", s3_bucket.url("in"), *auth(s3_bucket), "--json")

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["path"] == "/in"
    assert [f["name"] for f in doc["files"]] == ["userdata_A.CSV", "userdata_b.csv"]
    b = doc["files"][1]
    assert (b["path"], b["size"]) == ("/in/userdata_b.csv", 9)
    assert datetime.fromisoformat(b["modified"]) >= before
    hidden = {h["name"]: h for h in doc["hidden"]}
    assert {name: h["reason"] for name, h in hidden.items()} == HIDDEN_REASONS
    assert hidden["userdata_big.csv"]["size"] == 2001


def test_preview_shows_the_header_and_first_five_rows(
    s3_bucket: S3Bucket, env: dict[str, str]
) -> None:
    s3_bucket.put("in/userdata_a.csv", PREVIEW_CSV)

    result = usersync(
        env, "preview", s3_bucket.url("in/userdata_a.csv"), *auth(s3_bucket), "--json"
    )

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["path"] == "/in/userdata_a.csv"
    assert doc["columns"] == PREVIEW_COLUMNS
    assert doc["rows"] == PREVIEW_ROWS


def test_preview_refuses_a_file_that_breaks_the_rules(
    s3_bucket: S3Bucket, env: dict[str, str]
) -> None:
    s3_bucket.put("users.csv", b"userId\n1\n")
    result = usersync(env, "preview", s3_bucket.url("users.csv"), *auth(s3_bucket))
    assert result.exit_code == 4
    assert "must begin with 'userdata_'" in result.stderr


def test_import_creates_users_and_reports_counts(s3_bucket: S3Bucket, env: dict[str, str]) -> None:
    s3_bucket.put("in/userdata_a.csv", b"userId,name,age\nu1,Ann,41\nu2,Bob,37\n")

    result = usersync(
        env,
        "import",
        s3_bucket.url("in/userdata_a.csv"),
        *auth(s3_bucket),
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
    assert usersync(env, "user", "u2", "--json").json()["properties"] == {
        "name": "Bob",
        "age": 37,
    }


def test_the_aws_environment_variables_give_the_access_key(
    s3_bucket: S3Bucket, env: dict[str, str]
) -> None:
    s3_bucket.put("userdata_a.csv", b"userId\n1\n")
    env["AWS_ACCESS_KEY_ID"] = s3_bucket.access_key_id
    env["AWS_SECRET_ACCESS_KEY"] = s3_bucket.secret_access_key
    result = usersync(
        env,
        "files",
        s3_bucket.url(),
        *("--endpoint-url", s3_bucket.endpoint_url, "--path-style", "--json"),
    )
    assert result.exit_code == 0, result.stderr
    assert [f["name"] for f in result.json()["files"]] == ["userdata_a.csv"]


# --- errors ------------------------------------------------------------------------------------


def test_unknown_access_key_is_refused_with_exit_3(
    s3_bucket: S3Bucket, env: dict[str, str]
) -> None:
    args = [a if a != s3_bucket.access_key_id else "AKIAUNKNOWNKEY000000" for a in auth(s3_bucket)]
    result = usersync(env, "folders", s3_bucket.url(), *args, "--json")
    assert result.exit_code == 3
    assert "does not know the access key id 'AKIAUNKNOWNKEY000000'" in result.stderr
    assert result.json()["error"]["code"] == "authentication_failed"


def test_wrong_secret_is_refused_with_exit_3(s3_bucket: S3Bucket, env: dict[str, str]) -> None:
    env[SECRET_VAR] = "not-the-secret"
    result = usersync(env, "folders", s3_bucket.url(), *auth(s3_bucket), "--json")
    assert result.exit_code == 3
    assert "refused the secret access key" in result.stderr
    assert result.json()["error"]["code"] == "authentication_failed"
    assert "not-the-secret" not in result.stderr + result.stdout


def test_no_access_key_at_all_says_how_to_give_one(
    s3_bucket: S3Bucket, env: dict[str, str]
) -> None:
    result = usersync(env, "folders", s3_bucket.url(), "--endpoint-url", s3_bucket.endpoint_url)
    assert result.exit_code == 3
    assert "--access-key-id" in result.stderr
    assert "AWS_SECRET_ACCESS_KEY" in result.stderr


def test_missing_bucket_is_a_clear_error_naming_it(
    s3_bucket: S3Bucket, env: dict[str, str]
) -> None:
    result = usersync(env, "files", "s3://no-such-bucket/in", *auth(s3_bucket), "--json")
    assert result.exit_code == 4
    assert "bucket 'no-such-bucket' does not exist" in result.stderr
    assert result.json()["error"]["code"] == "remote_path_not_found"


def test_missing_folder_is_a_clear_error(s3_bucket: S3Bucket, env: dict[str, str]) -> None:
    s3_bucket.put("in/userdata_a.csv", b"userId\n1\n")
    result = usersync(env, "files", s3_bucket.url("nope"), *auth(s3_bucket), "--json")
    assert result.exit_code == 4
    assert "does not exist" in result.stderr
    assert result.json()["error"]["code"] == "remote_path_not_found"


def test_unreachable_endpoint_is_a_clear_error(
    closed_port: int, s3_bucket: S3Bucket, env: dict[str, str]
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}"
    args = [a if a != s3_bucket.endpoint_url else endpoint for a in auth(s3_bucket)]
    result = usersync(env, "folders", s3_bucket.url(), *args, "--json")
    assert result.exit_code == 3
    assert f"cannot reach {endpoint}" in result.stderr
    assert result.json()["error"]["code"] == "connect_failed"


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def plain_web_server(folder: Path) -> Iterator[str]:
    """A web server that is not S3: an empty folder served by http.server (404 to all)."""
    handler = functools.partial(_QuietFiles, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join()


def test_an_endpoint_that_is_not_s3_is_said_not_to_be(
    tmp_path: Path, s3_bucket: S3Bucket, env: dict[str, str]
) -> None:
    (tmp_path / "site").mkdir()
    with plain_web_server(tmp_path / "site") as endpoint:
        args = [a if a != s3_bucket.endpoint_url else endpoint for a in auth(s3_bucket)]
        result = usersync(env, "files", s3_bucket.url(), *args, "--json")
    assert result.exit_code == 3, result.stderr
    assert (
        f"{endpoint} answered HTTP 404 (Not Found) while listing the bucket, without an S3 "
        "error: it does not seem to be an S3-compatible service" in result.stderr
    )
    assert "does not exist" not in result.stderr


def test_a_silent_endpoint_is_given_up_on_after_two_attempts(
    blackhole: BlackholeServer, s3_bucket: S3Bucket, env: dict[str, str]
) -> None:
    endpoint = f"http://127.0.0.1:{blackhole.port}"
    args = [a if a != s3_bucket.endpoint_url else endpoint for a in auth(s3_bucket)]
    quick = {**env, "USERSYNC_IO_TIMEOUT": "1"}

    result = usersync(quick, "files", s3_bucket.url(), *args)

    assert result.exit_code == 3
    assert "did not answer within 1 s while listing the bucket (2 attempts)" in result.stderr
    assert blackhole.accepted == 2  # each attempt on a connection of its own, no more


def test_a_ca_file_that_is_not_there_or_no_certificate_is_a_usage_error(
    s3_bucket: S3Bucket, env: dict[str, str], tmp_path: Path
) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")

    missing = usersync(env, "files", s3_bucket.url(), *auth(s3_bucket), "--ca-file", "/nope.pem")
    wrong = usersync(env, "files", s3_bucket.url(), *auth(s3_bucket), "--ca-file", str(not_pem))

    assert missing.exit_code == 2
    assert "--ca-file /nope.pem: no such file" in missing.stderr
    assert wrong.exit_code == 2
    assert f"--ca-file {not_pem} is not a PEM file of CA certificates" in wrong.stderr


def test_an_https_endpoint_is_checked_against_the_ca_file(env: dict[str, str]) -> None:
    with MotoS3Server(tls=True) as server:
        bucket = server.bucket("secure")
        bucket.put("userdata_a.csv", b"userId\n1\n")
        env[SECRET_VAR] = bucket.secret_access_key
        untrusted = usersync(env, "files", bucket.url(), *auth(bucket), "--json")
        assert untrusted.exit_code == 3
        assert f"the TLS certificate of {bucket.endpoint_url} is not trusted" in untrusted.stderr
        assert "--ca-file PATH on the command line" in untrusted.stderr
        assert "its ca_pem option in the REST API" in untrusted.stderr
        assert untrusted.json()["error"]["code"] == "untrusted_certificate"

        trusted = usersync(
            env, "files", bucket.url(), *auth(bucket), "--ca-file", str(server.ca_file), "--json"
        )
        assert trusted.exit_code == 0, trusted.stderr
        assert [f["name"] for f in trusted.json()["files"]] == ["userdata_a.csv"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://AKIA1@bucket/", "names only the bucket"),
        ("s3://bucket:9000/", "has no port"),
        ("s3://b/", "is not a bucket name"),
    ],
)
def test_bad_s3_urls_are_usage_errors(
    s3_bucket: S3Bucket, env: dict[str, str], url: str, message: str
) -> None:
    result = usersync(env, "folders", url, *auth(s3_bucket))
    assert result.exit_code == 2
    assert message in result.stderr


# --- the Source: stat, streams, rename, remove -----------------------------------------------


def test_stat_gives_size_and_time_and_tells_folders(source: S3Source, s3_bucket: S3Bucket) -> None:
    s3_bucket.put("in/userdata_a.csv", b"userId\n1\n")
    entry = source.stat("/in/userdata_a.csv")
    assert (entry.kind, entry.size) == (EntryKind.FILE, 9)
    assert entry.modified is not None
    assert entry.modified.tzinfo is UTC
    assert source.stat("/in").kind is EntryKind.DIRECTORY
    assert source.stat("/").kind is EntryKind.DIRECTORY
    with pytest.raises(RemotePathNotFound, match="does not exist"):
        source.stat("/in/nope.csv")
    with pytest.raises(RemotePathNotFound, match="is a file, not a folder"):
        source.list_dir("/in/userdata_a.csv")


def test_a_stream_reads_the_whole_object_in_two_requests(
    source: S3Source, s3_bucket: S3Bucket
) -> None:
    data = b"userId\n" + b"1234567890\n" * 200_000
    s3_bucket.put("userdata_a.csv", data)
    with source.open("/userdata_a.csv") as stream:
        assert stream.read() == data
    s3_bucket.put("userdata_empty.csv", b"")
    with source.open("/userdata_empty.csv") as stream:
        assert stream.read() == b""


def test_a_preview_reads_only_the_head_of_the_object(
    source: S3Source, s3_bucket: S3Bucket, env: dict[str, str]
) -> None:
    s3_bucket.put("userdata_big.csv", b"userId,n\n" + b"u1,1234567890\n" * 1_000_000)  # 15 MB
    stream = source.open("/userdata_big.csv")
    assert stream.read(1000).startswith(b"userId,n\n")
    stream.close()
    assert stream.bytes_received <= 64 * 1024  # type: ignore[attr-defined]

    result = usersync(env, "preview", s3_bucket.url("userdata_big.csv"), *auth(s3_bucket), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["rows"] == [["u1", "1234567890"]] * 5


def test_an_object_replaced_while_it_is_read_is_refused(
    source: S3Source, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put("userdata_a.csv", b"userId\n" + b"1\n" * 100_000)
    stream = source.open("/userdata_a.csv")
    assert stream.read(10)
    s3_bucket.put("userdata_a.csv", b"userId\n" + b"2\n" * 100_000)
    with pytest.raises(ObjectChanged, match="was replaced while it was read"):
        stream.read()
    stream.close()


def test_server_killed_mid_read_gives_a_clear_error(env: dict[str, str]) -> None:
    with MotoS3Server() as server:
        bucket = server.bucket("doomed")
        bucket.put("userdata_big.csv", b"userId\n" + b"1234567890\n" * 3_000_000)  # 33 MB
        location = dataclasses.replace(
            parse_remote_url(bucket.url()), s3=S3Endpoint(url=bucket.endpoint_url)
        )
        credentials = Credentials(
            access_key_id=bucket.access_key_id, secret_access_key=bucket.secret_access_key
        )
        opened = open_source(location, credentials, HostKeyPolicy(), load_settings(env))
        try:
            stream = opened.open("/userdata_big.csv")
            for _ in range(10):  # past the head: the rest is streaming
                assert stream.read(100_000)
            server.kill()
            with pytest.raises(SourceError, match=r"the connection to .* was lost while reading"):
                drain(stream)
        finally:
            opened.close()


def test_rename_copies_then_deletes_and_remove_deletes(
    source: S3Source, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put("in/userdata_a.csv", b"userId\n1\n", Metadata={"origin": "crm"})
    s3_bucket.put("in/userdata_b.csv", b"userId\n2\n")
    source.rename("/in/userdata_a.csv", "/done/userdata_a.csv")
    assert s3_bucket.keys() == ["done/userdata_a.csv", "in/userdata_b.csv"]
    assert s3_bucket.get("done/userdata_a.csv") == b"userId\n1\n"
    with pytest.raises(SourceError, match="already exists"):
        source.rename("/in/userdata_b.csv", "/done/userdata_a.csv")
    source.remove("/in/userdata_b.csv")
    assert s3_bucket.keys() == ["done/userdata_a.csv"]
    with pytest.raises(RemotePathNotFound):
        source.remove("/in/userdata_b.csv")


# --- stored connections ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ftp", "ftps", "s3"])
def test_connections_of_the_new_kinds_are_stored(tmp_path: Path, db_url: str, kind: str) -> None:
    settings = settings_for(tmp_path / "data", db_url)
    engine = db.create_engine_for(db_url)
    try:
        db.migrate(engine)
        box = SecretBox.from_settings(settings)
        ws = workspaces.get_or_create(engine, "default")
        new = NewConnection(name=kind, kind=kind, host="h", port=443, username="u", password="p")
        assert (
            connections.get(engine, box, ws, connections.create(engine, box, ws, new).id).kind
            == kind
        )
    finally:
        engine.dispose()
