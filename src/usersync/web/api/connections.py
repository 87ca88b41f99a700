"""Connections (integration accounts): CRUD, the connection test that shows the server's host
key, and browsing (folders, files, preview) once that key is confirmed."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from usersync.browse import (
    PREVIEW_ROWS,
    files_document,
    folders_document,
    list_files,
    list_folders,
    preview_document,
    preview_file,
)
from usersync.connectivity import test_connection
from usersync.enums import ConnectionKind
from usersync.errors import UsageError
from usersync.reader import CsvOptions, named_delimiter
from usersync.sources.clientkeys import make_private_key
from usersync.store import connections
from usersync.store.connections import NewConnection
from usersync.web.api._common import (
    DEFAULT_LIMIT,
    Limit,
    RemotePath,
    ResourceId,
    errors,
    page,
)
from usersync.web.auth import WorkspaceDep
from usersync.web.deps import ServicesDep
from usersync.web.schemas import (
    MAX_ID,
    NO_NUL,
    ConnectionCreate,
    ConnectionList,
    ConnectionPublic,
    ConnectionTest,
    ConnectionUpdate,
    FileListing,
    FilePreview,
    FolderListing,
    reveal,
)

router = APIRouter(prefix="/connections", tags=["connections"])

_REMOTE = errors(404, 409, 502, 504)


@router.get("", summary="List connections", response_model=ConnectionList, responses=errors())
def list_connections(
    services: ServicesDep,
    ws: WorkspaceDep,
    limit: Limit = DEFAULT_LIMIT,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description="The previous `next`.")] = None,
) -> ConnectionList:
    found = [
        c
        for c in connections.list_all(services.engine, services.box, ws)
        if after is None or c.id > after
    ]
    shown, cursor = page(found[: limit + 1], limit, lambda c: c.id)
    return ConnectionList(items=[ConnectionPublic.model_validate(c) for c in shown], next=cursor)


@router.post(
    "",
    status_code=201,
    summary="Create a connection",
    response_model=ConnectionPublic,
    responses=errors(409),
)
def create_connection(
    body: ConnectionCreate,
    request: Request,
    response: Response,
    services: ServicesDep,
    ws: WorkspaceDep,
) -> ConnectionPublic:
    values = with_made_key(reveal(body, exclude_unset=False), body.name, body.kind)
    created = connections.create(services.engine, services.box, ws, NewConnection(**values))
    response.headers["Location"] = str(request.url_for("get_connection", connection_id=created.id))
    return ConnectionPublic.model_validate(created)


def with_made_key(values: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    """`values` without `generate_key`, and when it is true, with a private key that usersync
    makes (see usersync.sources.clientkeys) for the connection `name` of `kind`."""
    if not values.pop("generate_key", False):
        return values
    if kind != ConnectionKind.SFTP:
        raise UsageError(f"generate_key: {kind} connections log in with a password, not a key")
    if values.get("private_key"):
        raise UsageError("give either private_key or generate_key, not both")
    return {**values, "private_key": make_private_key(name), "key_passphrase": None}


@router.get(
    "/{connection_id}",
    summary="Get a connection",
    response_model=ConnectionPublic,
    responses=errors(404),
)
def get_connection(
    connection_id: ResourceId, services: ServicesDep, ws: WorkspaceDep
) -> ConnectionPublic:
    found = connections.get(services.engine, services.box, ws, connection_id)
    return ConnectionPublic.model_validate(found)


@router.patch(
    "/{connection_id}",
    summary="Change a connection, or confirm its host key",
    description="Send only the fields to change. `host_key_fingerprint` confirms the key the "
    "test showed; changing host or port forgets a confirmed key.",
    response_model=ConnectionPublic,
    responses=errors(404, 409),
)
def update_connection(
    connection_id: ResourceId, body: ConnectionUpdate, services: ServicesDep, ws: WorkspaceDep
) -> ConnectionPublic:
    changes = reveal(body, exclude_unset=True)
    if changes.get("generate_key"):
        stored = connections.get(services.engine, services.box, ws, connection_id)
        name, kind = changes.get("name") or stored.name, changes.get("kind") or stored.kind
        changes = with_made_key(changes, name, kind)
    changes.pop("generate_key", None)
    updated = connections.update(services.engine, services.box, ws, connection_id, changes)
    return ConnectionPublic.model_validate(updated)


@router.delete(
    "/{connection_id}",
    status_code=204,
    summary="Delete a connection",
    description="Refused (409) while a sync uses it.",
    responses=errors(404, 409),
)
def delete_connection(
    connection_id: ResourceId, services: ServicesDep, ws: WorkspaceDep
) -> Response:
    connections.delete(services.engine, ws, connection_id)
    return Response(status_code=204)


@router.post(
    "/{connection_id}/test",
    summary="Test a connection",
    description="Connects and returns the server's host key fingerprint. Until that key is "
    "confirmed (PATCH host_key_fingerprint) no password or key is sent; once it is, the test "
    "logs in and lists the root folder. A failed test is an answer, not an error: see `ok`.",
    response_model=ConnectionTest,
    responses=errors(404),
)
def test(connection_id: ResourceId, services: ServicesDep, ws: WorkspaceDep) -> ConnectionTest:
    outcome = test_connection(services.settings, services.engine, services.box, ws, connection_id)
    return ConnectionTest.model_validate(outcome, from_attributes=True)


@router.get(
    "/{connection_id}/folders",
    summary="List the folders in a folder",
    description="As `usersync folders --json`. 409 until the host key is confirmed.",
    response_model=FolderListing,
    responses=_REMOTE,
)
def folders(
    connection_id: ResourceId, services: ServicesDep, ws: WorkspaceDep, path: RemotePath = "/"
) -> FolderListing:
    with services.connect(ws, connection_id) as source:
        listing = list_folders(source, path)
    return FolderListing.model_validate(folders_document(listing))


@router.get(
    "/{connection_id}/files",
    summary="List the importable files in a folder",
    description="As `usersync files --json`: the eligible userdata_*.csv files, and the "
    "hidden ones with the reason. 409 until the host key is confirmed.",
    response_model=FileListing,
    responses=_REMOTE,
)
def files(
    connection_id: ResourceId, services: ServicesDep, ws: WorkspaceDep, path: RemotePath = "/"
) -> FileListing:
    with services.connect(ws, connection_id) as source:
        listing = list_files(source, path, services.settings.max_file_size)
    return FileListing.model_validate(files_document(listing))


@router.get(
    "/{connection_id}/preview",
    summary="Preview a file",
    description="As `usersync preview --json`: the header and the first rows, read from the "
    "head of the file only. 409 until the host key is confirmed.",
    response_model=FilePreview,
    responses=_REMOTE,
)
def preview(
    connection_id: ResourceId,
    services: ServicesDep,
    ws: WorkspaceDep,
    path: RemotePath,
    rows: Annotated[int, Query(ge=1, le=1000)] = PREVIEW_ROWS,
    encoding: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    delimiter: Annotated[
        Literal[",", ";", "|", "tab"] | None, Query(description="Default ,.")
    ] = None,
) -> FilePreview:
    options = CsvOptions(encoding=encoding or None, delimiter=named_delimiter(delimiter or ","))
    with services.connect(ws, connection_id) as source:
        result = preview_file(
            source, path, options, rows=rows, max_size=services.settings.max_file_size
        )
    return FilePreview.model_validate(preview_document(path, result))
