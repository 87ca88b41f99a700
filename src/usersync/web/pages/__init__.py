"""The web UI: server-rendered pages (Jinja2, enhanced with htmx) over the same service layer
as the REST API. `install(app)` mounts them, their static files and their error pages.

    /signin, /signout                              signing in with a workspace token
    /integrations, /integrations/new, .../verify   connections, "Connect SFTP", host keys
    /integrations/{id}/sync/new                    the sync wizard: Configure source, then
                                                   (POST) Map properties, Resolve conflicts,
                                                   Schedule import, Import
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from usersync.errors import UsersyncError
from usersync.reports import error_code
from usersync.web.errors import status_for
from usersync.web.pages import integrations, runs, signin, users, wizard, wizard_steps
from usersync.web.pages.render import STATIC, render
from usersync.web.pages.session import CsrfRejected, SignInRequired, signin_url

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith(("/api/", "/health"))


def _sign_in_required(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    target = signin_url(error.next_url)
    if request.headers.get("HX-Request"):  # an htmx fragment: send the whole page there
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _csrf_rejected(request: Request, error: Exception) -> HTMLResponse:
    return render(
        request,
        "error.html",
        403,
        title="This form has expired",
        message="The page was open too long, or you signed in again elsewhere. "
        "Go back, reload the page and try again.",
    )


def _page_errors(json_handler: Handler) -> Handler:
    """A usersync error on a page answers as a page; on the API, as the API's JSON."""

    def handle(request: Request, error: Exception) -> Response | Awaitable[Response]:
        if not isinstance(error, UsersyncError) or not _is_page(request):
            return json_handler(request, error)
        status = status_for(error)
        title = "Not found" if status == 404 else "Something went wrong"
        return render(
            request,
            "error.html",
            status,
            title=title,
            message=error.message,
            code=error_code(error),
        )

    return handle


def install(app: FastAPI) -> None:
    """Mount the pages and their static files (call after `errors.install(app)`)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (signin, integrations, wizard, wizard_steps, runs, users):
        app.include_router(module.router)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
    app.add_exception_handler(UsersyncError, _page_errors(app.exception_handlers[UsersyncError]))
