"""What the browse tests of the sources (SFTP, FTP/FTPS, S3, this machine's files) share: the
same files to list and preview, and what `usersync files` and `usersync preview` must say of
them."""

from __future__ import annotations

import os
import posixpath
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from tests.servers import ServedFolder


class LocalFolder:
    """A folder of this machine, as `usersync` reaches it by path: what a `ServedFolder` is
    for a server's."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def path(self, rel: str = "") -> str:
        return posixpath.normpath(posixpath.join(str(self.base), rel.lstrip("/")))

    def local(self, rel: str = "") -> Path:
        return Path(self.path(rel))

    def put(
        self,
        rel: str,
        data: bytes,
        mode: int = 0o644,
        mtime: float | datetime | None = None,
        *,
        writable: bool = False,
    ) -> Path:
        local = self.local(rel)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        local.chmod(mode)
        if mtime is not None:
            stamp = mtime.timestamp() if isinstance(mtime, datetime) else mtime
            os.utime(local, (stamp, stamp))
        return local

    def mkdir(self, rel: str, mode: int = 0o755, *, writable: bool = False) -> Path:
        local = self.local(rel)
        local.mkdir(mode=mode, parents=True, exist_ok=True)
        return local


# A CSV with a BOM, quoted quotes, a quoted line break, an empty field and six rows.
PREVIEW_CSV = (
    "\ufeffuserId,name,note\r\n"
    '1,Ann,"said ""hi"""\r\n'
    '2,Bob,"two\r\nlines"\r\n'
    "3,Cy,\r\n4,Di,x\r\n5,Ed,y\r\n6,Fa,z\r\n"
).encode("utf-8")
PREVIEW_COLUMNS = ["userId", "name", "note"]
PREVIEW_ROWS = [  # what `preview` shows of PREVIEW_CSV: the first five rows
    ["1", "Ann", 'said "hi"'],
    ["2", "Bob", "two\r\nlines"],
    ["3", "Cy", ""],
    ["4", "Di", "x"],
    ["5", "Ed", "y"],
]

# Why `files` (with USERSYNC_MAX_FILE_SIZE=2000) hides what `put_mixed_files` writes.
HIDDEN_REASONS = {
    "UserData_c.csv": "bad_prefix",
    "notes.txt": "not_csv",
    "userdata_big.csv": "too_large",
    "userdata_dir.csv": "not_a_regular_file",
}


Folder = ServedFolder[Any] | LocalFolder  # a test's own folder of a store


def put_mixed_files(folder: Folder) -> None:
    """Two eligible files (`userdata_A.CSV`, `userdata_b.csv`: 9 bytes, 2026-01-01), the
    hidden ones of HIDDEN_REASONS (`userdata_big.csv`: 2001 bytes) and a folder `archive`."""
    folder.put("userdata_b.csv", b"userId\n1\n", mtime=1_767_225_600)
    folder.put("userdata_A.CSV", b"userId\n")
    folder.put("userdata_big.csv", b"x" * 2001)
    folder.put("UserData_c.csv", b"userId\n")
    folder.put("notes.txt", b"hello")
    folder.mkdir("userdata_dir.csv")
    folder.mkdir("archive")


# A file and a folder whose names are Latin-1, not UTF-8, beside ones whose names are.
NOT_UTF8_NAMES = (b"userdata_m\xfcnchen.csv", b"\xe9t\xe9")
NOT_UTF8_FILE_SHOWN = "userdata_m\ufffdnchen.csv"


def put_names_not_utf8(folder: Folder) -> None:
    """`userdata_ok.csv` and a folder `ok`, and a file and a folder named as NOT_UTF8_NAMES."""
    folder.put("userdata_ok.csv", b"userId\n1\n")
    folder.mkdir("ok")
    file_name, folder_name = (os.fsencode(folder.local()) + b"/" + name for name in NOT_UTF8_NAMES)
    with open(file_name, "wb") as file:
        file.write(b"userId\n2\n")
    os.mkdir(folder_name)


def check_names_not_utf8(folder: Folder, files: dict[str, Any], folders: dict[str, Any]) -> None:
    """What `files --json` and `folders --json` say of `put_names_not_utf8`'s folder: the
    file not named in UTF-8 hidden for it (its name shown with U+FFFD), the folder left out,
    and the others as usual."""
    assert [f["name"] for f in files["files"]] == ["userdata_ok.csv"]
    assert files["hidden"] == [
        {
            "name": NOT_UTF8_FILE_SHOWN,
            "path": folder.path(NOT_UTF8_FILE_SHOWN),
            "size": 9,
            "reason": "name_not_utf8",
        }
    ]
    assert folders["folders"] == [{"name": "ok", "path": folder.path("ok")}]


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a `usersync` command run in `tmp_path` (SQLite, 5 s timeouts)."""
    return {
        "USERSYNC_DATA_DIR": str(tmp_path / "data"),
        "USERSYNC_DB": f"sqlite:///{tmp_path / 'usersync.db'}",
        "USERSYNC_CONNECT_TIMEOUT": "5",
        "USERSYNC_IO_TIMEOUT": "5",
        "HOME": str(tmp_path / "home"),
        **extra,
    }


def drain(stream: BinaryIO) -> None:
    """Read `stream` to its end."""
    while stream.read(1024 * 1024):
        pass
