"""Files of this machine through the `usersync` command, by path or file:// URL: the same file
rules, preview and import as a server's files, and clear errors for what is not there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browse_cases import (
    HIDDEN_REASONS,
    NOT_UTF8_NAMES,
    PREVIEW_COLUMNS,
    PREVIEW_CSV,
    PREVIEW_ROWS,
    LocalFolder,
    check_names_not_utf8,
    cli_env,
    put_mixed_files,
    put_names_not_utf8,
)
from tests.cli import usersync
from usersync.files import HiddenReason, explain

pytestmark = pytest.mark.integration


@pytest.fixture
def folder(tmp_path: Path) -> LocalFolder:
    return LocalFolder(tmp_path / "exports")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path)


def test_files_of_a_folder_by_path_follow_the_file_rules(
    folder: LocalFolder, env: dict[str, str]
) -> None:
    put_mixed_files(folder)
    os.mkfifo(folder.local("userdata_pipe.csv"))
    os.symlink(folder.path("userdata_b.csv"), folder.local("userdata_link.csv"))
    os.symlink(folder.path("missing.csv"), folder.local("userdata_broken.csv"))
    env["USERSYNC_MAX_FILE_SIZE"] = "2000"

    result = usersync(env, "files", folder.path(), "--json")
    by_url = usersync(env, "files", f"file://{folder.path()}/", "--json")

    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert by_url.json() == doc
    assert doc["path"] == folder.path()
    assert [f["name"] for f in doc["files"]] == [
        "userdata_A.CSV",
        "userdata_b.csv",
        "userdata_link.csv",
    ]
    assert doc["files"][1] == {
        "name": "userdata_b.csv",
        "path": folder.path("userdata_b.csv"),
        "size": 9,
        "modified": "2026-01-01T00:00:00+00:00",
    }
    assert {h["name"]: h["reason"] for h in doc["hidden"]} == {
        **HIDDEN_REASONS,
        "userdata_pipe.csv": "not_a_regular_file",
        "userdata_broken.csv": "not_a_regular_file",
    }
    folders = usersync(env, "folders", folder.path(), "--json")
    assert [f["name"] for f in folders.json()["folders"]] == ["archive", "userdata_dir.csv"]


def test_a_name_that_is_not_utf8_is_hidden_saying_so(
    folder: LocalFolder, env: dict[str, str]
) -> None:
    put_names_not_utf8(folder)

    files = usersync(env, "files", folder.path(), "--json")
    folders = usersync(env, "folders", folder.path(), "--json")

    assert (files.exit_code, folders.exit_code) == (0, 0), files.stderr
    check_names_not_utf8(folder, files.json(), folders.json())


def test_a_file_whose_name_is_not_utf8_is_refused_by_preview_and_import_saying_why(
    folder: LocalFolder, env: dict[str, str]
) -> None:
    put_names_not_utf8(folder)
    name = os.fsdecode(os.fsencode(folder.local()) + b"/" + NOT_UTF8_NAMES[0])

    preview = usersync(env, "preview", name, "--json")
    imported = usersync(env, "import", name, "--user-id", "userId", "--json")
    runs = usersync(env, "runs", "--json")

    for refused in (preview, imported):
        assert refused.exit_code == 4, refused.stderr
        assert refused.json()["error"]["message"].endswith(
            "cannot be imported: " + explain(HiddenReason.NAME_NOT_UTF8)
        )
    assert "\ufffd" in imported.json()["error"]["message"]
    assert runs.json()["items"] == []


def test_a_relative_path_previews_and_imports_from_the_current_folder(
    folder: LocalFolder, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder.put("userdata_a.csv", PREVIEW_CSV)
    monkeypatch.chdir(folder.local())

    preview = usersync(env, "preview", "userdata_a.csv", "--json")
    imported = usersync(
        env, "import", "./userdata_a.csv", "--user-id", "userId", "--map", "name=name", "--json"
    )

    assert preview.exit_code == 0, preview.stderr
    doc = preview.json()
    assert (doc["path"], doc["columns"], doc["rows"]) == (
        folder.path("userdata_a.csv"),
        PREVIEW_COLUMNS,
        PREVIEW_ROWS,
    )
    assert imported.exit_code == 0, imported.stderr
    assert (imported.json()["status"], imported.json()["users_created"]) == ("succeeded", 6)
    user = usersync(env, "user", "2", "--json")
    assert user.json()["properties"] == {"name": "Bob"}
    runs = usersync(env, "runs", "--json")
    assert runs.json()["items"][0]["source"] == "file://"


def test_control_characters_of_a_file_reach_the_terminal_as_escapes_and_json_as_they_are(
    folder: LocalFolder, env: dict[str, str]
) -> None:
    title, clear = "\x1b]0;PWNED\x07", "\x1b[2J"
    folder.put("userdata_esc.csv", f"userId,na{clear}me\nu{title}1,x{clear}\ttab\n".encode())
    path = folder.path("userdata_esc.csv")

    preview = usersync(env, "preview", path)
    as_json = usersync(env, "preview", path, "--json")
    imported = usersync(env, "import", path, "--user-id", "userId", "--map", "name=name")
    user = usersync(env, "user", f"u{title}1")

    assert preview.exit_code == 0, preview.stderr
    assert "\x1b" not in preview.stdout + user.stdout + imported.stderr
    assert "na\\x1b[2Jme" in preview.stdout
    assert "u\\x1b]0;PWNED\\x071  x\\x1b[2J\\ttab" in preview.stdout
    assert as_json.json()["columns"] == ["userId", f"na{clear}me"]
    assert imported.exit_code == 5
    assert "no column 'name'; its columns are: userId, na\\x1b[2Jme" in imported.stderr
    assert user.exit_code == 1
    assert "no user 'u\\x1b]0;PWNED\\x071'" in user.stderr


def test_what_is_not_there_or_not_eligible_is_a_file_rule_error_with_a_hint(
    folder: LocalFolder, env: dict[str, str]
) -> None:
    folder.put("users.csv", b"userId\n1\n")
    folder.mkdir("userdata_dir.csv")
    mapping = ("--user-id", "userId")

    missing = usersync(env, "import", folder.path("userdata_nope.csv"), *mapping)
    no_folder = usersync(env, "files", folder.path("nope"))
    a_file = usersync(env, "files", folder.path("users.csv"))
    bad_name = usersync(env, "import", folder.path("users.csv"), *mapping)
    a_folder = usersync(env, "preview", folder.path("userdata_dir.csv"))
    host_path = usersync(env, "files", "file://files.example.com/exports")
    with_key = usersync(env, "files", folder.path(), "--key", "id_ed25519")

    assert missing.exit_code == 4
    assert f"there is no file {folder.path('userdata_nope.csv')} on this machine" in (
        missing.stderr
    )
    assert "for a file on a server, write its URL, e.g. sftp://USER@HOST/PATH" in missing.stderr
    assert no_folder.exit_code == 4
    assert f"there is no folder {folder.path('nope')} on this machine" in no_folder.stderr
    assert (a_file.exit_code, bad_name.exit_code, a_folder.exit_code) == (4, 4, 4)
    assert "is a file, not a folder" in a_file.stderr
    assert "must begin with 'userdata_'" in bad_name.stderr
    assert host_path.exit_code == 2
    assert "a file:// URL names a path of this machine" in host_path.stderr
    assert with_key.exit_code == 2
    assert "--key is for sftp:// URLs, not file://" in with_key.stderr
