"""The web UI: server-rendered pages (Jinja2, enhanced with htmx) over the same service layer
as the REST API. `install(app)` mounts them, their static files and their error pages.

    /signin, /signout                              signing in with a workspace token
    /integrations, /integrations/new, .../verify   connections, "Connect SFTP", host keys
    /integrations/{id}/sync/new                    the sync wizard: Configure source, then
                                                   Map properties, Resolve conflicts,
                                                   Schedule import, Import (?step=...)
    /runs, /runs/{id}                              runs (one sync's: ?sync=), a run's progress
    /users, /users/{userId}                        User 360

Errors on pages answer as pages (404 for an unknown address); on the API, as its JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from usersync.errors import UsersyncError
from usersync.reports import error_code
from usersync.web.deps import services
from usersync.web.errors import status_for, validation_fields, validation_summary
from usersync.web.pages import (
    integrations,
    runs,
    signin,
    tokens,
    users,
    wizard,
    wizard_steps,
    workspace,
)
from usersync.web.pages.render import STATIC, render
from usersync.web.pages.session import CsrfRejected, SignInRequired, optional_session, signin_url
from usersync.web.pages.wizard_shelf import WizardShelf

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


_NOT_PAGES = ("/api/", "/health", "/static/", "/docs", "/redoc", "/openapi.json")


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith(_NOT_PAGES)


def _sign_in_required(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    target = signin_url(error.next_url, ended=error.ended)
    if request.headers.get("HX-Request"):  # an htmx fragment: send the whole page there
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _csrf_rejected(request: Request, error: Exception) -> HTMLResponse:
    return _error_page(
        request,
        403,
        "This form has expired",
        "The page was open too long, or you signed in again elsewhere. "
        "Go back, reload the page and try again.",
    )


# Where an error page sends you back to, by the first part of its address.
_BACK = {
    "runs": ("/runs", "Back to runs"),
    "syncs": ("/runs", "Back to runs"),
    "users": ("/users", "Back to users"),
    "tokens": ("/tokens", "Back to API tokens"),
}
_BACK_DEFAULT = ("/integrations", "Back to integrations")


def _error_page(
    request: Request, status: int, title: str, message: str, code: str | None = None
) -> HTMLResponse:
    """An error as a page with the site's navigation, for a signed-in user too."""
    session = None
    if status < 500:  # a server error may be the database itself: no more queries then
        try:
            session = optional_session(request, services(request))
        except Exception:  # the error page shows, whatever else is broken
            session = None
    back_url, back_label = _BACK.get(request.url.path.strip("/").split("/")[0], _BACK_DEFAULT)
    return render(
        request,
        "error.html",
        status,
        title=title,
        message=message,
        code=code,
        session=session,
        back_url=back_url,
        back_label=back_label,
    )


Described = tuple[int, str, str, str | None]  # status, title, message, error code
Describe = Callable[[Request, Exception], Described]


def _usersync_error(request: Request, error: Exception) -> Described:
    assert isinstance(error, UsersyncError)
    status = status_for(error)
    title = "Not found" if status == 404 else "Something went wrong"
    return status, title, error.message, error_code(error)


def _http_error(request: Request, error: Exception) -> Described:
    assert isinstance(error, HTTPException)
    if error.status_code in (404, 405):
        return 404, "Not found", f"There is no page at {request.url.path}.", None
    return error.status_code, "Something went wrong", str(error.detail), None


def _invalid_address(request: Request, error: Exception) -> Described:
    assert isinstance(error, RequestValidationError)
    problems, _ = validation_summary(validation_fields(error.errors()))
    return 422, "This address is not valid", problems, None


def _as_page(json_handler: Handler, describe: Describe) -> Handler:
    """An error on a page answers as a page; on the API, as the API's JSON."""

    def handle(request: Request, error: Exception) -> Response | Awaitable[Response]:
        if not _is_page(request):
            return json_handler(request, error)
        status, title, message, code = describe(request, error)
        return _error_page(request, status, title, message, code)

    return handle


def install(app: FastAPI) -> None:
    """Mount the pages and their static files (call after `errors.install(app)`)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.wizard_shelf = WizardShelf()
    for module in (signin, integrations, wizard, wizard_steps, runs, users, tokens, workspace):
        app.include_router(module.router)
    app.include_router(wizard_steps.edit_router)
    app.include_router(users.download_router)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
    for kind, describe in (
        (UsersyncError, _usersync_error),
        (HTTPException, _http_error),
        (RequestValidationError, _invalid_address),
    ):
        app.add_exception_handler(kind, _as_page(app.exception_handlers[kind], describe))
