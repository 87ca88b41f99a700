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
