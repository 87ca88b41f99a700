"""The fixed vocabularies that the database, the library and the API share."""

from __future__ import annotations

import enum


class PropertyType(enum.StrEnum):
    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # applied, with rejected rows
    FAILED = "failed"  # nothing applied
    SKIPPED = "skipped"  # the file had not changed since the last successful run


class ConnectionKind(enum.StrEnum):
    SFTP = "sftp"
    FTP = "ftp"  # plain FTP: the password travels unencrypted
    FTPS = "ftps"  # FTP with explicit TLS (AUTH TLS)
    S3 = "s3"  # an S3-compatible bucket


class FileChoice(enum.StrEnum):
    """Which file a repeating sync reads each time."""

    EXACT = "exact"  # the chosen file, re-read each time
    NEWEST = "newest"  # the newest eligible file in the folder at run time
    ALL_NEW = "all_new"  # every eligible file not imported yet, oldest first


class AfterImport(enum.StrEnum):
    """What happens to a file once the store has committed its import."""

    LEAVE = "leave"
    MOVE = "move"
    DELETE = "delete"


class WebhookOn(enum.StrEnum):
    """Which runs a sync's webhook hears of."""

    FAILURE = "failure"  # failed runs only
    ALWAYS = "always"  # every finished run


class RunTrigger(enum.StrEnum):
    CLI = "cli"  # usersync import
    SCHEDULE = "schedule"  # a sync's fire time
    MANUAL = "manual"  # "run now"
    RETRY = "retry"  # a new attempt after a transient failure or a lost worker
