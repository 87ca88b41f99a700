"""Alembic migrations of the usersync database, shipped inside the package.

`usersync.db.migrate(engine)` runs them (no alembic.ini needed). To write a new one, copy the
newest file in `versions/`, set `revision` / `down_revision`, and use `op` against both
SQLite and PostgreSQL (`op.batch_alter_table` for ALTERs, which SQLite cannot do in place).
Times are `usersync.schema.UTCDateTime` columns. Then set `HEAD` below to its `revision`.
"""

# The newest revision. `migrate` compares the database's with it before it loads Alembic,
# which takes longer to import than a command takes to run. A test checks it is Alembic's head.
HEAD = "0009_unchanged_users"
