"""Rejected rows are kept for each sync's newest runs: a run whose rows were deleted says when.

Revision ID: 0005_errors_deleted
Revises: 0004_connection_options
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from usersync.schema import UTCDateTime

revision = "0005_errors_deleted"
down_revision: str | None = "0004_connection_options"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("errors_deleted_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("errors_deleted_at")
