"""What the REST API takes and gives, as pydantic models: separate Create / Update / Public
models per resource, so a response is never a table row and never holds a secret.

Secrets (password, private_key, key_passphrase, webhook_secret) appear only in Create and
Update models, as `SecretStr` (its repr is masked); a Public model says only whether one is set.
Update models take just the fields to change: a field left out keeps its value, and only
fields that may be empty accept null.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    StringConstraints,
    field_validator,
)

from usersync.enums import AfterImport, ConnectionKind, FileChoice, PropertyType
from usersync.mapping import EmptyCells
from usersync.store import syncs
from usersync.store.connections import MAX_CA_PEM
from usersync.store.model import ConflictMode

MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database
MAX_COUNT = 2**63 - 1

# Text that a database column holds: PostgreSQL text cannot hold NUL characters. The errors
# module puts a mismatch of these patterns in words.
NO_NUL = r"^[^\x00]*$"
ABSOLUTE_PATH = r"^/[^\x00]*$"  # a path on a server, as the API takes it
MAX_TEXT = 4096  # characters of a text field (a folder, a URL...) the API takes
Text = Annotated[str, StringConstraints(pattern=NO_NUL, max_length=MAX_TEXT)]
Name = Annotated[str, StringConstraints(pattern=NO_NUL, min_length=1, max_length=200)]
Host = Annotated[str, StringConstraints(pattern=NO_NUL, min_length=1, max_length=255)]
Fingerprint = Annotated[str, StringConstraints(pattern=r"^[^\x00\s]+$", max_length=200)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Port = Annotated[int, Field(ge=1, le=65535)]
Timestamp = Annotated[datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str)]


# Longer than any password or private key (an RSA key of 16,384 bits is about 12 KB): each
# is decrypted whenever its connection is read, so a secret of megabytes would slow them all.
MAX_SECRET = 64 * 1024


def _text(value: object) -> object:
    """A secret is text that can be sent to a server (no lone surrogates), of a sane size."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
        if len(value) > MAX_SECRET:
            raise ValueError(f"at most {MAX_SECRET:,} characters; this has {len(value):,}")
    return value


Secret = Annotated[SecretStr, BeforeValidator(_text)]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def optional(**constraints: Any) -> Any:
    """A field an update may leave out (keeping the current value). Its type says whether it
    may also be null; the schema shows no default, as there is none to show."""
    return Field(default=None, json_schema_extra=_no_default, **constraints)


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """No field holds a NUL character, at any depth (a mapping's names too): PostgreSQL
        text cannot store one, and no file name, encoding or column has one."""
        if _has_nul(value):
            raise ValueError("must not contain a NUL character (\\u0000)")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def reveal(model: Input, *, exclude_unset: bool) -> dict[str, Any]:
    """The model's fields for the store: JSON-ready values, secrets in clear text."""
    values = model.model_dump(mode="json", exclude_unset=exclude_unset)
    for name in values:
        secret = getattr(model, name)
        if isinstance(secret, SecretStr):
            values[name] = secret.get_secret_value()
    return values


# --- errors -------------------------------------------------------------------------------


class FieldProblem(BaseModel):
    field: str = Field(description='The field at fault, e.g. "mapping.user_id" or "limit".')
    in_: str = Field(alias="in", description="body, query, path or header.")
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(description='What went wrong, in snake_case, e.g. "sync_not_found".')
    message: str = Field(description="What went wrong and how to fix it, for people.")
    fields: list[FieldProblem] | None = Field(
        default=None, description="For invalid_request: each field at fault."
    )
    fingerprint: str | None = Field(
        default=None, description="For host key errors: the key the server offered."
    )


class ErrorResponse(BaseModel):
    error: ErrorDetail


# --- connections --------------------------------------------------------------------------


