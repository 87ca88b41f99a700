"""Signing in with a workspace token, and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from usersync.store import tokens
from usersync.web.deps import ServicesDep
from usersync.web.pages.render import render
from usersync.web.pages.session import (
    FormSessionDep,
    OptionalSessionDep,
    clear_session_cookie,
    new_session_value,
    safe_next,
    set_session_cookie,
    set_signin_cookie,
    signin_form_valid,
    signin_nonce,
)

router = APIRouter()

_TOKEN_HELP = "usersync token create --workspace NAME"


def _signin_page(
    request: Request,
    next_url: str,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    nonce = signin_nonce(request)
    response = render(
        request,
        "signin.html",
        status,
        next_url=next_url,
        nonce=nonce,
        error=error,
        notice=notice,
        token_help=_TOKEN_HELP,
    )
    set_signin_cookie(request, response, nonce)
    return response


@router.get("/", include_in_schema=False)
def home(session: OptionalSessionDep) -> RedirectResponse:
    return RedirectResponse("/integrations" if session else "/signin", status_code=303)


@router.get("/signin", response_class=HTMLResponse, include_in_schema=False)
def signin_form(
    request: Request,
    session: OptionalSessionDep,
    next_url: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
    revoked: bool = False,
    ended: bool = False,
) -> Response:
    if session is not None:
        return RedirectResponse(safe_next(next_url), status_code=303)
    notice = None
    if revoked:
        notice = "You revoked the token this browser signed in with."
    elif ended:
        notice = (
            "Your session ended: the token this browser signed in with was revoked or no "
            "longer exists. Sign in again to go on."
        )
    return _signin_page(request, safe_next(next_url), notice=notice)


@router.post("/signin", response_class=HTMLResponse, include_in_schema=False)
def signin(
    request: Request,
    services: ServicesDep,
    token: Annotated[str, Form(max_length=tokens.MAX_TOKEN_LENGTH * 2)] = "",
    signin_check: Annotated[str, Form(max_length=200)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "",
) -> Response:
    target = safe_next(next_url)
    if not signin_form_valid(request, signin_check):
        return _signin_page(
            request, target, 400, "This sign-in form has expired. Paste the token again."
        )
    token = token.strip()
    if not token:
        return _signin_page(request, target, 422, f"Paste a workspace token ({_TOKEN_HELP}).")
    if tokens.authenticate(services.engine, token) is None:
        return _signin_page(
            request,
            target,
            401,
            "This token is not valid: it is unknown or was revoked. "
            f"Create a new one with: {_TOKEN_HELP}",
        )
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, new_session_value(token))
    return response


@router.post("/signout", include_in_schema=False)
def signout(request: Request, session: FormSessionDep) -> RedirectResponse:
    response = RedirectResponse("/signin", status_code=303)
    clear_session_cookie(request, response)
    return response
