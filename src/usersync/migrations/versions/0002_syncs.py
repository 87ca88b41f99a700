"""Syncs and the worker: API tokens, connections, syncs, claimed fire times, run scheduling.

Revision ID: 0002_syncs
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from usersync.schema import UTCDateTime

revision = "0002_syncs"
down_revision: str | None = "0001_initial"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies: a later change of usersync.schema must come with a migration of its own.
CONNECTION_KINDS = ("sftp",)
FILE_CHOICES = ("exact", "newest", "all_new")
AFTER_IMPORT = ("leave", "move", "delete")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=f"fk_{table}_workspace_id_workspaces",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("timezone", sa.String(64), nullable=True))
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, sa.Identity(), nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_tokens_token_hash"),
        _workspace_fk("tokens"),
    )
    op.create_table(
        "connections",
        sa.Column("id", sa.Integer, sa.Identity(), nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("secrets", sa.Text, nullable=True),
        sa.Column("host_key_fingerprint", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_connections"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_connections_workspace_id_name"),
        _workspace_fk("connections"),
        sa.CheckConstraint(_one_of("kind", CONNECTION_KINDS), name="ck_connections_kind"),
    )
    op.create_table(
        "syncs",
        sa.Column("id", sa.Integer, sa.Identity(), nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("connection_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("folder", sa.Text, nullable=False),
        sa.Column("file", sa.Text, nullable=True),
        sa.Column("file_choice", sa.String(16), nullable=False),
        sa.Column("mapping", sa.JSON, nullable=False),
        sa.Column("conflict", sa.String(16), nullable=False),
        sa.Column("empty_cells", sa.String(16), nullable=False),
        sa.Column("encoding", sa.String(64), nullable=True),
        sa.Column("delimiter", sa.String(8), nullable=True),
        sa.Column("max_rejected", sa.BigInteger, nullable=True),
        sa.Column("schedule", sa.JSON, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("next_run_at", UTCDateTime(), nullable=True),
        sa.Column("import_unchanged", sa.Boolean, nullable=False),
        sa.Column("after_import", sa.String(16), nullable=False),
        sa.Column("move_to", sa.Text, nullable=True),
        sa.Column("webhook_url", sa.Text, nullable=True),
        sa.Column("webhook_on", sa.String(16), nullable=True),
        sa.Column("webhook_secret", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_syncs"),
        _workspace_fk("syncs"),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connections.id"], name="fk_syncs_connection_id_connections"
        ),
        sa.CheckConstraint(_one_of("file_choice", FILE_CHOICES), name="ck_syncs_file_choice"),
        sa.CheckConstraint(_one_of("after_import", AFTER_IMPORT), name="ck_syncs_after_import"),
    )
    op.create_index("ix_syncs_workspace_id_id", "syncs", ["workspace_id", "id"])
    op.create_index("ix_syncs_enabled_next_run_at", "syncs", ["enabled", "next_run_at"])
    op.create_table(
        "fires",
        sa.Column("sync_id", sa.Integer, nullable=False),
        sa.Column("scheduled_for", UTCDateTime(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sync_id", "scheduled_for", name="pk_fires"),
        sa.ForeignKeyConstraint(
            ["sync_id"], ["syncs.id"], name="fk_fires_sync_id_syncs", ondelete="CASCADE"
        ),
    )
    # Plain ADD COLUMNs (no table rebuild on SQLite): NOT NULL ones carry a server default.
    op.add_column("runs", sa.Column("trigger", sa.String(16), nullable=False, server_default="cli"))
    op.add_column("runs", sa.Column("scheduled_for", UTCDateTime(), nullable=True))
    op.add_column("runs", sa.Column("attempt", sa.Integer, nullable=False, server_default="1"))
    op.add_column("runs", sa.Column("not_before", UTCDateTime(), nullable=True))
    op.add_column("runs", sa.Column("worker", sa.Text, nullable=True))
    op.add_column("runs", sa.Column("lease_expires_at", UTCDateTime(), nullable=True))
    op.add_column("runs", sa.Column("file_sha256", sa.String(64), nullable=True))
    op.create_index("ix_runs_status_not_before", "runs", ["status", "not_before"])
    running = sa.text("status = 'running' AND sync_id IS NOT NULL")
    op.create_index(
        "uq_runs_one_running_per_sync",
        "runs",
        ["sync_id"],
        unique=True,
        sqlite_where=running,
        postgresql_where=running,
    )


def downgrade() -> None:
    op.drop_index("uq_runs_one_running_per_sync", "runs")
    op.drop_index("ix_runs_status_not_before", "runs")
    with op.batch_alter_table("runs") as batch:
        for column in (
            "file_sha256",
            "lease_expires_at",
            "worker",
            "not_before",
            "attempt",
            "scheduled_for",
            "trigger",
        ):
            batch.drop_column(column)
    for table in ("fires", "syncs", "connections", "tokens"):
        op.drop_table(table)
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("timezone")
