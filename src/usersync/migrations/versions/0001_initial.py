"""Initial schema: workspaces, the property catalog, the users store, runs and their errors.

Revision ID: 0001_initial
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from usersync.schema import UTCDateTime

revision = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies: a later change of usersync.schema must come with a migration of its own.
PROPERTY_TYPES = ("string", "number", "integer", "boolean", "date", "datetime")
RUN_STATUSES = ("queued", "running", "succeeded", "partial", "failed", "skipped")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer, sa.Identity(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workspaces"),
        sa.UniqueConstraint("name", name="uq_workspaces_name"),
    )
    op.create_table(
        "properties",
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "name", name="pk_properties"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_properties_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(_one_of("type", PROPERTY_TYPES), name="ck_properties_type"),
    )
    op.create_table(
        "users",
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column(
            "user_id",
            sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "properties",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "user_id", name="pk_users"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, sa.Identity(), nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("sync_id", sa.Integer, nullable=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("bytes_read", sa.BigInteger, nullable=False),
        sa.Column("rows_read", sa.BigInteger, nullable=False),
        sa.Column("users_created", sa.BigInteger, nullable=False),
        sa.Column("users_updated", sa.BigInteger, nullable=False),
        sa.Column("rows_rejected", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("file_size", sa.BigInteger, nullable=True),
        sa.Column("file_modified", UTCDateTime(), nullable=True),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_runs_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(_one_of("status", RUN_STATUSES), name="ck_runs_status"),
    )
    op.create_index("ix_runs_workspace_id_id", "runs", ["workspace_id", "id"])
    op.create_index("ix_runs_sync_id_id", "runs", ["sync_id", "id"])
    op.create_table(
        "run_errors",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("line", sa.BigInteger, nullable=True),
        sa.Column("column", sa.Text, nullable=True),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_run_errors"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_errors_run_id_runs", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    for table in ("run_errors", "runs", "users", "properties", "workspaces"):
        op.drop_table(table)
