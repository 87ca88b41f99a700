"""Integrations: the connections as cards, "Connect SFTP" (or FTP, FTPS, an S3 bucket) with
the connection test that shows an SFTP server's host key for the user to confirm, editing
and deleting a connection, and each card's "Sync on" toggle."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from usersync.connectivity import TestOutcome, host_key_pending, location_of, test_connection
from usersync.enums import ConnectionKind
from usersync.errors import Conflict, UsageError
from usersync.sources.clientkeys import make_private_key
from usersync.sources.urls import DEFAULT_PORTS
from usersync.store import connections, runs, syncs
from usersync.store._bind import writing
from usersync.store.connections import MAX_CA_PEM, Connection, NewConnection
from usersync.store.runs import Run
from usersync.store.syncs import Sync
from usersync.web.api._common import ResourceId
from usersync.web.deps import Services, ServicesDep
from usersync.web.pages.render import render
from usersync.web.pages.runs import STATUS_LABELS
from usersync.web.pages.session import FormSessionDep, Session, SessionDep

router = APIRouter(prefix="/integrations")

MAX_KEY_BYTES = 64 * 1024  # a private key file is a few KB; anything larger is not one


@dataclass(frozen=True)
class SyncLine:
    """A sync as its connection's card lists it."""

    sync: Sync
    schedule: str  # in words
    last_run: Run | None  # its newest run, if it has run


@dataclass(frozen=True)
class Card:
    connection: Connection
    origin: str
    ready: bool  # may be browsed: its host key is confirmed (or its kind has none)
    syncs: list[SyncLine]

    @property
    def sync_on(self) -> bool:
        """Some sync of it is switched on."""
        return any(line.sync.enabled for line in self.syncs)


