"""The User 360 store, read-only: users a page at a time, and one user's record."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from usersync.errors import NotFound
from usersync.store import UserRecord, UserStore
from usersync.web.api._common import DEFAULT_LIMIT, Limit, errors, page
from usersync.web.auth import WorkspaceDep
from usersync.web.deps import ServicesDep
from usersync.web.schemas import UserList, UserPublic

router = APIRouter(prefix="/users", tags=["users"])

UserIdText = Annotated[str, Query(max_length=1000, pattern=r"^[^\x00]*$")]


class UserNotFound(NotFound):
    pass


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
    after: Annotated[str | None, UserIdText] = None,
    search: Annotated[
        str | None,
        Query(max_length=200, pattern=r"^[^\x00]*$", description="userIds that contain this."),
    ] = None,
) -> UserList:
    found = UserStore(services.engine).list_users(ws, limit=limit + 1, after=after, search=search)
    shown, cursor = page(found, limit, lambda record: record.user_id)
    return UserList(items=[public(record) for record in shown], next=cursor)


@router.get(
    "/{user_id:path}",
    summary="Get a user's record",
    response_model=UserPublic,
    responses=errors(404),
)
def get_user(
    user_id: Annotated[str, Path(max_length=1000, pattern=r"^[^\x00]*$")],
    services: ServicesDep,
    ws: WorkspaceDep,
) -> UserPublic:
    record = UserStore(services.engine).get_user(ws, user_id)
    if record is None:
        raise UserNotFound(f"there is no user {user_id!r}")
    return public(record)
