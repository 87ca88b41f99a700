"""Signing in to the web UI: the workspace token in a cookie, and CSRF tokens for its forms.

The session cookie holds `NONCE.TOKEN`: the API token the user signed in with, and a random
nonce drawn at sign-in. It is HttpOnly (no script reads it), SameSite=Strict (no other site's
page sends it) and Secure when the UI is served over https. Every form that changes something
carries the session's CSRF token, HMAC-SHA256(TOKEN, NONCE): it differs per sign-in, only
the server (and the page it rendered) knows it, and it reveals nothing of the token.

The sign-in form itself has no session yet: it carries a random value that must match a
short-lived cookie of the same name (a double submit), so no other site can sign a browser
in to a workspace of its choosing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import SplitResult, quote, urlencode, urlsplit

from fastapi import Depends, Form, Request, Response
from starlette.datastructures import URL

from usersync.store import tokens
from usersync.web.deps import ServicesDep

SESSION_COOKIE = "usersync_session"
SIGNIN_COOKIE = "usersync_signin"
SIGNIN_MAX_AGE = 3600  # seconds a sign-in form stays valid


class SignInRequired(Exception):
    """No valid session: the user is sent to the sign-in page (then back to `next_url`)."""

    def __init__(self, next_url: str, *, ended: bool = False) -> None:
        super().__init__(next_url)
        self.next_url = next_url
        self.ended = ended  # the browser had a session, whose token no longer signs in


class CsrfRejected(Exception):
    """A form came without this session's CSRF token (an old page, or another site)."""


@dataclass(frozen=True)
class Session:
    workspace_id: int
    csrf: str = field(repr=False)
    token_id: int  # the token the browser signed in with


def csrf_token(token: str, nonce: str) -> str:
    return hmac.new(token.encode("utf-8"), nonce.encode("ascii"), hashlib.sha256).hexdigest()


def new_session_value(token: str) -> str:
    return f"{secrets.token_urlsafe(16)}.{token}"


def secure(request: Request) -> bool:
    """Whether cookies must be Secure: the page came over https."""
    return request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=secure(request),
        path="/",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="strict", secure=secure(request), path="/"
    )


def signin_nonce(request: Request) -> str:
    """The sign-in form's value: the cookie's if the browser has one, else a new one."""
    return request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(24)


def set_signin_cookie(request: Request, response: Response, nonce: str) -> None:
    response.set_cookie(
        SIGNIN_COOKIE,
        nonce,
        max_age=SIGNIN_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=secure(request),
        path="/signin",
    )


def signin_form_valid(request: Request, submitted: str) -> bool:
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    return bool(expected) and hmac.compare_digest(expected, submitted)


def _session(request: Request, services: ServicesDep) -> Session | None:
    nonce, _, token = request.cookies.get(SESSION_COOKIE, "").partition(".")
    if not nonce or not token:
        return None
    holder = tokens.lookup(services.engine, token)
    if holder is None:
        return None
    return Session(holder.workspace_id, csrf_token(token, nonce), holder.token_id)


def current_session(request: Request, services: ServicesDep) -> Session:
    """The signed-in session; without one the user is sent to sign in."""
    found = _session(request, services)
    if found is None:
        ended = bool(request.cookies.get(SESSION_COOKIE))
        raise SignInRequired(_page_to_return_to(request), ended=ended)
    return found


def _page_to_return_to(request: Request) -> str:
    """The page to come back to after signing in: this one if it is a page (a GET), the
    page that htmx asked from for one of its fragments, else the Integrations page."""
    page: SplitResult | URL = request.url
    if request.headers.get("HX-Request"):
        page = urlsplit(request.headers.get("HX-Current-URL", ""))
        if page.netloc != request.url.netloc:
            return "/integrations"
    elif request.method != "GET":
        return "/integrations"
    return page.path + (f"?{page.query}" if page.query else "")


def optional_session(request: Request, services: ServicesDep) -> Session | None:
    return _session(request, services)


def form_session(
    session: Annotated[Session, Depends(current_session)],
    csrf: Annotated[str, Form()] = "",
) -> Session:
    """The session of a form that changes something: it must carry the CSRF token."""
    if not hmac.compare_digest(session.csrf, csrf):
        raise CsrfRejected()
    return session


def signin_url(next_url: str, *, ended: bool = False) -> str:
    query = {"ended": "1"} if ended else {}
    if next_url not in ("", "/"):
        query["next"] = next_url
    return "/signin" + (f"?{urlencode(query, safe='', quote_via=quote)}" if query else "")


def safe_next(next_url: str | None) -> str:
    """Where to go after signing in: a path of this site only, never another site."""
    if next_url and next_url.startswith("/") and not next_url.startswith(("//", "/\\")):
        return next_url
    return "/integrations"


SessionDep = Annotated[Session, Depends(current_session)]
FormSessionDep = Annotated[Session, Depends(form_session)]
OptionalSessionDep = Annotated[Session | None, Depends(optional_session)]