def _cards(services: Services, ws: int) -> list[Card]:
    by_connection: dict[int, list[SyncLine]] = {}
    newest = runs.newest_of_syncs(services.engine, ws)
    for sync in syncs.list_all(services.engine, ws):
        line = SyncLine(sync, sync.schedule_words, newest.get(sync.id))
        by_connection.setdefault(sync.connection_id, []).append(line)
    return [
        Card(
            connection=c,
            origin=location_of(c).origin,
            ready=not host_key_pending(c),
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
        status_labels=STATUS_LABELS,
        connected=names.get(connected or 0),
        saved=names.get(saved or 0),
    )


def _connect_page(
    request: Request,
    session: Session,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
    *,
    editing: Connection | None = None,
) -> HTMLResponse:
    """The Connect form, or with `editing` the form that changes that connection."""
    return render(
        request,
        "connect.html",
        status,
        session=session,
        values=values,
        errors=errors or {},
        editing=editing,
    )


@router.get("/new", response_class=HTMLResponse, include_in_schema=False)
def connect_form(
    request: Request,
    session: SessionDep,
    kind: Annotated[str, Query(max_length=10)] = "sftp",
) -> HTMLResponse:
    chosen = kind if kind in KINDS else "sftp"
    return _connect_page(request, session, {"kind": chosen, "port": "", "auth": "password"})


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


KINDS = tuple(kind.value for kind in ConnectionKind)
# How an SFTP connection logs in: a password, a private key given, or a key pair usersync makes.
AUTHS = ("password", "key", "generate")
TLS_KINDS = frozenset({ConnectionKind.FTPS.value, ConnectionKind.S3.value})


@dataclass(frozen=True)
class ConnectForm:
    """The Connect form as submitted (the secrets apart from what is shown again). For s3,
    host is the bucket, username the access key id and password the secret access key."""

    values: dict[str, str]
    password: str
    key_text: str | None
    key_error: str | None
    key_passphrase: str
    ca_pem: str | None = None
    ca_error: str | None = None

    @property
    def kind(self) -> str:
        return self.values["kind"]

    def port(self) -> int | None:
        """The port given, or None for the kind's usual one."""
        return int(self.values["port"]) if self.values["port"] else None

    def options(self) -> dict[str, str] | None:
        given: dict[str, str] = {}
        if self.kind == ConnectionKind.S3:
            given = {k: self.values[k] for k in ("endpoint_url", "region") if self.values[k]}
        if self.ca_pem is not None and self.kind in TLS_KINDS:
            given["ca_pem"] = self.ca_pem
        return given or None


async def _connect_form(
    kind: Annotated[str, Form(max_length=10)] = "sftp",
    name: Annotated[str, Form(max_length=1000)] = "",
    host: Annotated[str, Form(max_length=1000)] = "",
    port: Annotated[str, Form(max_length=10)] = "",
    username: Annotated[str, Form(max_length=1000)] = "",
    auth: Annotated[str, Form(max_length=10)] = "password",
    password: Annotated[str, Form(max_length=4096)] = "",
    private_key: Annotated[UploadFile | None, File()] = None,
    key_passphrase: Annotated[str, Form(max_length=4096)] = "",
    bucket: Annotated[str, Form(max_length=1000)] = "",
    access_key_id: Annotated[str, Form(max_length=1000)] = "",
    secret_access_key: Annotated[str, Form(max_length=4096)] = "",
    endpoint_url: Annotated[str, Form(max_length=4000)] = "",
    region: Annotated[str, Form(max_length=1000)] = "",
    ca_certificate: Annotated[UploadFile | None, File()] = None,
) -> ConnectForm:
    """The form's fields (a dependency of the routes that take it). An s3 bucket has fields
    of its own: the bucket is kept as the host, the access key id as the user name and the
    secret access key as the password."""
    kind = kind if kind in KINDS else "sftp"
    s3 = kind == ConnectionKind.S3
    if s3:
        host, username, password = bucket, access_key_id, secret_access_key
    values = {
        "kind": kind,
        "name": name.strip(),
        "host": host.strip(),
        "port": "" if s3 else port.strip(),
        "username": username.strip(),
        "auth": auth if kind == ConnectionKind.SFTP and auth in AUTHS else "password",
        "endpoint_url": endpoint_url.strip(),
        "region": region.strip(),
        "bucket": bucket.strip(),
        "access_key_id": access_key_id.strip(),
    }
    key_text, key_error = await _read_key(private_key if values["auth"] == "key" else None)
    ca_pem, ca_error = await _read_ca(ca_certificate if kind in TLS_KINDS else None)
    return ConnectForm(values, password, key_text, key_error, key_passphrase, ca_pem, ca_error)


async def _read_ca(upload: UploadFile | None) -> tuple[str | None, str | None]:
    """(the CA certificate's PEM text, or an error) from the uploaded file, if any."""
    if upload is None or not upload.filename:
        return None, None
    raw = await upload.read(MAX_CA_PEM + 1)
    try:
        return connections.check_ca_pem(raw.decode("utf-8")), None
    except (UnicodeDecodeError, UsageError):
        return None, (
            "This is not a certificate in PEM form (-----BEGIN CERTIFICATE-----): choose the "
            "certificate authority's .pem or .crt file."
        )


ConnectFormDep = Annotated[ConnectForm, Depends(_connect_form)]


# The longest value each field takes (the form's inputs say so too, with maxlength).
FIELD_LIMITS = {"name": 200, "host": 255, "username": 200, "endpoint_url": 2000, "region": 64}

# The s3 form's own names for the fields a connection keeps as host, username and password.
S3_FIELDS = {"host": "bucket", "username": "access_key_id", "password": "secret_access_key"}


def _form_errors(form: ConnectForm, stored: Connection | None = None) -> dict[str, str]:
    """What the form lacks, by field name. Editing (`stored`), an empty secret keeps the
    stored one of the same kind."""
    values = form.values
    s3 = form.kind == ConnectionKind.S3
    errors: dict[str, str] = {}
    if not values["host"]:
        errors["host"] = (
            "Enter the bucket's name." if s3 else "Enter the server's host name or IP address."
        )
    port = values["port"]
    if port and (not port.isdigit() or not 1 <= int(port) <= 65535):
        errors["port"] = (
            "Enter a port number between 1 and 65535, or leave it empty "
            f"for {DEFAULT_PORTS.get(form.kind, 22)}."
        )
    if not values["username"]:
        errors["username"] = (
            "Enter the access key ID." if s3 else "Enter the user name to log in with."
        )
    for field, limit in FIELD_LIMITS.items():
        if len(values[field]) > limit and field not in errors:
            errors[field] = f"At most {limit} characters; this has {len(values[field])}."
    endpoint = values["endpoint_url"]
    if s3 and endpoint and not endpoint.startswith(("http://", "https://")):
        errors["endpoint_url"] = "Give an http:// or https:// URL, or leave it empty for AWS."
    keeps_password = stored is not None and stored.has_password
    keeps_key = stored is not None and stored.has_private_key
    if values["auth"] == "password" and not form.password and not keeps_password:
        errors["password"] = "Enter the secret access key." if s3 else "Enter the password."
    if values["auth"] == "key":
        if form.key_error:
            errors["private_key"] = form.key_error
        elif form.key_text is None and not keeps_key:
            errors["private_key"] = "Choose the private key file to log in with."
    if form.ca_error:
        errors["ca_certificate"] = form.ca_error
    if errors and values["auth"] == "password" and form.password and "password" not in errors:
        errors["password"] = "For your safety, enter it again."
    if s3:
        return {S3_FIELDS.get(field, field): message for field, message in errors.items()}
    return errors


def _secrets(form: ConnectForm, name: str) -> dict[str, str | None]:
    """The secrets the form gives (none given: the stored ones stay); a key pair made for the
    connection `name`, if the form asks for one."""
    if form.values["auth"] == "generate":
        made = make_private_key(name)
        return {"private_key": made, "key_passphrase": None, "password": None}
    if form.values["auth"] == "password":
        return {"password": form.password, "private_key": None} if form.password else {}
    if form.key_text is None:
        return {}
    return {
        "private_key": form.key_text,
        "key_passphrase": form.key_passphrase or None,
        "password": None,
    }


def _default_name(form: ConnectForm) -> str:
    values = form.values
    if form.kind == ConnectionKind.S3:
        return f"s3://{values['host']}"[: FIELD_LIMITS["name"]]
    return f"{values['username']}@{values['host']}"[: FIELD_LIMITS["name"]]


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
    name = values["name"] or _default_name(form)
    secrets = _secrets(form, name)
    new = NewConnection(
        name=name,
        kind=form.kind,
        host=values["host"],
        port=form.port(),
        username=values["username"],
        options=form.options(),
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


def _edited_options(
    stored: Connection, form: ConnectForm, forget_ca: bool
) -> dict[str, object] | None:
    """The stored options with the edit form's changes, or None if it changes none: an s3
    form's empty endpoint and region clear them; a chosen CA file replaces the stored one,
    which `forget_ca` otherwise drops."""
    if stored.kind not in TLS_KINDS:
        return None
    edits: dict[str, object] = {}
    if stored.kind == ConnectionKind.S3:
        edits = {"endpoint_url": None, "region": None}
    if forget_ca:
        edits["ca_pem"] = None
    edits.update(form.options() or {})
    return {**stored.options, **edits} if edits else None


@router.get("/{connection_id}/edit", response_class=HTMLResponse, include_in_schema=False)
def edit_form(
    request: Request, connection_id: ResourceId, services: ServicesDep, session: SessionDep
) -> HTMLResponse:
    connection = connections.get(services.engine, services.box, session.workspace_id, connection_id)
    values = {
        "name": connection.name,
        "host": connection.host,
        "kind": connection.kind,
        "port": "" if connection.kind == ConnectionKind.S3 else str(connection.port),
        "bucket": connection.host,
        "access_key_id": connection.username,
        "endpoint_url": str(connection.options.get("endpoint_url") or ""),
        "region": str(connection.options.get("region") or ""),
        "username": connection.username,
        "auth": "key" if connection.has_private_key else "password",
    }
    return _connect_page(request, session, values, editing=connection)


@router.post("/{connection_id}", response_class=HTMLResponse, include_in_schema=False)
def save(
    request: Request,
    connection_id: ResourceId,
    services: ServicesDep,
    session: FormSessionDep,
    form: ConnectFormDep,
    forget_ca: Annotated[bool, Form()] = False,
) -> Response:
    """Save the changes; a new host or port is tested again (its host key confirmed anew), and
    so is a new user name, password or key."""
    ws = session.workspace_id
    stored = connections.get(services.engine, services.box, ws, connection_id)
    if form.kind != stored.kind:  # a connection keeps its kind
        form = dataclasses.replace(form, values={**form.values, "kind": stored.kind})
    values = form.values
    errors = _form_errors(form, stored)
    if errors:
        return _connect_page(request, session, values, errors, 422, editing=stored)
    name = values["name"] or _default_name(form)
    secrets = _secrets(form, name)
    changes: dict[str, object] = {
        "name": name,
        "host": values["host"],
        "port": form.port() or DEFAULT_PORTS.get(stored.kind, stored.port),
        "username": values["username"],
        **secrets,
    }
    options = _edited_options(stored, form, forget_ca)
    if options is not None:
        changes["options"] = options
    try:
        saved = connections.update(services.engine, services.box, ws, connection_id, changes)
    except Conflict as error:
        return _connect_page(request, session, values, {"name": error.message}, 409, editing=stored)
    except UsageError as error:
        return _connect_page(request, session, values, {"form": error.message}, 422, editing=stored)
    login_changed = bool(secrets) or values["username"] != stored.username
    if host_key_pending(saved) or login_changed:
        # A new server is tested to confirm its key; a new login, to see that it works.
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
    with writing(services.engine) as conn:  # all of them, or none
        connections.get(conn, services.box, ws, connection_id)  # 404 if not ours
        for sync in syncs.list_all(conn, ws):
            if sync.connection_id == connection_id and sync.enabled:
                syncs.set_enabled(conn, ws, sync.id, False)
    return RedirectResponse("/integrations", status_code=303)
