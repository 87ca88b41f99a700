"""The tables usersync keeps, as SQLAlchemy Core metadata (the Alembic migrations create them).

    workspaces   one per tenant; `name` is unique ("default" for the CLI)
    tokens       API tokens: only a SHA-256 of each is kept; one workspace each
    connections  integration accounts (SFTP, ...): secrets encrypted (usersync.secretbox)
    syncs        what to import from where, how and when; `next_run_at` is the next fire time
    fires        one row per (sync, fire time) that was claimed: each fire time runs once
    properties   a workspace's property catalog: name -> type
    users        the User 360 store: one JSON document of properties per (workspace, userId)
    runs         one row per execution of an import, with its counts
    run_errors   the rejected rows of a run (line, column, value, message), in file order

Times are aware datetimes in UTC everywhere, through `UTCDateTime`: PostgreSQL stores
`timestamptz`; SQLite stores INTEGER microseconds since the Unix epoch (compact: the users
table holds two per user, and ordered: comparisons and ORDER BY work). On SQLite, always
compare time columns with bound `datetime` values through these Core columns (never with
CURRENT_TIMESTAMP or ISO text in raw SQL): `datetime(col / 1e6, 'unixepoch')` shows one.

`users` has no foreign key to `workspaces`: on PostgreSQL the per-row check costs about as
much as the insert itself on a 1.65 M-row import (measured: 12 s instead of 7 s). Deleting a
workspace must delete its users explicitly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from usersync.enums import (
    AfterImport,
    ConnectionKind,
    FileChoice,
    PropertyType,
    RunStatus,
    RunTrigger,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (integer arithmetic); `value` must be aware."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: give a time zone (UTC)")
    return (value - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An aware datetime stored in UTC: `timestamptz` on PostgreSQL, INTEGER µs on SQLite."""

    impl = sa.BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(sa.BigInteger())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> object:
        if value is None:
            return None
        if dialect.name == "postgresql":
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value.isoformat()}: give a time zone (UTC)")
            return value.astimezone(UTC)
        return to_micros(value)

    def process_result_value(self, value: object, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int):
            return from_micros(value)
        raise TypeError(f"unexpected stored time {value!r}")


# The values a property's type and a run's status may take. Callers pass their own StrEnums
# (usersync.mapping.PropertyType, usersync.importer.RunStatus): these tuples are what the
# database accepts, and the initial migration's CHECK constraints hold a copy of them.
PROPERTY_TYPES = tuple(kind.value for kind in PropertyType)
RUN_STATUSES = tuple(status.value for status in RunStatus)
CONNECTION_KINDS = tuple(kind.value for kind in ConnectionKind)
FILE_CHOICES = tuple(choice.value for choice in FileChoice)
AFTER_IMPORT = tuple(action.value for action in AfterImport)
RUN_TRIGGERS = tuple(trigger.value for trigger in RunTrigger)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


# Stable constraint names: Alembic's batch mode (SQLite ALTER) needs named constraints.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# user_id sorts and compares bytewise on both dialects: the same order for paging cursors,
# and PostgreSQL's "C" collation makes the B-tree and the merge's sort much cheaper.
UserIdText = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
JsonDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("timezone", sa.String(64), nullable=True),  # schedules' default zone (else UTC)
    sqlite_autoincrement=True,  # no id is handed out twice (migration 0008)
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column(
        "workspace_id",
        sa.Integer,
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 hex
    sa.Column("prefix", sa.String(16), nullable=False),  # the first characters, to tell apart
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sqlite_autoincrement=True,  # no id is handed out twice (migration 0008)
)

