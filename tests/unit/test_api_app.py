"""The app factory: nothing happens until the app starts; starting opens the database and
the worker, stopping closes them; the OpenAPI document describes every operation."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.apiclient import TestClient, api_settings
from usersync.web.app import create_app


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "usersync-worker"]


def test_building_the_app_touches_nothing(tmp_path: Path) -> None:
    settings = api_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'u.db'}")

    app = create_app(settings)

    assert app.openapi()["info"]["title"] == "usersync"
    assert not (tmp_path / "data").exists()
    assert workers() == []


def test_starting_opens_the_database_and_the_worker_and_stopping_ends_them(
    tmp_path: Path,
) -> None:
    database = tmp_path / "u.db"
    app = create_app(api_settings(tmp_path, f"sqlite:///{database}"), run_worker=True)

    with TestClient(app) as client:
        assert client.get("/health").json()["status"] == "ok"
        assert database.exists()
        assert len(workers()) == 1
        assert "usersync" in client.get("/").text

    assert workers() == []
    assert not hasattr(app.state, "services")


def test_health_is_503_once_the_servers_worker_has_stopped(tmp_path: Path) -> None:
    app = create_app(api_settings(tmp_path, f"sqlite:///{tmp_path / 'u.db'}"), run_worker=True)

    with TestClient(app) as client:
        running = client.get("/health")
        app.state.worker.stop()
        stopped = client.get("/health")

    assert (running.status_code, running.json()["worker"]) == (200, "running")
    assert stopped.status_code == 503
    assert stopped.json() | {"version": "-"} == {
        "status": "unavailable",
        "version": "-",
        "database": "ok",
        "worker": "stopped",
    }


def test_the_app_can_run_without_its_worker(tmp_path: Path) -> None:
    app = create_app(api_settings(tmp_path, f"sqlite:///{tmp_path / 'u.db'}"), run_worker=False)

    with TestClient(app) as client:
        assert client.get("/health").json()["worker"] == "off"
        assert workers() == []


def test_every_operation_has_a_tag_a_summary_and_the_bearer_scheme(tmp_path: Path) -> None:
    document = create_app(api_settings(tmp_path, "sqlite:///unused.db")).openapi()

    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) == 33
    for path, method, operation in operations:
        assert operation["tags"], (method, path)
        assert operation["summary"], (method, path)
        secured = "security" in operation
        assert secured == (path != "/health"), (method, path)
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"


def test_no_response_schema_has_a_secret_field(tmp_path: Path) -> None:
    document = create_app(api_settings(tmp_path, "sqlite:///unused.db")).openapi()
    schemas = document["components"]["schemas"]
    secret_fields = {"password", "private_key", "key_passphrase", "webhook_secret"}

    for name, schema in schemas.items():
        if name.endswith(("Create", "Update")):
            continue
        assert not secret_fields & set(schema.get("properties", {})), name
