"""Connections to FTP, FTPS and S3-compatible stores: widen the connections' kind check.

Revision ID: 0003_more_kinds
Revises: 0002_syncs
"""

from __future__ import annotations

from alembic import op

revision = "0003_more_kinds"
down_revision: str | None = "0002_syncs"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies: a later change of usersync.schema must come with a migration of its own.
OLD_KINDS = ("sftp",)
NEW_KINDS = ("sftp", "ftp", "ftps", "s3")
# 0002 named its check "ck_connections_kind", and the naming convention prefixed it once more;
# from here on it has the name usersync.schema declares.
OLD_NAME = "ck_connections_ck_connections_kind"
NEW_NAME = "ck_connections_kind"


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _replace_kind_check(old_name: str, new_name: str, kinds: tuple[str, ...]) -> None:
    # SQLite cannot alter a CHECK in place: batch mode copies the table (PostgreSQL alters it).
    # op.f(): these names are final, not to be run through the naming convention again.
    with op.batch_alter_table("connections") as batch:
        batch.drop_constraint(op.f(old_name), type_="check")
        batch.create_check_constraint(op.f(new_name), _one_of("kind", kinds))


def upgrade() -> None:
    _replace_kind_check(OLD_NAME, NEW_NAME, NEW_KINDS)


def downgrade() -> None:
    # Fails, changing nothing, while connections of the new kinds exist: delete them first.
    _replace_kind_check(NEW_NAME, OLD_NAME, OLD_KINDS)
