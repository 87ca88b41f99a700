"""Errors as the REST API answers them: `{"error": {"code", "message"}}` with an HTTP status.

The status of a usersync error follows its place in the tree (usersync.errors), most specific
first:

    NotFound (RunNotFound, ConnectionNotFound, SyncNotFound)   404 Not Found
    Conflict (HostKeyNotConfirmed, ...), PropertyTypeConflict,
        WorkspaceExists                                         409 Conflict
    Gone (RunErrorsDeleted)                                     410 Gone
    db.DatabaseUnavailable                                      503 Service Unavailable
    secretbox.SecretKeyError                                    500 (the server's key is wrong)
    UsageError (a bad field, schedule, mapping...)              422 Unprocessable Content
    ConnectTimeout, RemoteTimeout                               504 Gateway Timeout
    SourceError (refused, lost, login or host key refused)      502 Bad Gateway
    RemotePathNotFound                                          404 Not Found
    FileRuleError, CsvError, MappingError                       422 Unprocessable Content
    StoreError                                                  503 if transient, else 500
    any other UsersyncError                                     500, with its message

Requests the API refuses itself: no or bad token 401 (with `WWW-Authenticate: Bearer`), a body
or parameter of the wrong shape 422 (naming the field, never echoing the value: it may be a
password), an unknown route 404, a wrong method 405. Anything unexpected is a 500 whose
message says nothing of the cause; the cause goes to the server log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException

from usersync.db import DatabaseUnavailable
from usersync.errors import (
    Conflict,
    ConnectTimeout,
    CsvError,
    FileRuleError,
    Gone,
    HostKeyError,
    NotFound,
    RemotePathNotFound,
    RemoteTimeout,
    SourceError,
    UsageError,
    UsersyncError,
)
from usersync.mapping import MappingError
from usersync.reports import error_code as error_code  # the API's codes are the CLI's
from usersync.secretbox import SecretKeyError
from usersync.store.model import StoreError
from usersync.store.properties import PropertyTypeConflict
from usersync.store.workspaces import WorkspaceExists
from usersync.web.schemas import ABSOLUTE_PATH, NO_NUL

log = logging.getLogger(__name__)

# Most specific first: the first class the error is an instance of decides.
STATUS_BY_ERROR: tuple[tuple[type[UsersyncError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (Gone, 410),
    (PropertyTypeConflict, 409),
    (WorkspaceExists, 409),
    (DatabaseUnavailable, 503),
    (SecretKeyError, 500),
    (UsageError, 422),
    (ConnectTimeout, 504),
    (RemoteTimeout, 504),
    (SourceError, 502),
    (RemotePathNotFound, 404),
    (FileRuleError, 422),
    (CsvError, 422),
    (MappingError, 422),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    410: "gone",
    413: "request_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An error the web layer raises itself (e.g. a missing token), with its own status."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def status_for(error: UsersyncError) -> int:
    if isinstance(error, StoreError):
        return 503 if error.transient else 500
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _field(loc: Sequence[int | str]) -> str:
    """("body", "mapping", "user_id") -> "mapping.user_id"; ("query", "limit") -> "limit"."""
    return ".".join(str(part) for part in (loc[1:] if len(loc) > 1 else loc))


def validation_fields(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Each problem's field, where it was (body, query, path, header) and what is wrong.
    Pydantic's `input` is left out on purpose: it may be a password."""
    fields = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        ctx = error.get("ctx") or {}
        if error.get("type") == "json_invalid":
            reason = ctx.get("error", "")
            fields.append({"field": "body", "in": "body", "message": f"not valid JSON ({reason})"})
            continue
        message = str(error.get("msg", "is not valid"))
        if error.get("type") == "value_error":  # our validators' words, without "Value error, "
            message = str(ctx.get("error", message))
        pattern = ctx.get("pattern")
        if pattern == NO_NUL:
            message = "must not contain a NUL character (\\u0000)"
        elif pattern == ABSOLUTE_PATH:
            message = "give an absolute path, starting with / (and without NUL characters)"
        fields.append(
            {
                "field": _field(loc) or "body",
                "in": str(loc[0]) if loc else "body",
                "message": message,
            }
        )
    return fields


def _usersync_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, UsersyncError)
    status = status_for(error)
    extra: dict[str, Any] = {}
    if isinstance(error, HostKeyError):
        extra["fingerprint"] = error.fingerprint
    headers = {"Retry-After": "30"} if status == 503 else None
    if status in (500, 503):  # the server's own trouble (502 and 504 are the remote's)
        log.error("%s %s: %s: %s", request.method, request.url.path, error_code(error), error)
    return JSONResponse(
        error_body(error_code(error), error.message, **extra), status_code=status, headers=headers
    )


def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(
        error_body(error.code, error.message), status_code=error.status, headers=error.headers
    )


# A request can hold any number of problems (300,000 unknown keys, say): the answer gives the
# first ones, so that it is never larger than the request that caused it.
MOST_FIELDS_LISTED = 20
MOST_FIELDS_IN_MESSAGE = 5


def validation_summary(fields: Sequence[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    """The message of a 422 and the `fields` it lists, for these problems."""
    said = "; ".join(f"{i['field']}: {i['message']}" for i in fields[:MOST_FIELDS_IN_MESSAGE])
    if len(fields) > MOST_FIELDS_IN_MESSAGE:
        said += f"; and {len(fields) - MOST_FIELDS_IN_MESSAGE:,} more problems"
    return said or "the request is not valid", list(fields[:MOST_FIELDS_LISTED])


def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    message, fields = validation_summary(validation_fields(error.errors()))
    return JSONResponse(error_body("invalid_request", message, fields=fields), status_code=422)


def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    code = _HTTP_CODES.get(error.status_code, "http_error")
    message = str(error.detail) if error.detail else code.replace("_", " ")
    if error.status_code == 404 and error.detail == "Not Found":
        message = f"there is no {request.url.path} in this API: see /docs"
    return JSONResponse(
        error_body(code, message), status_code=error.status_code, headers=error.headers
    )


def _database_error(request: Request, error: Exception) -> JSONResponse:
    # The driver's text may hold the database URL (with its password): log it, answer plainly.
    log.error("%s %s: database error", request.method, request.url.path, exc_info=error)
    return JSONResponse(
        error_body("database_unavailable", "the database is not answering; try again shortly"),
        status_code=503,
        headers={"Retry-After": "30"},
    )


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    # Starlette raises the error on after this answer, and the server logs its traceback.
    return JSONResponse(
        error_body(
            "internal_error",
            "something went wrong on the server; the server log has the details",
        ),
        status_code=500,
    )


def install(app: FastAPI) -> None:
    """Answer every error the API can meet as `{"error": {"code", "message"}}`."""
    app.add_exception_handler(UsersyncError, _usersync_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(sa_exc.OperationalError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
