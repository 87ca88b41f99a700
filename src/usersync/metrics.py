"""A workspace's figures in Prometheus' text format, for `GET /metrics`.

    text = render(collect(engine, workspace_id))

Everything is read from the database at each scrape, so every `usersync serve` of a
scaled-out setup answers the same, and nothing is lost when one restarts. Counters add up
the runs that have ended; dry runs apply nothing, so only `usersync_runs_total` counts them
(label `dry_run="true"`). Runs of `usersync import` belong to no sync: their `sync_id` label
is empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from usersync import __version__
from usersync.enums import RunStatus
from usersync.schema import runs, syncs, users
from usersync.store._bind import Bind, reading
from usersync.store.runs import newest_of_syncs

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]

_ENDED = (RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.FAILED, RunStatus.SKIPPED)
_APPLIED = (RunStatus.SUCCEEDED, RunStatus.PARTIAL)
_WAITING = (RunStatus.QUEUED, RunStatus.RUNNING)
# Per-sync sums over the runs that applied something: (metric, help, runs column).
_SUMS = (
    ("usersync_bytes_read_total", "Bytes read by imports.", runs.c.bytes_read),
    ("usersync_rows_read_total", "Data rows read by imports.", runs.c.rows_read),
    ("usersync_users_created_total", "Users created by imports.", runs.c.users_created),
    ("usersync_users_updated_total", "Existing users updated by imports.", runs.c.users_updated),
    (
        "usersync_users_unchanged_total",
        "Existing users that imports skipping unchanged users left as they were.",
        runs.c.users_unchanged,
    ),
    ("usersync_rows_rejected_total", "Rows rejected by imports.", runs.c.rows_rejected),
)


@dataclass
class Family:
    """One metric: its name, type, help text and samples."""

    name: str
    kind: str  # "counter" or "gauge"
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((tuple(labels.items()), value))


def collect(bind: Bind, workspace_id: int) -> list[Family]:
    """The workspace's metrics, read in one go."""
    with reading(bind) as conn:
        return [
            _info(),
            _run_counts(conn, workspace_id),
            *_run_sums(conn, workspace_id),
            _waiting(conn, workspace_id),
            *_syncs(conn, workspace_id),
            _users(conn, workspace_id),
        ]


def render(families: Iterable[Family]) -> str:
    """Prometheus' text exposition format, version 0.0.4."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            lines.append(f"{family.name}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


def _info() -> Family:
    family = Family("usersync_build_info", "gauge", "The usersync version serving these figures.")
    family.add(1, version=__version__)
    return family


def _sync_label(sync_id: int | None) -> str:
    return "" if sync_id is None else str(sync_id)


def _run_counts(conn: sa.Connection, ws: int) -> Family:
    family = Family(
        "usersync_runs_total", "counter", "Runs that have ended, by sync, status and dry run."
    )
    query = (
        sa.select(runs.c.sync_id, runs.c.status, runs.c.dry_run, sa.func.count())
        .where(runs.c.workspace_id == ws, runs.c.status.in_(_ENDED))
        .group_by(runs.c.sync_id, runs.c.status, runs.c.dry_run)
        .order_by(runs.c.sync_id, runs.c.status, runs.c.dry_run)
    )
    for sync_id, status, dry_run, count in conn.execute(query):
        family.add(
            count,
            sync_id=_sync_label(sync_id),
            status=status,
            dry_run="true" if dry_run else "false",
        )
    return family


def _run_sums(conn: sa.Connection, ws: int) -> list[Family]:
    families = [Family(name, "counter", text) for name, text, _ in _SUMS]
    query = (
        sa.select(runs.c.sync_id, *(sa.func.sum(column) for _, _, column in _SUMS))
        .where(runs.c.workspace_id == ws, runs.c.status.in_(_APPLIED), runs.c.dry_run.is_(False))
        .group_by(runs.c.sync_id)
        .order_by(runs.c.sync_id)
    )
    for sync_id, *sums in conn.execute(query):
        for family, total in zip(families, sums, strict=True):
            family.add(total or 0, sync_id=_sync_label(sync_id))
    return families


def _waiting(conn: sa.Connection, ws: int) -> Family:
    family = Family("usersync_runs", "gauge", "Runs queued and running now.")
    query = (
        sa.select(runs.c.status, sa.func.count())
        .where(runs.c.workspace_id == ws, runs.c.status.in_(_WAITING))
        .group_by(runs.c.status)
    )
    counts: dict[str, int] = dict(conn.execute(query).all())
    for status in _WAITING:
        family.add(counts.get(status, 0), status=status)
    return family


def _syncs(conn: sa.Connection, ws: int) -> Sequence[Family]:
    info = Family("usersync_sync_info", "gauge", "Each sync, by id, with its name.")
    enabled = Family("usersync_sync_enabled", "gauge", "1 if the sync is switched on, else 0.")
    upcoming = Family(
        "usersync_sync_next_run_timestamp_seconds",
        "gauge",
        "When a switched-on sync runs next (Unix time).",
    )
    success = Family(
        "usersync_sync_last_success_timestamp_seconds",
        "gauge",
        "When the sync's last import that applied its file ended (Unix time).",
    )
    last = Family(
        "usersync_sync_last_run_timestamp_seconds",
        "gauge",
        "When the sync's newest run ended (Unix time), labelled with its status.",
    )
    found = conn.execute(
        sa.select(syncs.c.id, syncs.c.name, syncs.c.enabled, syncs.c.next_run_at)
        .where(syncs.c.workspace_id == ws)
        .order_by(syncs.c.id)
    ).all()
    last_successes = (
        sa.select(runs.c.sync_id, sa.func.max(runs.c.finished_at))
        .where(
            runs.c.workspace_id == ws,
            runs.c.sync_id.is_not(None),
            runs.c.status.in_(_APPLIED),
            runs.c.dry_run.is_(False),
        )
        .group_by(runs.c.sync_id)
    )
    succeeded = dict(conn.execute(last_successes).all())
    newest = newest_of_syncs(conn, ws)
    for sync_id, name, on, next_run_at in found:
        label = str(sync_id)
        info.add(1, sync_id=label, name=name or "")
        enabled.add(1 if on else 0, sync_id=label)
        if on and next_run_at is not None:
            upcoming.add(next_run_at.timestamp(), sync_id=label)
        if (ended := succeeded.get(sync_id)) is not None:
            success.add(ended.timestamp(), sync_id=label)
        run = newest.get(sync_id)
        if run is not None and run.finished_at is not None:
            last.add(run.finished_at.timestamp(), sync_id=label, status=run.status)
    return info, enabled, upcoming, success, last


def _users(conn: sa.Connection, ws: int) -> Family:
    family = Family("usersync_users", "gauge", "Users in the User 360 store.")
    family.add(conn.scalar(sa.select(sa.func.count()).where(users.c.workspace_id == ws)) or 0)
    return family


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{name}="{_escape_value(value)}"' for name, value in labels)
    return "{" + inner + "}"


def _escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
