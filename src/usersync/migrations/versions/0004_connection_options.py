"""Connection options: what a kind of store needs besides host, port and user (an S3
endpoint, region and addressing style; whether TLS certificates are checked).

Revision ID: 0004_connection_options
Revises: 0003_more_kinds
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_connection_options"
down_revision: str | None = "0003_more_kinds"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("connections", sa.Column("options", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("options")
