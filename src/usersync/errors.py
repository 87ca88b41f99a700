"""Every error usersync raises on purpose, with the exit code the CLI gives it.

    UsersyncError                      base; `message` says what and how to fix it; exit 5
    ├── UsageError                     exit 2: a bad argument, URL or option
    │   ├── db.DatabaseUnavailable     transient: the database cannot be reached or opened
    │   ├── store.properties.PropertyTypeConflict   a property exists with another type
    │   ├── store.workspaces.WorkspaceExists
    │   ├── NotFound                   no such resource in this workspace (HTTP 404)
    │   │   └── store.runs.RunNotFound
    │   └── Conflict                   the request clashes with the current state (HTTP 409)
    ├── SourceError                    exit 3: reaching or talking to the remote store
    │   ├── ConnectFailed              transient: refused, unreachable, name not found
    │   ├── ConnectTimeout             transient: no answer while connecting or logging in
    │   ├── RemoteTimeout              transient: the server stopped answering mid-operation
    │   ├── ConnectionLost             transient: the connection dropped mid-operation
    │   ├── AuthenticationFailed       permanent: wrong password or key, unreadable key
    │   ├── UntrustedCertificate       permanent: the server's TLS certificate fails the check
    │   └── HostKeyError               permanent: the server's host key is not trusted
    │       ├── UnknownHostKey         no known_hosts entry or pin for this host
    │       └── HostKeyMismatch        the key differs from the trusted one
    ├── FileRuleError                  exit 4: a remote path or file breaks a file rule
    │   ├── RemotePathNotFound         no such file or folder
    │   ├── RemotePermissionDenied     the server refuses to list or read it
    │   ├── NotEligible                not a userdata_*.csv regular file (carries the reason)
    │   └── FileTooLarge               over the size limit, when listed or while read
    ├── CsvError                       exit 4: the file cannot be read as the CSV asked for
    │   └── HeaderError                empty, missing or duplicate header names
    ├── mapping.MappingError           exit 5: the mapping names a column the file lacks
    ├── importer.TooManyRejected       exit 5: more rejected rows than --max-rejected allows
    ├── importer.FileChanged           exit 5, transient: the file changed while it was read
    ├── spool.SpoolFull                exit 5, transient: no room for the file's local copy
    ├── sources.s3.ObjectChanged       exit 5, transient: an S3 object was replaced while read
    ├── backup.BackupFailed            exit 5: the database could not be copied (a full disk)
    ├── db.DatabaseLost                exit 5, transient: the database stopped answering mid-command
    └── store.StoreError               exit 5: the database refused the apply; nothing applied

`transient` errors may succeed if tried again later; the rest will not until something changes.
"""

from __future__ import annotations


class UsersyncError(Exception):
    """Base of usersync's errors. `str(error)` is the user-facing message."""

    exit_code = 5
    transient = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(UsersyncError):
    exit_code = 2


class NotFound(UsageError):
    pass


class Conflict(UsageError):
    pass


class Gone(UsageError):
    """What was asked for existed, and was let go (a run's rejected rows, say)."""


class SourceError(UsersyncError):
    exit_code = 3


class ConnectFailed(SourceError):
    transient = True


class ConnectTimeout(SourceError):
    transient = True


class RemoteTimeout(SourceError):
    transient = True


class ConnectionLost(SourceError):
    transient = True


class AuthenticationFailed(SourceError):
    pass


class UntrustedCertificate(SourceError):
    """The server's TLS certificate failed the check (unknown authority, expired, another
    name). Permanent until the certificate or the trust settings change."""


class HostKeyError(SourceError):
    def __init__(self, message: str, *, fingerprint: str) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint


class UnknownHostKey(HostKeyError):
    pass


class HostKeyMismatch(HostKeyError):
    pass


class FileRuleError(UsersyncError):
    exit_code = 4


class RemotePathNotFound(FileRuleError):
    pass


class RemotePermissionDenied(FileRuleError):
    pass


class NotEligible(FileRuleError):
    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class FileTooLarge(FileRuleError):
    pass


class CsvError(UsersyncError):
    exit_code = 4


class HeaderError(CsvError):
    pass
