"""A run that someone asked to cancel says when: its worker stops it and applies nothing.

Revision ID: 0007_cancel_requested
Revises: 0006_webhook_delivery
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from usersync.schema import UTCDateTime

revision = "0007_cancel_requested"
down_revision: str | None = "0006_webhook_delivery"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("cancel_requested_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cancel_requested_at")
