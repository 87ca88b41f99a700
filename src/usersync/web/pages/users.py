"""User 360: the users of the workspace, searched and paged, and one user's properties."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from usersync.store import UserRecord, UserStore, properties
from usersync.web.api._common import Limit
from usersync.web.api.users import (
    OptionalUserId,
    SearchText,
    UserIdPath,
    users_download,
    users_page,
)
from usersync.web.deps import ServicesDep
from usersync.web.pages.render import render
from usersync.web.pages.runs import workspace_times
from usersync.web.pages.session import FormSessionDep, SessionDep

router = APIRouter(prefix="/users")
download_router = APIRouter()  # /users.csv, /users.jsonl: the API's files

PAGE_SIZE = 50
SUMMARY_PROPERTIES = 3  # properties named in a row of the list
SUMMARY_VALUE_CHARS = 40


@dataclass(frozen=True)
class UserRow:
    record: UserRecord
    url: str
    summary: str


@dataclass(frozen=True)
class Field:
    name: str
    type: str | None  # None: the catalog does not know it
    value: str | None  # None: empty


# Path segments that browsers resolve away (`/users/..` is `/`), encoded or not.
_DOT_SEGMENTS = frozenset({".", ".."})


def user_url(user_id: str) -> str:
    """The record's page: the userId as one path segment (it may hold `/`, `?`, `#`...), or,
    for `.` and `..`, which no browser keeps in a path, as the list's `id` query value."""
    if user_id in _DOT_SEGMENTS:
        return "/users?" + urlencode({"id": user_id})
    return "/users/" + quote(user_id, safe="")


def list_url(search: str | None, after: str | None, limit: int) -> str:
    """A page of the list, keeping the search and a page size other than the default."""
    query = {"q": search, "after": after, "limit": None if limit == PAGE_SIZE else str(limit)}
    kept = {name: value for name, value in query.items() if value}
    return "/users" + (f"?{urlencode(kept)}" if kept else "")


def shown(value: Any) -> str | None:
    """A value as text, as the CLI's JSON writes it; None for an empty one."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _clipped(text: str) -> str:
    if len(text) <= SUMMARY_VALUE_CHARS:
        return text
    return text[: SUMMARY_VALUE_CHARS - 1] + "…"


def summary(record: UserRecord) -> str:
    """The first few properties by name: `age 41 · email a@example.com`."""
    names = sorted(record.properties)[:SUMMARY_PROPERTIES]
    parts = [f"{name} {_clipped(shown(record.properties[name]) or '(empty)')}" for name in names]
    more = len(record.properties) - len(names)
    return " · ".join(parts) + (f" · {more} more" if more else "")


def fields(record: UserRecord, catalog: dict[str, str]) -> list[Field]:
    """Every property of the catalog and of the record, by name, with its type and value."""
    names = sorted(set(catalog) | set(record.properties))
    return [Field(name, catalog.get(name), shown(record.properties.get(name))) for name in names]


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def users(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    q: SearchText = None,
    after: OptionalUserId = None,
    limit: Limit = PAGE_SIZE,
    id: OptionalUserId = None,
    deleted: OptionalUserId = None,
) -> HTMLResponse:
    """The users in userId order, a page at a time, optionally those whose userId holds `q`;
    with `id`, that user's record (see user_url)."""
    if id is not None:
        return user(request, id, services, session)
    search = q or None
    found, cursor = users_page(
        services.engine, session.workspace_id, limit=limit, after=after, search=search
    )
    return render(
        request,
        "users.html",
        session=session,
        search=search or "",
        after=after,
        limit=limit,
        page_size=PAGE_SIZE,
        rows=[UserRow(r, user_url(r.user_id), summary(r)) for r in found],
        next_url=list_url(search, cursor, limit) if cursor is not None else None,
        first_url=list_url(search, None, limit) if after is not None else None,
        deleted=deleted,
        **workspace_times(services, session),
    )


@download_router.get("/users.{fmt}", include_in_schema=False)
def download(
    fmt: Literal["csv", "jsonl"], services: ServicesDep, session: SessionDep
) -> StreamingResponse:
    return users_download(services.engine, session.workspace_id, fmt)


@router.post("/delete", include_in_schema=False)
def delete(
    services: ServicesDep,
    session: FormSessionDep,
    user_id: Annotated[str, Form(max_length=1000)],
) -> RedirectResponse:
    """Delete a user's record (its page's "Delete this user"); back to the list, which says
    so."""
    UserStore(services.engine).delete_user(session.workspace_id, user_id)
    return RedirectResponse("/users?" + urlencode({"deleted": user_id}), status_code=303)


@router.get("/{user_id:path}", response_class=HTMLResponse, include_in_schema=False)
def user(
    request: Request, user_id: UserIdPath, services: ServicesDep, session: SessionDep
) -> HTMLResponse:
    """One user's record: every property with its type and value (404 if not this
    workspace's)."""
    ws = session.workspace_id
    record = UserStore(services.engine).require_user(ws, user_id)
    catalog = properties.types(services.engine, ws)
    return render(
        request,
        "user.html",
        session=session,
        record=record,
        fields=fields(record, catalog),
        **workspace_times(services, session),
    )
