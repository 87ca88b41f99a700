"""The property catalog: each property's name and type."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from usersync.store import properties
from usersync.store.properties import Property
from usersync.web.api._common import DEFAULT_LIMIT, Limit, errors, page
from usersync.web.auth import WorkspaceDep
from usersync.web.deps import ServicesDep
from usersync.web.schemas import NO_NUL, PropertyCreate, PropertyList, PropertyPublic

router = APIRouter(prefix="/properties", tags=["properties"])


def public(prop: Property) -> PropertyPublic:
    return PropertyPublic.model_validate(
        {"id": prop.name, "name": prop.name, "type": prop.type, "created_at": prop.created_at}
    )


@router.get(
    "",
    summary="List properties, ordered by name",
    response_model=PropertyList,
    responses=errors(),
)
def list_properties(
    services: ServicesDep,
    ws: WorkspaceDep,
    limit: Limit = DEFAULT_LIMIT,
    after: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="The previous `next`.")
    ] = None,
) -> PropertyList:
    found = properties.list_all(services.engine, ws, after=after, limit=limit + 1)
    shown, cursor = page(found, limit, lambda prop: prop.name)
    return PropertyList(items=[public(prop) for prop in shown], next=cursor)


@router.post(
    "",
    status_code=201,
    summary="Create a property",
    description="201 with the new property; 200 if it exists with that type already; 409 if "
    "it exists with another type (a property keeps its type).",
    response_model=PropertyPublic,
    responses={200: {"model": PropertyPublic, "description": "It existed already."}, **errors(409)},
)
def create_property(
    body: PropertyCreate, response: Response, services: ServicesDep, ws: WorkspaceDep
) -> PropertyPublic:
    prop, created = properties.create(services.engine, ws, body.name, body.type.value)
    if not created:
        response.status_code = 200
    return public(prop)
