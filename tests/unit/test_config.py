from pathlib import Path

import pytest

from usersync.config import load_settings
from usersync.errors import UsageError
from usersync.files import MAX_FILE_SIZE


def test_defaults() -> None:
    settings = load_settings({"USERSYNC_DATA_DIR": "/srv/us"})
    assert settings.data_dir == Path("/srv/us")
    assert settings.max_file_size == MAX_FILE_SIZE
    assert settings.database_url == "sqlite:////srv/us/usersync.db"
    assert settings.known_hosts_path == Path("/srv/us/known_hosts")
    assert settings.keep_rejected_runs == 20
    assert settings.webhook_retry == (2.0, 10.0)


def test_reads_overrides() -> None:
    settings = load_settings(
        {
            "USERSYNC_DB": "postgresql://db/us",
            "USERSYNC_IO_TIMEOUT": "2.5",
            "USERSYNC_MAX_FILE_SIZE": "1000",
            "USERSYNC_KEEP_REJECTED_RUNS": "3",
            "USERSYNC_WEBHOOK_RETRY": "1,5,30",
        }
    )
    assert settings.database_url == "postgresql://db/us"
    assert settings.io_timeout == 2.5
    assert settings.max_file_size == 1000
    assert settings.keep_rejected_runs == 3
    assert load_settings({"USERSYNC_KEEP_REJECTED_RUNS": "All"}).keep_rejected_runs is None
    assert settings.webhook_retry == (1.0, 5.0, 30.0)
    assert load_settings({"USERSYNC_WEBHOOK_RETRY": "None"}).webhook_retry == ()


def test_the_log_format_is_text_unless_json_is_asked_for() -> None:
    assert load_settings({}).log_format == "text"
    assert load_settings({"USERSYNC_LOG_FORMAT": " JSON "}).log_format == "json"


def test_the_log_level_is_info_unless_another_is_asked_for() -> None:
    assert load_settings({}).log_level == "info"
    assert load_settings({"USERSYNC_LOG_LEVEL": "Debug"}).log_level == "debug"
    assert load_settings({"USERSYNC_LOG_LEVEL": "warning"}).log_level == "warning"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("USERSYNC_IO_TIMEOUT", "soon"),
        ("USERSYNC_CONNECT_TIMEOUT", "0"),
        ("USERSYNC_MAX_FILE_SIZE", "-1"),
        ("USERSYNC_KEEP_REJECTED_RUNS", "0"),
        ("USERSYNC_KEEP_REJECTED_RUNS", "some"),
        ("USERSYNC_WEBHOOK_RETRY", "2,-1"),
        ("USERSYNC_LOG_FORMAT", "xml"),
        ("USERSYNC_LOG_LEVEL", "verbose"),
    ],
)
def test_bad_values_fail_loudly_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(UsageError, match=name):
        load_settings({name: value})
