from pathlib import Path

import pytest

from usersync.errors import UsageError
from usersync.sources.urls import RemoteLocation, S3Endpoint, TlsTrust, parse_remote_url


def test_parses_user_host_port_and_path() -> None:
    assert parse_remote_url("sftp://alice@files.example.com:2222/exports/daily") == RemoteLocation(
        "sftp", "files.example.com", 2222, "alice", "/exports/daily"
    )


def test_defaults_to_port_22_and_the_root_folder() -> None:
    location = parse_remote_url("sftp://alice@host")
    assert (location.port, location.path) == (22, "/")


def test_decodes_percent_escapes_in_paths_and_user_names() -> None:
    location = parse_remote_url("sftp://al%40ce@host/Kunden%20Daten/%C3%BCber/")
    assert location.username == "al@ce"
    assert location.path == "/Kunden Daten/über"


def test_ipv6_hosts() -> None:
    assert parse_remote_url("sftp://bob@[::1]:2022/").host == "::1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp2://a@host/", "unsupported scheme"),
        ("ftps://host/", "no user name"),
        ("ftp://a:secret@host/", "do not put a password in the URL"),
        ("s3://key:secret@bucket/", "names only the bucket"),
        ("s3://bucket:9000/", "has no port"),
        ("s3:///prefix", "has no bucket"),
        ("s3://b/", "is not a bucket name"),
        ("s3://bucket_-/", "is not a bucket name"),
        ("s3://bucket/x?versionId=1", "must be written as %3F"),
        ("sftp://host/", "no user name"),
        ("sftp://a:secret@host/", "do not put a password in the URL"),
        ("sftp://a@host:99999/", "not a valid URL"),
        ("sftp://a@/x", "no host"),
        ("file://files.example.com/x.csv", "names a path of this machine"),
        ("", "or a path of this machine"),
    ],
)
def test_refuses_bad_urls_with_a_hint(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_remote_url(url)


def test_ftp_and_ftps_default_to_port_21() -> None:
    assert parse_remote_url("ftp://alice@files.example.com/in") == RemoteLocation(
        "ftp", "files.example.com", 21, "alice", "/in"
    )
    ftps = parse_remote_url("FTPS://alice@files.example.com:2121/in/")
    assert (ftps.scheme, ftps.port, ftps.path) == ("ftps", 2121, "/in")
    assert ftps.tls == TlsTrust()  # certificates checked unless told otherwise


def test_s3_urls_name_a_bucket_and_a_prefix() -> None:
    location = parse_remote_url("s3://Acme.Exports-2026/daily/Kunden%20Daten/")
    assert (location.scheme, location.host, location.username, location.path) == (
        "s3",
        "Acme.Exports-2026",  # the case of a bucket's name is kept
        "",
        "/daily/Kunden Daten",
    )
    assert location.s3 == S3Endpoint()
    assert parse_remote_url("s3://acme").path == "/"


def test_with_path_keeps_the_endpoint_and_the_trust() -> None:
    location = parse_remote_url("s3://acme/in")
    endpoint = S3Endpoint(url="http://127.0.0.1:9000", region="eu-west-1", path_style=True)
    trust = TlsTrust(ca_file="/ca.pem")
    moved = RemoteLocation(
        location.scheme, location.host, location.port, location.username, "/in", trust, endpoint
    ).with_path("/out/")
    assert (moved.path, moved.s3, moved.tls) == ("/out", endpoint, trust)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("sftp://alice@host/in", "sftp://alice@host:22"),
        ("ftps://alice@[::1]:2121/in", "ftps://alice@[::1]:2121"),
        ("s3://acme/in", "s3://acme"),
    ],
)
def test_origin_names_the_store_without_the_path(url: str, origin: str) -> None:
    assert parse_remote_url(url).origin == origin


def test_a_path_or_a_file_url_is_a_location_on_this_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", "/home/ann")
    here = RemoteLocation("file", "", 0, "", f"{tmp_path}/in/userdata_a.csv")

    assert parse_remote_url("in/userdata_a.csv") == here
    assert parse_remote_url("./in/../in/userdata_a.csv") == here
    assert parse_remote_url(f"file://{tmp_path}/in/userdata_a.csv") == here
    assert parse_remote_url("file:///data/Kunden%20Daten/").path == "/data/Kunden Daten"
    assert parse_remote_url("file://localhost/data").path == "/data"
    assert parse_remote_url("~/exports").path == "/home/ann/exports"
    assert here.origin == "file://"
