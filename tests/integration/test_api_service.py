"""The service endpoints on SQLite and on the real PostgreSQL server: GET /metrics, read back
with the Prometheus client's own parser of the text format, and GET /health while the
database holds another schema version or refuses connections."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.apiclient import (
    Api,
    Recorder,
    RunningApp,
    app_on_database,
    connection_body,
    new_workspace,
    ok,
    sync_body,
)
from tests.servers.postgres import PostgresServer
from usersync.migrations import HEAD
from usersync.store import ConflictMode, UserStore, runs

pytestmark = pytest.mark.integration

Key = tuple[str, frozenset[tuple[str, str]]]

ENDED = datetime(2026, 11, 20, 1, 0, 5, tzinfo=UTC)


def scrape(api: Api) -> dict[Key, float]:
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def of(found: dict[Key, float], metric: str, **labels: str) -> float:
    return found[(metric, frozenset(labels.items()))]


def named(found: dict[Key, float], name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (each, labels), value in found.items() if each == name}


def ended_run(
    api: Api,
    sync_id: int | None,
    status: str,
    *,
    dry_run: bool = False,
    finished_at: datetime = ENDED,
    rows: int = 10,
) -> int:
    engine = api.running.engine
    run_id = runs.create_run(
        engine, api.workspace_id, source="s", path="/in/x.csv", sync_id=sync_id, dry_run=dry_run
    )
    runs.finish_run(
        engine,
        run_id,
        status=status,
        bytes_read=100 * rows,
        rows_read=rows,
        users_created=rows - 3,
        users_updated=2,
        rows_rejected=1 if status == "partial" else 0,
        finished_at=finished_at,
    )
    return run_id


def test_an_empty_workspace_has_its_gauges_and_no_counters(api: Api) -> None:
    found = scrape(api)

    assert of(found, "usersync_runs", status="queued") == 0
    assert of(found, "usersync_runs", status="running") == 0
    assert of(found, "usersync_users") == 0
    assert named(found, "usersync_runs_total") == {}
    assert named(found, "usersync_sync_info") == {}
    assert len(named(found, "usersync_build_info")) == 1


def test_metrics_count_the_runs_of_each_sync_and_sum_what_the_imports_applied(api: Api) -> None:
    connection = ok(api.post("/api/connections", json=connection_body()), 201)
    nightly = ok(api.post("/api/syncs", json=sync_body(connection["id"], name='Nightly "EU"')), 201)
    ok(api.post(f"/api/syncs/{nightly['id']}/enable"))
    idle = ok(api.post("/api/syncs", json=sync_body(connection["id"])), 201)
    sync = str(nightly["id"])
    ended_run(api, nightly["id"], "succeeded", rows=10, finished_at=ENDED.replace(day=18))
    ended_run(api, nightly["id"], "partial", rows=20, finished_at=ENDED)
    ended_run(api, nightly["id"], "succeeded", rows=1000, dry_run=True, finished_at=ENDED)
    ended_run(api, nightly["id"], "failed", rows=0, finished_at=ENDED.replace(hour=2))
    ended_run(api, None, "succeeded", rows=5)
    ok(api.post(f"/api/syncs/{idle['id']}/run"), 202)
    UserStore(api.running.engine).apply(
        api.workspace_id, [[("u1", '{"plan": "gold"}'), ("u2", "{}")]], ConflictMode.UPDATE
    )

    found = scrape(api)

    assert named(found, "usersync_runs_total") == {
        frozenset({("sync_id", sync), ("status", "succeeded"), ("dry_run", "false")}): 1,
        frozenset({("sync_id", sync), ("status", "partial"), ("dry_run", "false")}): 1,
        frozenset({("sync_id", sync), ("status", "failed"), ("dry_run", "false")}): 1,
        frozenset({("sync_id", sync), ("status", "succeeded"), ("dry_run", "true")}): 1,
        frozenset({("sync_id", ""), ("status", "succeeded"), ("dry_run", "false")}): 1,
    }
    # The dry run and the failed run applied nothing: 10 + 20 rows from the sync.
    assert of(found, "usersync_rows_read_total", sync_id=sync) == 30
    assert of(found, "usersync_bytes_read_total", sync_id=sync) == 3000
    assert of(found, "usersync_users_created_total", sync_id=sync) == 7 + 17
    assert of(found, "usersync_users_updated_total", sync_id=sync) == 4
    assert of(found, "usersync_rows_rejected_total", sync_id=sync) == 1
    assert of(found, "usersync_rows_read_total", sync_id="") == 5
    assert of(found, "usersync_runs", status="queued") == 1
    assert of(found, "usersync_users") == 2

    assert of(found, "usersync_sync_info", sync_id=sync, name='Nightly "EU"') == 1
    assert of(found, "usersync_sync_enabled", sync_id=sync) == 1
    assert of(found, "usersync_sync_enabled", sync_id=str(idle["id"])) == 0
    next_run = datetime.fromisoformat(ok(api.get(f"/api/syncs/{sync}"))["next_run_at"])
    assert of(found, "usersync_sync_next_run_timestamp_seconds", sync_id=sync) == pytest.approx(
        next_run.timestamp()
    )
    assert named(found, "usersync_sync_next_run_timestamp_seconds").keys() == {
        frozenset({("sync_id", sync)})
    }
    assert of(found, "usersync_sync_last_success_timestamp_seconds", sync_id=sync) == pytest.approx(
        ENDED.timestamp()
    )
    assert named(found, "usersync_sync_last_run_timestamp_seconds") == {
        frozenset({("sync_id", sync), ("status", "failed")}): pytest.approx(
            ENDED.replace(hour=2).timestamp()
        )
    }


def test_a_token_scrapes_only_its_own_workspace(
    running: RunningApp, recorder: Recorder, api: Api
) -> None:
    connection = ok(api.post("/api/connections", json=connection_body()), 201)
    sync = ok(api.post("/api/syncs", json=sync_body(connection["id"])), 201)
    ended_run(api, sync["id"], "succeeded")
    other = Api(running, new_workspace(running.engine).token, recorder)

    found = scrape(other)

    assert named(found, "usersync_runs_total") == {}
    assert named(found, "usersync_sync_info") == {}
    assert named(found, "usersync_rows_read_total") == {}


def test_health_is_503_while_the_database_holds_another_schema_version(
    running: RunningApp,
) -> None:
    healthy = running.client.get("/health")
    assert healthy.status_code == 200
    assert healthy.json() | {"version": "-"} == {
        "status": "ok",
        "version": "-",
        "database": "ok",
        "worker": "off",
    }
    stamp = sa.text("UPDATE alembic_version SET version_num = :version")
    with running.engine.begin() as conn:
        conn.execute(stamp, {"version": "9999_from_the_future"})
    try:
        unhealthy = running.client.get("/health")
    finally:
        with running.engine.begin() as conn:
            conn.execute(stamp, {"version": HEAD})

    assert unhealthy.status_code == 503
    assert unhealthy.json()["status"] == "unavailable"
    assert unhealthy.json()["database"] == (
        f"at schema version 9999_from_the_future, where this usersync needs {HEAD}"
    )
    assert running.client.get("/health").status_code == 200


def test_health_is_503_while_postgresql_refuses_connections_and_200_once_it_takes_them(
    request: pytest.FixtureRequest, postgres: PostgresServer, tmp_path: Path
) -> None:
    with app_on_database("postgresql", tmp_path, request) as running:
        database = running.engine.url.database
        assert running.client.get("/health").status_code == 200
        with psycopg.connect(postgres.conninfo("postgres"), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
            try:
                refused = running.client.get("/health")
            finally:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        back = running.client.get("/health")

    assert refused.status_code == 503
    assert refused.json()["database"] == "not answering"
    assert refused.headers["content-type"] == "application/json"
    assert back.status_code == 200