class ConnectionOptions(Input):
    """Per kind: s3 takes endpoint_url, region, path_style; ftps and s3 take verify_tls and
    ca_pem."""

    endpoint_url: str | None = Field(
        default=None, max_length=2000, description="s3: the service's URL (default: AWS)."
    )
    region: str | None = Field(default=None, max_length=64, description="s3: e.g. eu-west-1.")
    path_style: bool | None = Field(default=None, description="s3: bucket in the path.")
    verify_tls: bool | None = Field(
        default=None, description="ftps, s3: false turns certificate checks off (unsafe)."
    )
    ca_pem: str | None = Field(
        default=None,
        max_length=MAX_CA_PEM,
        description="ftps, s3: the PEM certificate(s) of a private certificate authority to "
        "trust instead of the system's.",
    )


class ConnectionCreate(Input):
    name: Name
    kind: ConnectionKind = ConnectionKind.SFTP
    host: Host = Field(description="The server; for s3, the bucket.")
    port: Port | None = Field(default=None, description="Default: 22 sftp, 21 ftp/ftps.")
    username: Host = Field(description="The login; for s3, the access key id.")
    password: Secret | None = None
    private_key: Secret | None = Field(default=None, description="OpenSSH or PEM private key.")
    key_passphrase: Secret | None = None
    generate_key: bool = Field(
        default=False,
        description="sftp: usersync makes an ed25519 key pair to log in with, instead of a "
        "private_key; give the answer's public_key to the server's administrator, for the "
        "account's ~/.ssh/authorized_keys.",
    )
    options: ConnectionOptions | None = None
    host_key_fingerprint: Fingerprint | None = Field(
        default=None,
        description="SHA256:... of the server's host key. Leave it out, test the connection "
        "to see the key the server offers, then confirm it with PATCH.",
    )


class ConnectionUpdate(Input):
    name: Name = optional()
    kind: ConnectionKind = optional()
    host: Host = optional()
    port: Port = optional()
    username: Host = optional()
    password: Secret | None = optional(description='null or "" removes it.')
    private_key: Secret | None = optional(description='null or "" removes it.')
    key_passphrase: Secret | None = optional(description='null or "" removes it.')
    generate_key: bool = optional(
        description="true: a new ed25519 key pair that usersync makes replaces the private key "
        "(its public_key is in the answer)."
    )
    options: ConnectionOptions | None = optional()
    host_key_fingerprint: Fingerprint | None = optional(
        description="Confirms the server's host key (as the test showed it); null forgets it."
    )


class ConnectionPublic(Output):
    id: int
    name: str
    kind: str
    host: str
    port: int
    username: str
    host_key_fingerprint: str | None
    options: dict[str, Any]
    has_password: bool
    has_private_key: bool
    public_key: str | None = Field(
        description="sftp: the OpenSSH public key of the private key, for the account's "
        "~/.ssh/authorized_keys on the server (not a secret); null without a key."
    )
    created_at: Timestamp
    updated_at: Timestamp


class ConnectionList(BaseModel):
    items: list[ConnectionPublic]
    next: int | None


class ConnectionTest(BaseModel):
    ok: bool = Field(description="Logged in and listed the root folder.")
    host_key_fingerprint: str | None = Field(description="The host key the server offered.")
    message: str
    confirmed: bool = Field(description="Whether that key is the connection's confirmed one.")


class Folder(BaseModel):
    name: str
    path: str


class FolderListing(BaseModel):
    path: str
    folders: list[Folder]


class RemoteFile(BaseModel):
    name: str
    path: str
    size: int | None
    modified: str | None = Field(description="ISO 8601, UTC.")


class HiddenFile(BaseModel):
    name: str
    path: str
    size: int | None
    reason: str = Field(
        description="not_csv, bad_prefix, too_large, not_a_regular_file or name_not_utf8."
    )


class FileListing(BaseModel):
    path: str
    files: list[RemoteFile]
    hidden: list[HiddenFile]


class RowProblem(BaseModel):
    line: int | None
    column: str | None
    value: str | None
    message: str


class FilePreview(BaseModel):
    path: str
    columns: list[str]
    rows: list[list[str]]
    errors: list[RowProblem] = Field(description="Rows of the head that cannot be read.")


