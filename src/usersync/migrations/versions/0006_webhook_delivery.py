"""A run whose sync has a webhook records what became of the call: "answered 204", say.

Revision ID: 0006_webhook_delivery
Revises: 0005_errors_deleted
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_webhook_delivery"
down_revision: str | None = "0005_errors_deleted"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("webhook_delivery", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("webhook_delivery")
