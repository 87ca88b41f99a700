"""The workspace of the API token: its name and time zone."""

from __future__ import annotations

from fastapi import APIRouter

from usersync.store import workspaces
from usersync.web.api._common import errors
from usersync.web.auth import WorkspaceDep
from usersync.web.deps import Services, ServicesDep
from usersync.web.schemas import WorkspacePublic, WorkspaceUpdate

router = APIRouter(prefix="/workspace", tags=["workspace"])


def public(services: Services, ws: int) -> WorkspacePublic:
    found = workspaces.get(services.engine, ws)
    return WorkspacePublic(
        id=found.id, name=found.name, timezone=found.zone.key, created_at=found.created_at
    )


@router.get("", summary="The token's workspace", response_model=WorkspacePublic, responses=errors())
def get_workspace(services: ServicesDep, ws: WorkspaceDep) -> WorkspacePublic:
    return public(services, ws)


@router.patch(
    "",
    summary="Change the workspace's time zone",
    description="Syncs keep their own time zones.",
    response_model=WorkspacePublic,
    responses=errors(),
)
def update_workspace(
    body: WorkspaceUpdate, services: ServicesDep, ws: WorkspaceDep
) -> WorkspacePublic:
    if body.timezone is not None:
        workspaces.set_timezone(services.engine, ws, body.timezone)
    return public(services, ws)
