"""Alembic migrations of the usersync database, shipped inside the package.

`usersync.db.migrate(engine)` runs them (no alembic.ini needed). To write a new one, copy the
newest file in `versions/`, set `revision` / `down_revision`, and use `op` against both
SQLite and PostgreSQL (`op.batch_alter_table` for ALTERs, which SQLite cannot do in place).
Times are `usersync.schema.UTCDateTime` columns.
"""
