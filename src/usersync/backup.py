"""A backup of the embedded SQLite database, taken while usersync runs: `usersync backup FILE`.

Copying the file by hand while `serve` or a worker writes can give a torn copy, or one
without the changes still in its write-ahead log. `VACUUM INTO` reads the database in one
transaction, so the copy is the state of one moment (an import that has not committed is not
in it, one that has is whole), and it leaves out the free pages. It is written beside FILE,
readable by its owner only (it holds every user's data and the encrypted secrets), then
linked in place: FILE is never half a database, and an existing FILE is never replaced.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine

from usersync.errors import UsageError, UsersyncError
from usersync.files import written_whole


class BackupFailed(UsersyncError):
    """The copy could not be made (a full disk, say): exit 5, and no FILE is left."""


def backup_sqlite(engine: Engine, path: Path) -> int:
    """Copy the SQLite database of `engine` to the new file `path`; its size in bytes."""
    if engine.dialect.name != "sqlite":
        raise UsageError(
            "usersync backup copies the embedded SQLite database; back up PostgreSQL with "
            "its own tools, e.g. pg_dump --format=custom --file=usersync.dump DATABASE_URL"
        )
    if path.exists():
        raise UsageError(f"{path} already exists: a backup never replaces a file, name a new one")
    if not path.parent.is_dir():
        raise UsageError(f"{path}: there is no folder {path.parent}")
    try:
        with written_whole(path) as partial:  # VACUUM INTO fills the empty file as it is
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("VACUUM INTO ?", (str(partial),))
                cursor.close()
            except sqlite3.Error as error:
                hint = "; free disk space for it" if "full" in str(error) else ""
                raise BackupFailed(f"the backup to {path} failed ({error}){hint}") from error
            finally:
                raw.close()
    except FileExistsError:
        message = f"{path} appeared while the backup was made: name a new file"
        raise UsageError(message) from None
    return path.stat().st_size
