"""The User 360 store and the small repositories around it.

    store = UserStore(engine)
    counts = store.apply(workspace_id, batches, ConflictMode.UPDATE)   # all or nothing
    store.get_user(workspace_id, "u-1"); store.list_users(workspace_id, after="u-1")
    store.require_user(workspace_id, "u-1")                  # or UserNotFound

    workspaces.get_or_create(engine, "default") -> id
    properties.types(engine, ws) / properties.ensure(engine, ws, {"age": "integer"})
    runs.create_run / finish_run / add_run_errors / get_run / list_runs / iter_run_errors /
        delete_old_errors

The bulk apply has one back end per dialect (`_sqlite_apply`, `_postgres_apply`), chosen by
the engine; both stage the changes in a TEMP table and merge them with set-based SQL.
"""

from usersync.store import properties, runs, workspaces
from usersync.store.model import (
    ApplyCounts,
    Change,
    ConflictMode,
    StoreError,
    UserChange,
    UserRecord,
)
from usersync.store.users import UserNotFound, UserStore

__all__ = [
    "ApplyCounts",
    "Change",
    "ConflictMode",
    "StoreError",
    "UserChange",
    "UserNotFound",
    "UserRecord",
    "UserStore",
    "properties",
    "runs",
    "workspaces",
]
