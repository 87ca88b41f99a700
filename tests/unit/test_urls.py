import pytest

from usersync.errors import UsageError
from usersync.sources.urls import RemoteLocation, parse_remote_url


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
        ("sftp://host/", "no user name"),
        ("sftp://a:secret@host/", "do not put a password in the URL"),
        ("sftp://a@host:99999/", "not a valid URL"),
        ("sftp://a@/x", "no host"),
        ("/just/a/path", "unsupported scheme"),
    ],
)
def test_refuses_bad_urls_with_a_hint(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_remote_url(url)
