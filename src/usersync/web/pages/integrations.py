"""Integrations: the connections as cards, "Connect SFTP" with the connection test that shows
the server's host key for the user to confirm, and each card's "Sync on" toggle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from usersync.connectivity import TestOutcome, location_of, needs_host_key, test_connection
from usersync.errors import Conflict, UsageError
from usersync.schedule import parse_schedule
from usersync.store import connections, syncs
from usersync.store._bind import writing
from usersync.store.connections import Connection, NewConnection
from usersync.store.syncs import Sync
from usersync.web.api._common import ResourceId
from usersync.web.deps import Services, ServicesDep
from usersync.web.pages.render import render
from usersync.web.pages.session import FormSessionDep, Session, SessionDep

router = APIRouter(prefix="/integrations")

MAX_KEY_BYTES = 64 * 1024  # a private key file is a few KB; anything larger is not one


@dataclass(frozen=True)
class Card:
    connection: Connection
    origin: str
    ready: bool  # may be browsed: its host key is confirmed (or its kind has none)
    syncs: list[tuple[Sync, str]]  # its syncs, each with its schedule in words

    @property
    def sync_on(self) -> bool:
        """Some sync of it is switched on."""
        return any(sync.enabled for sync, _ in self.syncs)


def _cards(services: Services, ws: int) -> list[Card]:
    by_connection: dict[int, list[tuple[Sync, str]]] = {}
    for sync in syncs.list_all(services.engine, ws):
        described = parse_schedule(sync.schedule).describe()
        by_connection.setdefault(sync.connection_id, []).append((sync, described))
    return [
        Card(
            connection=c,
            origin=location_of(c).origin,
            ready=bool(c.host_key_fingerprint) or not needs_host_key(c),
            syncs=by_connection.get(c.id, []),
        )
        for c in connections.list_all(services.engine, services.box, ws)
    ]


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def integrations(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    connected: Annotated[int | None, Query(ge=1)] = None,
    saved: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    cards = _cards(services, session.workspace_id)
    names = {c.connection.id: c.connection.name for c in cards}
    return render(
        request,
        "integrations.html",
        session=session,
        cards=cards,
        connected=names.get(connected or 0),
        saved=names.get(saved or 0),
    )


def _connect_page(
    request: Request,
    session: Session,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request, "connect.html", status, session=session, values=values, errors=errors or {}
    )


@router.get("/new", response_class=HTMLResponse, include_in_schema=False)
def connect_form(request: Request, session: SessionDep) -> HTMLResponse:
    return _connect_page(request, session, {"port": "22", "auth": "password"})


async def _read_key(upload: UploadFile | None) -> tuple[str | None, str | None]:
    """(the key's text, or an error) from the uploaded key file, if any."""
    if upload is None or not upload.filename:
        return None, None
    raw = await upload.read(MAX_KEY_BYTES + 1)
    if len(raw) > MAX_KEY_BYTES:
        return None, "This file is too large to be a private key: choose the key file."
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "This is not a private key file (OpenSSH or PEM format)."
    if "PRIVATE KEY" not in text:
        return None, "This is not a private key file (OpenSSH or PEM format)."
    return text, None


@dataclass(frozen=True)
class ConnectForm:
    """The Connect SFTP form as submitted (the secrets apart from what is shown again)."""

    values: dict[str, str]
    password: str
    key_text: str | None
    key_error: str | None
    key_passphrase: str


async def _connect_form(
    name: Annotated[str, Form(max_length=200)] = "",
    host: Annotated[str, Form(max_length=255)] = "",
    port: Annotated[str, Form(max_length=10)] = "22",
    username: Annotated[str, Form(max_length=200)] = "",
    auth: Annotated[str, Form(max_length=10)] = "password",
    password: Annotated[str, Form(max_length=4096)] = "",
    private_key: Annotated[UploadFile | None, File()] = None,
    key_passphrase: Annotated[str, Form(max_length=4096)] = "",
) -> ConnectForm:
    """The form's fields (a dependency of the routes that take it)."""
    values = {
        "name": name.strip(),
        "host": host.strip(),
        "port": port.strip(),
        "username": username.strip(),
        "auth": auth if auth in ("password", "key") else "password",
    }
    key_text, key_error = await _read_key(private_key)
    return ConnectForm(values, password, key_text, key_error, key_passphrase)


ConnectFormDep = Annotated[ConnectForm, Depends(_connect_form)]


def _form_errors(form: ConnectForm, stored: Connection | None = None) -> dict[str, str]:
    """What the form lacks. Editing (`stored`), an empty secret keeps the stored one of the
    same kind."""
    values = form.values
    errors: dict[str, str] = {}
    if not values["host"]:
        errors["host"] = "Enter the server's host name or IP address."
    if not values["port"].isdigit() or not 1 <= int(values["port"]) <= 65535:
        errors["port"] = "Enter a port number between 1 and 65535 (SFTP usually uses 22)."
    if not values["username"]:
        errors["username"] = "Enter the user name to log in with."
    keeps_password = stored is not None and stored.has_password
    keeps_key = stored is not None and stored.has_private_key
    if values["auth"] == "password" and not form.password and not keeps_password:
        errors["password"] = "Enter the password."
    if values["auth"] == "key":
        if form.key_error:
            errors["private_key"] = form.key_error
        elif form.key_text is None and not keeps_key:
            errors["private_key"] = "Choose the private key file to log in with."
    if errors and values["auth"] == "password" and form.password and "password" not in errors:
        errors["password"] = "For your safety, enter the password again."
    return errors


def _secrets(form: ConnectForm) -> dict[str, str | None]:
    """The secrets the form gives (none given: the stored ones stay)."""
    if form.values["auth"] == "password":
        return {"password": form.password, "private_key": None} if form.password else {}
    if form.key_text is None:
        return {}
    return {
        "private_key": form.key_text,
        "key_passphrase": form.key_passphrase or None,
        "password": None,
    }


@router.post("", response_class=HTMLResponse, include_in_schema=False)
def connect(
    request: Request,
    services: ServicesDep,
    session: FormSessionDep,
    form: ConnectFormDep,
) -> Response:
    """Save the connection (its host key unconfirmed), then show its test."""
    values = form.values
    errors = _form_errors(form)
    if errors:
        return _connect_page(request, session, values, errors, 422)
    secrets = _secrets(form)
    new = NewConnection(
        name=values["name"] or f"{values['username']}@{values['host']}",
        host=values["host"],
        port=int(values["port"]),
        username=values["username"],
        password=secrets.get("password"),
        private_key=secrets.get("private_key"),
        key_passphrase=secrets.get("key_passphrase"),
    )
    try:
        created = connections.create(services.engine, services.box, session.workspace_id, new)
    except Conflict as error:  # the name is in use
        return _connect_page(request, session, values, {"name": error.message}, 409)
    except UsageError as error:
        return _connect_page(request, session, values, {"form": error.message}, 422)
    return RedirectResponse(f"/integrations/{created.id}/verify", status_code=303)


def _edit_page(
    request: Request,
    session: Session,
    connection: Connection,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "connect.html",
        status,
        session=session,
        values=values,
        errors=errors or {},
        editing=connection,
    )


@router.get("/{connection_id}/edit", response_class=HTMLResponse, include_in_schema=False)
def edit_form(
    request: Request, connection_id: ResourceId, services: ServicesDep, session: SessionDep
) -> HTMLResponse:
    connection = connections.get(services.engine, services.box, session.workspace_id, connection_id)
    values = {
        "name": connection.name,
        "host": connection.host,
        "port": str(connection.port),
        "username": connection.username,
        "auth": "key" if connection.has_private_key else "password",
    }
    return _edit_page(request, session, connection, values)


@router.post("/{connection_id}", response_class=HTMLResponse, include_in_schema=False)
def save(
    request: Request,
    connection_id: ResourceId,
    services: ServicesDep,
    session: FormSessionDep,
    form: ConnectFormDep,
) -> Response:
    """Save the changes; a new host or port is tested again (its host key confirmed anew)."""
    ws = session.workspace_id
    stored = connections.get(services.engine, services.box, ws, connection_id)
    values = form.values
    errors = _form_errors(form, stored)
    if errors:
        return _edit_page(request, session, stored, values, errors, 422)
    changes: dict[str, object] = {
        "name": values["name"] or f"{values['username']}@{values['host']}",
        "host": values["host"],
        "port": int(values["port"]),
        "username": values["username"],
        **_secrets(form),
    }
    try:
        saved = connections.update(services.engine, services.box, ws, connection_id, changes)
    except Conflict as error:
        return _edit_page(request, session, stored, values, {"name": error.message}, 409)
    except UsageError as error:
        return _edit_page(request, session, stored, values, {"form": error.message}, 422)
    if needs_host_key(saved) and not saved.host_key_fingerprint:
        return RedirectResponse(f"/integrations/{connection_id}/verify", status_code=303)
    return RedirectResponse(f"/integrations?saved={connection_id}", status_code=303)


def _verify_page(
    request: Request,
    services: Services,
    session: Session,
    connection_id: int,
    outcome: TestOutcome | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The connection and its test: `outcome` if it was just tested, else a new test."""
    ws = session.workspace_id
    connection = connections.get(services.engine, services.box, ws, connection_id)
    if outcome is None:
        outcome = test_connection(
            services.settings, services.engine, services.box, ws, connection_id
        )
    return render(
        request,
        "verify.html",
        status,
        session=session,
        connection=connection,
        origin=location_of(connection).origin,
        outcome=outcome,
    )


@router.get("/{connection_id}/verify", response_class=HTMLResponse, include_in_schema=False)
def verify(
    request: Request, connection_id: ResourceId, services: ServicesDep, session: SessionDep
) -> HTMLResponse:
    """Test the connection: before its host key is confirmed, this shows the key."""
    return _verify_page(request, services, session, connection_id)


@router.post("/{connection_id}/confirm", include_in_schema=False)
def confirm(
    request: Request,
    connection_id: ResourceId,
    services: ServicesDep,
    session: FormSessionDep,
    fingerprint: Annotated[str, Form(min_length=1, max_length=200)],
) -> Response:
    """Trust the host key the user was shown, then log in with it."""
    ws = session.workspace_id
    connections.update(
        services.engine, services.box, ws, connection_id, {"host_key_fingerprint": fingerprint}
    )
    outcome = test_connection(services.settings, services.engine, services.box, ws, connection_id)
    if not outcome.ok:
        return _verify_page(request, services, session, connection_id, outcome, 422)
    return RedirectResponse(f"/integrations?connected={connection_id}", status_code=303)


@router.post("/{connection_id}/delete", include_in_schema=False)
def delete(connection_id: ResourceId, services: ServicesDep, session: FormSessionDep) -> Response:
    """The connection and its syncs, in one transaction (their past runs stay on record)."""
    ws = session.workspace_id
    with writing(services.engine) as conn:
        for sync in syncs.list_all(conn, ws):
            if sync.connection_id == connection_id:
                syncs.delete(conn, ws, sync.id)
        connections.delete(conn, ws, connection_id)
    return RedirectResponse("/integrations", status_code=303)


@router.post("/{connection_id}/sync-off", include_in_schema=False)
def sync_off(connection_id: ResourceId, services: ServicesDep, session: FormSessionDep) -> Response:
    """The toggle turned off: every sync of the connection stops running."""
    ws = session.workspace_id
    connections.get(services.engine, services.box, ws, connection_id)  # 404 if not ours
    for sync in syncs.list_all(services.engine, ws):
        if sync.connection_id == connection_id and sync.enabled:
            syncs.set_enabled(services.engine, ws, sync.id, False)
    return RedirectResponse("/integrations", status_code=303)