# --- syncs --------------------------------------------------------------------------------

Schedule = dict[str, Any] | Annotated[str, StringConstraints(max_length=200)]
WebhookOn = Literal["failure", "always"]
_SCHEDULE = (
    'A schedule object such as {"type": "daily", "time": "01:00"} (see the contract), or a '
    "cron expression."
)


class MappingSpec(Input):
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="The column that holds the userId."
    )
    properties: dict[str, str] = Field(
        default_factory=dict, description="PROPERTY: COLUMN for each mapped property."
    )
    types: dict[str, PropertyType] = Field(
        default_factory=dict,
        description="PROPERTY: TYPE; a property left out keeps its catalog type, else string.",
    )


def _default(name: str) -> Any:
    """A new sync's default, as the store has it (the schema shows it)."""
    return syncs.DEFAULTS[name]


_SKIP_UNCHANGED = (
    "Leave a user that the file does not change as it is, its updated_at too, and count it "
    "in the run's users_unchanged rather than users_updated (default false: every user the "
    "file names is written)."
)


class SyncCreate(Input):
    connection_id: Id
    name: Name | None = None
    folder: Text = Field(description="Absolute folder path, e.g. /in.")
    file: Text | None = Field(
        default=None, description="A userdata_*.csv name inside folder (file_choice exact)."
    )
    file_choice: FileChoice = FileChoice(_default("file_choice"))
    mapping: MappingSpec
    conflict: ConflictMode = ConflictMode(_default("conflict"))
    empty_cells: EmptyCells = EmptyCells(_default("empty_cells"))
    encoding: Annotated[str, StringConstraints(max_length=64)] | None = None
    delimiter: Annotated[str, StringConstraints(max_length=8)] | None = Field(
        default=None, description='One character, or "tab"; default ",".'
    )
    max_rejected: Annotated[int, Field(ge=0, le=MAX_COUNT)] | None = None
    schedule: Schedule = Field(
        default_factory=lambda: dict(_default("schedule")), description=_SCHEDULE
    )
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="IANA zone; default: the schedule's, the workspace's, UTC."
    )
    enabled: bool = _default("enabled")
    import_unchanged: bool = _default("import_unchanged")
    skip_unchanged_users: bool = Field(
        default=_default("skip_unchanged_users"), description=_SKIP_UNCHANGED
    )
    after_import: AfterImport = AfterImport(_default("after_import"))
    move_to: Text | None = None
    webhook_url: Text | None = None
    webhook_on: WebhookOn | None = Field(
        default=None, description="When to call webhook_url: failure (the default) or always."
    )
    webhook_secret: Secret | None = Field(
        default=None, description="Signs each call to webhook_url (which it needs)."
    )


class SyncUpdate(Input):
    connection_id: Id = optional()
    name: Name | None = optional()
    folder: Text = optional()
    file: Text | None = optional()
    file_choice: FileChoice = optional()
    mapping: MappingSpec = optional()
    conflict: ConflictMode = optional()
    empty_cells: EmptyCells = optional()
    encoding: Annotated[str, StringConstraints(max_length=64)] | None = optional()
    delimiter: Annotated[str, StringConstraints(max_length=8)] | None = optional()
    max_rejected: Annotated[int, Field(ge=0, le=MAX_COUNT)] | None = optional()
    schedule: Schedule = optional(description=_SCHEDULE)
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = optional()
    enabled: bool = optional()
    import_unchanged: bool = optional()
    skip_unchanged_users: bool = optional(description=_SKIP_UNCHANGED)
    after_import: AfterImport = optional()
    move_to: Text | None = optional()
    webhook_url: Text | None = optional(description="null removes the webhook and its secret.")
    webhook_on: WebhookOn | None = optional()
    webhook_secret: Secret | None = optional(description='null or "" removes it.')