connections = sa.Table(
    "connections",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column(
        "workspace_id",
        sa.Integer,
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("secrets", sa.Text, nullable=True),  # encrypted JSON: password, private_key, ...
    sa.Column("host_key_fingerprint", sa.Text, nullable=True),
    sa.Column("options", sa.JSON, nullable=True),  # per kind: endpoint_url, region, ...
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("updated_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.CheckConstraint(_one_of("kind", CONNECTION_KINDS), name="kind"),
    sa.UniqueConstraint("workspace_id", "name"),
    sqlite_autoincrement=True,  # no id is handed out twice (migration 0008)
)

syncs = sa.Table(
    "syncs",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column(
        "workspace_id",
        sa.Integer,
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("connection_id", sa.Integer, sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("folder", sa.Text, nullable=False),
    sa.Column("file", sa.Text, nullable=True),  # a name in `folder`; required for "exact"
    sa.Column("file_choice", sa.String(16), nullable=False),
    sa.Column("mapping", sa.JSON, nullable=False),  # {"user_id", "properties", "types"}
    sa.Column("conflict", sa.String(16), nullable=False),
    sa.Column("empty_cells", sa.String(16), nullable=False),
    sa.Column("encoding", sa.String(64), nullable=True),
    sa.Column("delimiter", sa.String(8), nullable=True),
    sa.Column("max_rejected", sa.BigInteger, nullable=True),
    sa.Column("schedule", sa.JSON, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("next_run_at", UTCDateTime(), nullable=True),
    sa.Column("import_unchanged", sa.Boolean, nullable=False),  # import even if unchanged
    # Added by 0009: users the file leaves as they are are not written.
    sa.Column("skip_unchanged_users", sa.Boolean, nullable=False, default=False),
    sa.Column("after_import", sa.String(16), nullable=False),
    sa.Column("move_to", sa.Text, nullable=True),
    sa.Column("webhook_url", sa.Text, nullable=True),
    sa.Column("webhook_on", sa.String(16), nullable=True),  # "failure" | "always"
    sa.Column("webhook_secret", sa.Text, nullable=True),  # encrypted
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("updated_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.CheckConstraint(_one_of("file_choice", FILE_CHOICES), name="file_choice"),
    sa.CheckConstraint(_one_of("after_import", AFTER_IMPORT), name="after_import"),
    sa.Index(None, "workspace_id", "id"),
    sa.Index(None, "enabled", "next_run_at"),
    sqlite_autoincrement=True,  # no id is handed out twice (migration 0008)
)

fires = sa.Table(
    "fires",
    metadata,
    sa.Column(
        "sync_id", sa.Integer, sa.ForeignKey("syncs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("scheduled_for", UTCDateTime(), primary_key=True),
    sa.Column("claimed_at", UTCDateTime(), nullable=False, default=utcnow),
)

properties = sa.Table(
    "properties",
    metadata,
    sa.Column(
        "workspace_id",
        sa.Integer,
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.CheckConstraint(_one_of("type", PROPERTY_TYPES), name="type"),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("workspace_id", sa.Integer, primary_key=True),
    sa.Column("user_id", UserIdText, primary_key=True),
    sa.Column("properties", JsonDocument, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The rows live in the primary-key B-tree itself: one tree to update instead of two.
    sqlite_with_rowid=False,
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column(
        "workspace_id",
        sa.Integer,
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("sync_id", sa.Integer, nullable=True),  # a foreign key once syncs exist
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("bytes_read", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_read", sa.BigInteger, nullable=False, default=0),
    sa.Column("users_created", sa.BigInteger, nullable=False, default=0),
    sa.Column("users_updated", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_rejected", sa.BigInteger, nullable=False, default=0),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("file_size", sa.BigInteger, nullable=True),
    sa.Column("file_modified", UTCDateTime(), nullable=True),
    sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
    # Added by 0002 for syncs run by workers:
    sa.Column("trigger", sa.String(16), nullable=False, default="cli"),
    sa.Column("scheduled_for", UTCDateTime(), nullable=True),  # the fire time it runs
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("not_before", UTCDateTime(), nullable=True),  # a queued retry waits until then
    sa.Column("worker", sa.Text, nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("file_sha256", sa.String(64), nullable=True),
    # Added by 0005: when its rejected rows were deleted, to keep those of newer runs.
    sa.Column("errors_deleted_at", UTCDateTime(), nullable=True),
    # Added by 0006: what became of the call to its sync's webhook ("answered 204"), if any.
    sa.Column("webhook_delivery", sa.Text, nullable=True),
    # Added by 0007: when someone asked to cancel it (its worker then stops it).
    sa.Column("cancel_requested_at", UTCDateTime(), nullable=True),
    # Added by 0009: users the file left as they were (when its sync skips them).
    sa.Column("users_unchanged", sa.BigInteger, nullable=False, default=0),
    sa.CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
    sa.Index(None, "workspace_id", "id"),
    sa.Index(None, "sync_id", "id"),
    sa.Index(None, "status", "not_before"),
    # One running run per sync, whatever the workers do.
    sa.Index(
        "uq_runs_one_running_per_sync",
        "sync_id",
        unique=True,
        sqlite_where=sa.text("status = 'running' AND sync_id IS NOT NULL"),
        postgresql_where=sa.text("status = 'running' AND sync_id IS NOT NULL"),
    ),
    sqlite_autoincrement=True,  # no id is handed out twice (migration 0008)
)

run_errors = sa.Table(
    "run_errors",
    metadata,
    sa.Column(
        "run_id",
        sa.Integer,
        sa.ForeignKey("runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("line", sa.BigInteger, nullable=True),
    sa.Column("column", sa.Text, nullable=True),
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
)
