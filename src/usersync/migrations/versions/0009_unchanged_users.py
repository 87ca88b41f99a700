"""A sync may leave the users its file does not change as they are (their `updated_at` too),
and a run counts them.

Revision ID: 0009_unchanged_users
Revises: 0008_ids_never_reused
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_unchanged_users"
down_revision: str | None = "0008_ids_never_reused"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("users_unchanged", sa.BigInteger, nullable=False, server_default="0")
    )
    op.add_column(
        "syncs",
        sa.Column("skip_unchanged_users", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("syncs") as batch:
        batch.drop_column("skip_unchanged_users")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("users_unchanged")
