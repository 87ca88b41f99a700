"""API tokens: the workspace's tokens, a new one (shown once, never again), revoking one.

    GET  /tokens               the tokens, oldest first (and a new one, once)
    POST /tokens               a new token, then back to GET /tokens, which shows it once
    POST /tokens/{id}/revoke   revoke it; revoking the session's own signs the browser out

A token signs in to the web UI and authenticates the REST API (`Authorization: Bearer`).
Only its hash is stored (store.tokens), so the page that creates one is the only one that
ever shows it: the POST hands the new token to the GET that follows it in a cookie that
lives a minute and that GET deletes, so that reloading the page creates no second token
and shows the first no more.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from usersync.errors import NotFound, UsageError
from usersync.store import tokens
from usersync.store.tokens import NewToken
from usersync.web.api._common import ResourceId
from usersync.web.deps import Services, ServicesDep
from usersync.web.pages.render import render
from usersync.web.pages.runs import workspace_times
from usersync.web.pages.session import (
    FormSessionDep,
    Session,
    SessionDep,
    clear_session_cookie,
    secure,
)

router = APIRouter()


class TokenNotFound(NotFound):
    pass


NEW_TOKEN_COOKIE = "usersync_new_token"


@router.get("/tokens", response_class=HTMLResponse, include_in_schema=False)
def tokens_page(request: Request, services: ServicesDep, session: SessionDep) -> HTMLResponse:
    new = _new_token(request, services, session)
    response = _page(request, services, session, new=new)
    if NEW_TOKEN_COOKIE in request.cookies:
        response.delete_cookie(
            NEW_TOKEN_COOKIE,
            path="/tokens",
            httponly=True,
            samesite="strict",
            secure=secure(request),
        )
    return response


def _new_token(request: Request, services: Services, session: Session) -> NewToken | None:
    """The token that the POST just made, if it is one of this workspace's."""
    token_id, _, token = request.cookies.get(NEW_TOKEN_COOKIE, "").partition(".")
    if not token_id.isdigit():
        return None
    mine = tokens.list_tokens(services.engine, session.workspace_id)
    if any(t.id == int(token_id) and token.startswith(t.prefix) for t in mine):
        return NewToken(id=int(token_id), token=token)
    return None


def _page(
    request: Request,
    services: Services,
    session: Session,
    new: NewToken | None = None,
    error: str | None = None,
    name: str = "",
) -> HTMLResponse:
    return render(
        request,
        "tokens.html",
        422 if error else 200,
        session=session,
        tokens=tokens.list_tokens(services.engine, session.workspace_id),
        current=session.token_id,
        new=new,
        errors={"name": error} if error else {},
        typed_name=name,
        **workspace_times(services, session),
    )


@router.post("/tokens", include_in_schema=False)
def create(
    request: Request,
    services: ServicesDep,
    session: FormSessionDep,
    name: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """A new token of the workspace, shown once by the page this redirects to."""
    try:
        new = tokens.create_token(services.engine, session.workspace_id, name=name.strip() or None)
    except UsageError as error:
        return _page(request, services, session, error=error.message, name=name)
    response = RedirectResponse("/tokens", status_code=303)
    response.set_cookie(
        NEW_TOKEN_COOKIE,
        f"{new.id}.{new.token}",
        max_age=60,
        path="/tokens",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
    return response


@router.post("/tokens/{token_id}/revoke", include_in_schema=False)
def revoke(
    request: Request, token_id: ResourceId, services: ServicesDep, session: FormSessionDep
) -> Response:
    """Revoke one of the workspace's tokens; the browser that signed in with it is signed
    out."""
    if not tokens.revoke(services.engine, str(token_id), workspace_id=session.workspace_id):
        raise TokenNotFound(f"there is no token {token_id}")
    if token_id != session.token_id:
        return RedirectResponse("/tokens", status_code=303)
    response = RedirectResponse("/signin?revoked=1", status_code=303)
    clear_session_cookie(request, response)
    return response
