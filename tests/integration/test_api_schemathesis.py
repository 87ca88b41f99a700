"""Property-based tests of the REST API from its own OpenAPI document (schemathesis): for every
operation, valid and invalid requests, a bounded number of each; none may answer 5xx, and
every documented answer must match its schema.

Connections the generator creates are pointed at 127.0.0.1 (a port where nothing listens)
before they are sent: generated host names never leave this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.apiclient import (
    Api,
    Recorder,
    RunningApp,
    api_settings,
    app_on_database,
    connection_body,
    new_workspace,
    ok,
    sync_body,
)
from tests.servers.blackhole import ClosedPort
from usersync.store import ConflictMode, UserStore, runs
from usersync.web.app import create_app

pytestmark = pytest.mark.integration

EXAMPLES = 60  # per operation, valid and invalid together

# The operations, read from the app's document (building the app does no I/O).
_DOCUMENT = create_app(api_settings(Path("/nonexistent"), "sqlite:///unused.db")).openapi()
OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in _DOCUMENT["paths"].items()
    for method in item
    if method in ("get", "post", "patch", "delete")
)


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    with ClosedPort() as reserved:
        yield reserved.port


@pytest.fixture(scope="module")
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, closed_port: int
) -> Iterator[tuple[RunningApp, str, Any]]:
    """The running app, a token of a workspace that holds one of each resource, the schema."""
    with app_on_database("sqlite", tmp_path_factory.mktemp("fuzz"), request) as running:
        workspace = new_workspace(running.engine)
        api = Api(running, workspace.token, Recorder())
        connection = ok(
            api.post(
                "/api/connections",
                json=connection_body(port=closed_port, host_key_fingerprint="SHA256:" + "a" * 43),
            ),
            201,
        )
        sync = ok(api.post("/api/syncs", json=sync_body(connection["id"])), 201)
        run_id = runs.create_run(
            running.engine, workspace.id, source="s", path="/in/x.csv", sync_id=sync["id"]
        )
        runs.add_run_errors(running.engine, run_id, [(2, "age", "=1", "not a number")])
        UserStore(running.engine).apply(
            workspace.id, [[("1", '{"age": 1}'), ("u1", "{}")]], ConflictMode.UPDATE
        )
        ok(api.post("/api/properties", json={"name": "age", "type": "integer"}), 201)
        schema = schemathesis.openapi.from_dict(running.client.get("/openapi.json").json())
        yield running, workspace.token, schema


def _keep_local(case: Any, port: int) -> None:
    """Whatever host and port a generated connection names, it reaches only 127.0.0.1."""
    if case.path.startswith("/api/connections") and isinstance(case.body, dict):
        if case.method == "POST" or "host" in case.body:
            case.body["host"] = "127.0.0.1"
        if case.method == "POST" or "port" in case.body:
            case.body["port"] = port


def _send(running: RunningApp, token: str, case: Any) -> Any:
    kwargs = case.as_transport_kwargs(
        base_url="http://testserver", headers={"Authorization": f"Bearer {token}"}
    )
    kwargs.pop("cookies", None)
    data = kwargs.pop("data", None)
    if isinstance(data, bytes | str):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    return running.client.request(**kwargs)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_request_makes_the_server_fail(
    target: tuple[RunningApp, str, Any], closed_port: int, method: str, path: str
) -> None:
    running, token, schema = target
    operation = schema[path][method]
    # Browsing and testing reach the remote server: its failures are documented answers.
    upstream = {502, 504} if path.startswith("/api/connections/{connection_id}/") else set()
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def check(case: Any) -> None:
        _keep_local(case, closed_port)
        response = _send(running, token, case)
        assert response.status_code < 500 or response.status_code in upstream, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}"
        )
        case.validate_response(response, checks=[response_schema_conformance])

    check()
