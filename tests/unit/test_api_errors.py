"""How the REST API turns errors into answers: the HTTP status of each error of the tree, the
codes, and validation messages that name the field without echoing the value."""

from __future__ import annotations

import pytest

from usersync.connectivity import HostKeyNotConfirmed
from usersync.db import DatabaseUnavailable
from usersync.errors import (
    AuthenticationFailed,
    Conflict,
    ConnectFailed,
    ConnectionLost,
    ConnectTimeout,
    CsvError,
    FileTooLarge,
    HeaderError,
    HostKeyMismatch,
    NotEligible,
    NotFound,
    RemotePathNotFound,
    RemotePermissionDenied,
    RemoteTimeout,
    UnknownHostKey,
    UsageError,
    UsersyncError,
)
from usersync.importer import FileChanged, TooManyRejected
from usersync.mapping import MappingError
from usersync.secretbox import SecretKeyError
from usersync.store.connections import ConnectionNotFound
from usersync.store.model import StoreError
from usersync.store.properties import PropertyTypeConflict
from usersync.store.runs import RunNotFound
from usersync.store.syncs import SyncNotFound
from usersync.store.workspaces import WorkspaceExists
from usersync.web.errors import error_code, status_for, validation_fields


def transient_store_error() -> StoreError:
    error = StoreError("the database is busy")
    error.transient = True
    return error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("x"), 404),
        (RunNotFound("x"), 404),
        (ConnectionNotFound("x"), 404),
        (SyncNotFound("x"), 404),
        (Conflict("x"), 409),
        (HostKeyNotConfirmed("x"), 409),
        (PropertyTypeConflict({"age": ("integer", "string")}), 409),
        (WorkspaceExists("x"), 409),
        (UsageError("x"), 422),
        (DatabaseUnavailable("x"), 503),
        (SecretKeyError("x"), 500),
        (ConnectFailed("x"), 502),
        (ConnectionLost("x"), 502),
        (AuthenticationFailed("x"), 502),
        (UnknownHostKey("x", fingerprint="SHA256:a"), 502),
        (HostKeyMismatch("x", fingerprint="SHA256:a"), 502),
        (ConnectTimeout("x"), 504),
        (RemoteTimeout("x"), 504),
        (RemotePathNotFound("x"), 404),
        (RemotePermissionDenied("x"), 422),
        (NotEligible("x", reason="not_csv"), 422),
        (FileTooLarge("x"), 422),
        (CsvError("x"), 422),
        (HeaderError("x"), 422),
        (MappingError("x"), 422),
        (StoreError("x"), 500),
        (transient_store_error(), 503),
        (TooManyRejected("x"), 500),
        (FileChanged("x"), 500),
        (UsersyncError("x"), 500),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_error_of_the_tree_has_a_fitting_status(error: UsersyncError, status: int) -> None:
    assert status_for(error) == status


def test_error_codes_are_the_class_names_in_snake_case() -> None:
    assert error_code(HostKeyNotConfirmed("x")) == "host_key_not_confirmed"
    assert error_code(RunNotFound("x")) == "run_not_found"
    assert error_code(UsageError("x")) == "usage_error"


def test_validation_problems_name_the_field_and_never_the_value() -> None:
    fields = validation_fields(
        [
            {
                "type": "string_type",
                "loc": ("body", "password"),
                "msg": "Input should be a valid string",
                "input": ["hunter2"],
            },
            {
                "type": "int_parsing",
                "loc": ("body", "mapping", "types", "age"),
                "msg": "Input should be a valid integer",
                "input": "secret-ish",
            },
            {"type": "missing", "loc": ("query", "path"), "msg": "Field required"},
            {
                "type": "json_invalid",
                "loc": ("body", 7),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": "Expecting value"},
            },
        ]
    )

    assert fields == [
        {"field": "password", "in": "body", "message": "Input should be a valid string"},
        {"field": "mapping.types.age", "in": "body", "message": "Input should be a valid integer"},
        {"field": "path", "in": "query", "message": "Field required"},
        {"field": "body", "in": "body", "message": "not valid JSON (Expecting value)"},
    ]
    assert "hunter2" not in str(fields)
    assert "secret-ish" not in str(fields)
