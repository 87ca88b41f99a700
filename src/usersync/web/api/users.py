"""The User 360 store: users a page at a time, one user's record, deleting one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine

from usersync.exports import FORMATS, export_users
from usersync.schema import utcnow
from usersync.store import UserRecord, UserStore
from usersync.web.api._common import DEFAULT_LIMIT, Limit, errors, page
from usersync.web.auth import WorkspaceDep
from usersync.web.deps import ServicesDep
from usersync.web.schemas import NO_NUL, UserList, UserPublic

router = APIRouter(prefix="/users", tags=["users"])
download_router = APIRouter(tags=["users"])  # /users.csv and /users.jsonl, beside /users/{id}

OptionalUserId = Annotated[str | None, Query(max_length=1000, pattern=NO_NUL)]
UserIdPath = Annotated[str, Path(max_length=1000, pattern=NO_NUL)]
SearchText = Annotated[
    str | None,
    Query(max_length=200, pattern=NO_NUL, description="userIds that contain this."),
]


def users_page(
    engine: Engine, ws: int, *, limit: int, after: str | None, search: str | None
) -> tuple[list[UserRecord], str | None]:
    """A page of the workspace's users in userId order, and the cursor of the next page."""
    found = UserStore(engine).list_users(ws, limit=limit + 1, after=after, search=search)
    return page(found, limit, lambda record: record.user_id)


def public(record: UserRecord) -> UserPublic:
    return UserPublic(
        id=record.user_id,
        user_id=record.user_id,
        properties=record.properties,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


@router.get(
    "",
    summary="List users, ordered by userId",
    description="Pages follow the userId order (bytewise): pass the previous page's `next` "
    "as `after`.",
    response_model=UserList,
    responses=errors(),
)
def list_users(
    services: ServicesDep,
    ws: WorkspaceDep,
    limit: Limit = DEFAULT_LIMIT,
    after: OptionalUserId = None,
    search: SearchText = None,
) -> UserList:
    shown, cursor = users_page(services.engine, ws, limit=limit, after=after, search=search)
    return UserList(items=[public(record) for record in shown], next=cursor)


@router.get(
    "/{user_id:path}",
    summary="Get a user's record",
    response_model=UserPublic,
    responses=errors(404),
)
def get_user(user_id: UserIdPath, services: ServicesDep, ws: WorkspaceDep) -> UserPublic:
    return public(UserStore(services.engine).require_user(ws, user_id))


@router.delete(
    "/{user_id:path}",
    status_code=204,
    summary="Delete a user's record",
    description="For an erasure request, say. An import whose file has the userId again "
    "makes a new record.",
    responses=errors(404),
)
def delete_user(user_id: UserIdPath, services: ServicesDep, ws: WorkspaceDep) -> Response:
    UserStore(services.engine).delete_user(ws, user_id)
    return Response(status_code=204)


def users_download(engine: Engine, ws: int, fmt: str) -> StreamingResponse:
    """Every user of the workspace as a file to download (`fmt`: a key of FORMATS). The API
    and the web UI answer with this same file."""
    exported = export_users(engine, ws, fmt)
    name = f"userdata_export_{utcnow():%Y-%m-%d}.{fmt}"
    return StreamingResponse(
        exported.chunks,
        media_type=FORMATS[fmt].media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


_DOWNLOAD = (
    "Streamed a page of users at a time, in userId order; a user that an import changes "
    "meanwhile comes as its page found it. "
)


@download_router.get(
    "/users.csv",
    summary="Every user, as a userdata CSV file",
    description=_DOWNLOAD + "The header is `userId` (`userId_1` if a property has that name), "
    "then each property of the catalog by name; an absent property is an empty cell. Values "
    "are as stored (numbers as JSON writes them, booleans true/false, dates ISO 8601), "
    "without formula escaping, so that the file imports back to the same records.",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **errors()},
)
def users_csv(services: ServicesDep, ws: WorkspaceDep) -> StreamingResponse:
    return users_download(services.engine, ws, "csv")


@download_router.get(
    "/users.jsonl",
    summary="Every user, as JSON Lines",
    description=_DOWNLOAD + "Each line is a user as GET /api/users/{user_id} gives it, "
    "less its `id`.",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}, **errors()},
)
def users_jsonl(services: ServicesDep, ws: WorkspaceDep) -> StreamingResponse:
    return users_download(services.engine, ws, "jsonl")