class SyncPublic(Output):
    id: int
    connection_id: int
    name: str | None
    folder: str
    file: str | None
    path: str | None = Field(description="folder/file, when a file is named.")
    file_choice: str
    mapping: dict[str, Any]
    conflict: str
    empty_cells: str
    encoding: str | None
    delimiter: str | None
    max_rejected: int | None
    schedule: dict[str, Any]
    schedule_description: str
    timezone: str
    enabled: bool
    next_run_at: Timestamp | None
    import_unchanged: bool
    skip_unchanged_users: bool
    after_import: str
    move_to: str | None
    webhook_url: str | None
    webhook_on: str | None
    has_webhook_secret: bool
    created_at: Timestamp
    updated_at: Timestamp


class SyncList(BaseModel):
    items: list[SyncPublic]
    next: int | None


class RunStarted(BaseModel):
    run_id: int


class ScheduleTimes(BaseModel):
    description: str
    timezone: str
    next: list[str] = Field(description="ISO 8601 with the zone's offset, ascending.")


# --- runs ---------------------------------------------------------------------------------


class RunPublic(Output):
    id: int
    sync_id: int | None
    status: str = Field(description="queued, running, succeeded, partial, failed or skipped.")
    trigger: str
    source: str
    path: str
    started_at: Timestamp
    finished_at: Timestamp | None
    bytes_read: int
    file_size: int | None = Field(description="The total to read, once the run knows it.")
    progress: float | None = Field(description="bytes_read / file_size, 0 to 1, when known.")
    rows_read: int
    users_created: int
    users_updated: int
    users_unchanged: int = Field(
        description="Existing users the file left as they were, when the run skipped them "
        "(skip_unchanged_users); otherwise these are among users_updated."
    )
    rows_rejected: int
    message: str | None
    attempt: int
    scheduled_for: Timestamp | None
    dry_run: bool
    errors_deleted_at: Timestamp | None = Field(
        description="When its rejected rows were deleted, to keep those of newer runs "
        "(USERSYNC_KEEP_REJECTED_RUNS); its counts stay."
    )
    webhook_delivery: str | None = Field(
        description="What the sync's webhook answered when told of this run (\"answered "
        '204", "could not be reached: ..."); null when no call was made.'
    )
    cancel_requested_at: Timestamp | None = Field(
        description="When someone asked to cancel the run (POST /api/runs/{id}/cancel)."
    )


class RunDetail(RunPublic):
    errors: list[RowProblem] = Field(description="The first 100 rejected rows.")
    errors_url: str = Field(description="All the rejected rows, as CSV.")


class RunList(BaseModel):
    items: list[RunPublic]
    next: int | None


# --- users and properties -----------------------------------------------------------------


class UserPublic(BaseModel):
    id: str
    user_id: str
    properties: dict[str, Any]
    created_at: Timestamp
    updated_at: Timestamp


class UserList(BaseModel):
    items: list[UserPublic]
    next: str | None


class PropertyCreate(Input):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    type: PropertyType = PropertyType.STRING


class PropertyPublic(BaseModel):
    id: str = Field(description="The property's name.")
    name: str
    type: PropertyType
    created_at: Timestamp


class PropertyList(BaseModel):
    items: list[PropertyPublic]
    next: str | None


_WORKSPACE_ZONE = (
    "IANA zone: the one a sync given no time zone is in, and the web UI's (UTC unless set)."
)


class WorkspacePublic(BaseModel):
    id: int
    name: str
    timezone: str = Field(description=_WORKSPACE_ZONE)
    created_at: Timestamp


class WorkspaceUpdate(Input):
    timezone: Annotated[str, StringConstraints(max_length=64)] = optional(
        description=_WORKSPACE_ZONE
    )


class Health(BaseModel):
    status: Literal["ok", "unavailable"] = Field(
        description='"unavailable" (with HTTP 503) when the database or the worker is not "ok".'
    )
    version: str
    database: str = Field(description='"ok", or what is wrong with it in a few words.')
    worker: str = Field(
        description='The worker of this server: "running", "stopped", or "off" when it runs '
        "apart (`usersync worker`)."
    )
