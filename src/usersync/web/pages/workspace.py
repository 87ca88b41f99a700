"""The workspace's settings: its time zone.

GET  /workspace    its name and time zone (and that it was saved, after a change)
POST /workspace    a new time zone, then back to GET /workspace
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from usersync.errors import UsageError
from usersync.schedule.zones import known_zones
from usersync.store import workspaces
from usersync.web.deps import Services, ServicesDep
from usersync.web.pages.render import render
from usersync.web.pages.session import FormSessionDep, Session, SessionDep

router = APIRouter()


@router.get("/workspace", response_class=HTMLResponse, include_in_schema=False)
def workspace_page(
    request: Request, services: ServicesDep, session: SessionDep, saved: bool = False
) -> HTMLResponse:
    return _page(request, services, session, saved=saved)


@router.post("/workspace", include_in_schema=False)
def update(
    request: Request,
    services: ServicesDep,
    session: FormSessionDep,
    timezone: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """A new time zone for the workspace; back to its page, which says so."""
    try:
        workspaces.set_timezone(services.engine, session.workspace_id, timezone)
    except UsageError as error:
        return _page(request, services, session, error=error.message, typed=timezone)
    return RedirectResponse("/workspace?saved=1", status_code=303)


def _page(
    request: Request,
    services: Services,
    session: Session,
    *,
    saved: bool = False,
    error: str | None = None,
    typed: str | None = None,
) -> HTMLResponse:
    found = workspaces.get(services.engine, session.workspace_id)
    return render(
        request,
        "workspace.html",
        422 if error else 200,
        session=session,
        workspace=found,
        typed=found.zone.key if typed is None else typed,
        saved=saved,
        errors={"timezone": error} if error else {},
        zones=known_zones(),
    )
