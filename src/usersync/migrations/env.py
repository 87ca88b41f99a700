"""Alembic's environment: runs the migrations on the connection `usersync.db.migrate` passes.

`migrate` opens the transaction (and takes the migration lock) itself, so that concurrent
processes starting up against one database migrate it once, one after the other.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from usersync.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run the usersync migrations with usersync.db.migrate(engine)")
_run(connection)
