"""SQLite hands out no id twice: a deleted sync's id (its runs still carry it) never names a
new sync, and the same for connections, runs, tokens and workspaces.

SQLite gives a new row the largest id plus one, so deleting the newest sync gave its id to
the next one, which then inherited the old sync's runs (and their "file unchanged" skips).
AUTOINCREMENT keeps the largest id ever used; a table takes it only when it is created, so
each table is rebuilt (`db.migrate` turns foreign keys off meanwhile, as SQLite's procedure
for schema changes says, and checks them before committing). PostgreSQL's identity columns
never reuse an id: nothing to do there.

Revision ID: 0008_ids_never_reused
Revises: 0007_cancel_requested
"""

from __future__ import annotations

from alembic import op

revision = "0008_ids_never_reused"
down_revision: str | None = "0007_cancel_requested"
branch_labels: str | None = None
depends_on: str | None = None

TABLES = ("workspaces", "tokens", "connections", "syncs", "runs")


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
