"""What the routers share: the documented error answers, id and path parameters, paging."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Path, Query
from pydantic import AfterValidator

from usersync.sources.urls import normalize_path
from usersync.web.schemas import ABSOLUTE_PATH, MAX_ID, ErrorResponse

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses (401 and 422 are always possible)."""
    described = {
        401: "No API token, or an unknown or revoked one.",
        404: "No such resource in this workspace.",
        409: "The request clashes with the current state.",
        410: "It was deleted: a run's rejected rows are kept for the newest runs only.",
        422: "A field is missing, of the wrong type, or not valid; the message names it.",
        502: "The remote server refused or dropped the connection, or its host key is wrong.",
        503: "The database is busy or not answering; try again.",
        504: "The remote server did not answer in time.",
    }
    return {
        status: {"model": ErrorResponse, "description": described[status]}
        for status in sorted({401, 422, *statuses})
    }


ResourceId = Annotated[int, Path(ge=1, le=MAX_ID, description="The resource's id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
RemotePath = Annotated[
    str,
    Query(
        pattern=ABSOLUTE_PATH,
        max_length=4096,
        description="An absolute path on the server (`/in//` and `/in/./x/..` are `/in`).",
    ),
    AfterValidator(normalize_path),
]


def page(items: Sequence[T], limit: int, key: Callable[[T], Any]) -> tuple[list[T], Any | None]:
    """`items` holds up to limit + 1 entries: the page, and the cursor of the next one (the
    last key of this page) if there is more."""
    if len(items) > limit:
        shown = list(items[:limit])
        return shown, key(shown[-1])
    return list(items), None
