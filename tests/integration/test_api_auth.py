"""Who may call the REST API and what a token sees: no, bad or revoked tokens get 401; a
token sees only its workspace, and another workspace's ids answer 404 on every endpoint that
takes one (on SQLite and on the real PostgreSQL server)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.apiclient import (
    Api,
    Recorder,
    RunningApp,
    Workspace,
    connection_body,
    error_of,
    new_workspace,
    ok,
    sync_body,
)
from usersync.store import ConflictMode, UserStore, runs, tokens

pytestmark = pytest.mark.integration


def client(running: RunningApp, recorder: Recorder, workspace: Workspace | None) -> Api:
    return Api(running, workspace.token if workspace else None, recorder)


# Every operation of the API, with a body it would accept, to check that none answers
# without a valid token. `{id}` stands for an existing resource of the caller's workspace.
OPERATIONS = [
    ("GET", "/api/connections", None),
    ("POST", "/api/connections", connection_body()),
    ("GET", "/api/connections/{connection}", None),
    ("PATCH", "/api/connections/{connection}", {"name": "renamed"}),
    ("DELETE", "/api/connections/{connection}", None),
    ("POST", "/api/connections/{connection}/test", None),
    ("GET", "/api/connections/{connection}/folders?path=/", None),
    ("GET", "/api/connections/{connection}/files?path=/", None),
    ("GET", "/api/connections/{connection}/preview?path=/in/userdata_a.csv", None),
    ("GET", "/api/syncs", None),
    ("POST", "/api/syncs", "sync"),
    ("GET", "/api/syncs/{sync}", None),
    ("PATCH", "/api/syncs/{sync}", {"name": "renamed"}),
    ("DELETE", "/api/syncs/{sync}", None),
    ("POST", "/api/syncs/{sync}/enable", None),
    ("POST", "/api/syncs/{sync}/disable", None),
    ("POST", "/api/syncs/{sync}/run", None),
    ("GET", "/api/syncs/{sync}/schedule/next?count=5", None),
    ("GET", "/api/runs", None),
    ("GET", "/api/runs?sync_id={sync}", None),
    ("GET", "/api/runs/{run}", None),
    ("GET", "/api/runs/{run}/errors.csv", None),
    ("POST", "/api/runs/{run}/cancel", None),
    ("GET", "/api/users", None),
    ("GET", "/api/users/{user}", None),
    ("DELETE", "/api/users/{user}", None),
    ("GET", "/api/users.csv", None),
    ("GET", "/api/users.jsonl", None),
    ("GET", "/api/properties", None),
    ("POST", "/api/properties", {"name": "age", "type": "integer"}),
    ("GET", "/api/workspace", None),
    ("PATCH", "/api/workspace", {"timezone": "Europe/Berlin"}),
    ("GET", "/metrics", None),
]
ID_TAKING = [op for op in OPERATIONS if "{" in op[1]]


@dataclass
class Owned:
    """Resources of one workspace, by the names OPERATIONS uses."""

    ids: dict[str, Any]

    def url(self, template: str) -> str:
        return template.format(**self.ids)


def populate(api: Api, workspace: Workspace) -> Owned:
    engine = api.running.engine
    connection = ok(api.post("/api/connections", json=connection_body()), 201)
    sync = ok(api.post("/api/syncs", json=sync_body(connection["id"])), 201)
    run_id = runs.create_run(engine, workspace.id, source="s", path="/in/x.csv", sync_id=sync["id"])
    runs.add_run_errors(engine, run_id, [(2, "age", "x", "not a number")])
    runs.finish_run(engine, run_id, status="partial", rows_read=1, rows_rejected=1)
    UserStore(engine).apply(
        workspace.id, [[("owner-user", '{"plan": "gold"}')]], ConflictMode.UPDATE
    )
    ok(api.post("/api/properties", json={"name": "plan"}), 201)
    return Owned(
        {"connection": connection["id"], "sync": sync["id"], "run": run_id, "user": "owner-user"}
    )


def body_for(body: Any, owned: Owned) -> Any:
    return sync_body(owned.ids["connection"]) if body == "sync" else body


def test_the_operations_table_covers_every_endpoint(running: RunningApp) -> None:
    documented = {
        (method.upper(), path)
        for path, item in running.client.get("/openapi.json").json()["paths"].items()
        for method in item
        if path != "/health"
    }
    listed = {
        (
            method,
            path.split("?")[0]
            .replace("{connection}", "{connection_id}")
            .replace("{sync}", "{sync_id}")
            .replace("{run}", "{run_id}")
            .replace("{user}", "{user_id}"),
        )
        for method, path, _ in OPERATIONS
    }
    assert listed == documented


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer ust_not-a-real-token",
        "Bearer not-even-the-prefix",
        "Bearer " + "ust_" + "x" * 500,
    ],
    ids=["none", "scheme-only", "empty", "basic", "unknown", "foreign", "huge"],
)
def test_every_endpoint_refuses_a_request_without_a_valid_token(
    running: RunningApp, recorder: Recorder, authorization: str | None
) -> None:
    owner = new_workspace(running.engine)
    owned = populate(client(running, recorder, owner), owner)
    anonymous = client(running, recorder, None)
    headers = {"Authorization": authorization} if authorization else {}

    for method, path, body in OPERATIONS:
        response = anonymous.request(
            method, owned.url(path), json=body_for(body, owned), headers=headers
        )
        error = error_of(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer"), (method, path)
        assert error["code"] in ("unauthorized", "invalid_token"), (method, path)


def test_a_revoked_token_is_refused_at_once(running: RunningApp, recorder: Recorder) -> None:
    workspace = new_workspace(running.engine)
    api = client(running, recorder, workspace)
    ok(api.get("/api/connections"))

    assert tokens.revoke(running.engine, workspace.token)

    error = error_of(api.get("/api/connections"), 401)
    assert error["code"] == "invalid_token"
    assert "revoked" in error["message"]
    assert error_of(api.post("/api/connections", json=connection_body()), 401)


def test_health_and_the_api_description_need_no_token(running: RunningApp) -> None:
    assert running.client.get("/health").json()["status"] == "ok"
    assert running.client.get("/openapi.json").status_code == 200
    assert running.client.get("/docs").status_code == 200


def test_a_token_of_each_workspace_sees_only_its_own_resources(
    running: RunningApp, recorder: Recorder
) -> None:
    first, second = new_workspace(running.engine), new_workspace(running.engine)
    populate(client(running, recorder, first), first)
    other = client(running, recorder, second)

    for path in ("/api/connections", "/api/syncs", "/api/runs", "/api/users", "/api/properties"):
        assert ok(other.get(path)) == {"items": [], "next": None}, path
    assert other.get("/api/users.csv").text == "userId\n"
    assert other.get("/api/users.jsonl").text == ""


@pytest.mark.parametrize(
    ("method", "path", "body"), ID_TAKING, ids=[f"{m} {p}" for m, p, _ in ID_TAKING]
)
def test_another_workspaces_ids_answer_404(
    running: RunningApp, recorder: Recorder, method: str, path: str, body: Any
) -> None:
    owner = new_workspace(running.engine)
    owner_api = client(running, recorder, owner)
    owned = populate(owner_api, owner)
    intruder = client(running, recorder, new_workspace(running.engine))

    error = error_of(intruder.request(method, owned.url(path), json=body_for(body, owned)), 404)

    assert error["code"].endswith("not_found")
    # Nothing of the owner's changed or went away.
    ids = owned.ids
    connection = ok(owner_api.get(f"/api/connections/{ids['connection']}"))
    sync = ok(owner_api.get(f"/api/syncs/{ids['sync']}"))
    assert connection["name"] != "renamed"
    assert sync["name"] is None
    assert sync["enabled"] is False
    assert ok(owner_api.get(f"/api/runs?sync_id={ids['sync']}"))["items"][0]["id"] == ids["run"]
    assert ok(owner_api.get(f"/api/users/{ids['user']}"))["properties"] == {"plan": "gold"}


def test_a_sync_cannot_use_another_workspaces_connection(
    running: RunningApp, recorder: Recorder
) -> None:
    owner = new_workspace(running.engine)
    owned = populate(client(running, recorder, owner), owner)
    intruder = client(running, recorder, new_workspace(running.engine))
    mine = ok(intruder.post("/api/connections", json=connection_body()), 201)
    my_sync = ok(intruder.post("/api/syncs", json=sync_body(mine["id"])), 201)

    created = error_of(intruder.post("/api/syncs", json=sync_body(owned.ids["connection"])), 422)
    moved = error_of(
        intruder.patch(
            f"/api/syncs/{my_sync['id']}", json={"connection_id": owned.ids["connection"]}
        ),
        422,
    )

    assert f"there is no connection {owned.ids['connection']}" in created["message"]
    assert f"there is no connection {owned.ids['connection']}" in moved["message"]


def test_the_same_names_live_apart_in_two_workspaces(
    running: RunningApp, recorder: Recorder
) -> None:
    first = client(running, recorder, new_workspace(running.engine))
    second = client(running, recorder, new_workspace(running.engine))

    ok(first.post("/api/connections", json=connection_body(name="shared")), 201)
    ok(second.post("/api/connections", json=connection_body(name="shared")), 201)
    ok(first.post("/api/properties", json={"name": "age", "type": "integer"}), 201)
    ok(second.post("/api/properties", json={"name": "age", "type": "string"}), 201)
