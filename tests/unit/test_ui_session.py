"""The web UI's session: the token's cookie, the CSRF tokens of its forms, and where signing
in may send the browser (in-process, on SQLite; the browser tests are in tests/ui)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apiclient import (
    RunningApp,
    TestClient,
    api_settings,
    new_workspace,
    running_app,
    sync_body,
)
from usersync.store import connections, syncs
from usersync.store.connections import NewConnection
from usersync.web.pages.session import SESSION_COOKIE, csrf_token, safe_next


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningApp]:
    with running_app(api_settings(tmp_path, f"sqlite:///{tmp_path / 'u.db'}")) as app:
        yield app


def signin_check(client: TestClient) -> str:
    page = client.get("/signin").text
    found = re.search(r'name="signin_check" value="([^"]+)"', page)
    assert found
    return found.group(1)


def sign_in(client: TestClient, token: str) -> str:
    """Sign in; the CSRF token of the pages that follow."""
    answer = client.post(
        "/signin", data={"token": token, "signin_check": signin_check(client), "next": ""}
    )
    assert answer.status_code == 200, answer.text
    found = re.search(r'name="csrf" value="([^"]+)"', answer.text)
    assert found
    return found.group(1)


def test_the_session_cookie_is_http_only_strict_and_secure_only_over_https(
    running: RunningApp,
) -> None:
    token = new_workspace(running.engine).token
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        client = TestClient(running.app, base_url=base)
        answer = client.post(
            "/signin",
            data={"token": token, "signin_check": signin_check(client)},
            follow_redirects=False,
        )
        cookie = answer.headers["set-cookie"]
        assert answer.status_code == 303
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert ("Secure" in cookie) is secure


def test_a_form_without_the_sessions_csrf_token_is_refused(running: RunningApp) -> None:
    client = running.client
    csrf = sign_in(client, new_workspace(running.engine).token)
    form = {"host": "127.0.0.1", "port": "9", "username": "u", "password": "p"}

    forged = client.post("/integrations", data=form, follow_redirects=False)
    wrong = client.post("/integrations", data={**form, "csrf": "0" * 64}, follow_redirects=False)
    genuine = client.post("/integrations", data={**form, "csrf": csrf}, follow_redirects=False)

    assert forged.status_code == 403
    assert wrong.status_code == 403
    assert genuine.status_code == 303


def test_signing_in_needs_the_form_the_server_gave(running: RunningApp) -> None:
    token = new_workspace(running.engine).token

    answer = running.client.post(
        "/signin", data={"token": token, "signin_check": "forged"}, follow_redirects=False
    )

    assert answer.status_code == 400
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


def test_each_sign_in_has_its_own_csrf_token() -> None:
    assert csrf_token("ust_a", "n1") != csrf_token("ust_a", "n2")
    assert csrf_token("ust_a", "n1") != csrf_token("ust_b", "n1")


@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [
        ("/integrations/3/verify", "/integrations/3/verify"),
        ("https://evil.example/", "/integrations"),
        ("//evil.example/", "/integrations"),
        ("/\\evil.example/", "/integrations"),
        (None, "/integrations"),
    ],
)
def test_signing_in_goes_back_to_a_page_of_this_site_only(asked: str | None, goes_to: str) -> None:
    assert safe_next(asked) == goes_to


def test_pages_send_their_content_security_policy(running: RunningApp) -> None:
    answer = running.client.get("/signin")

    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def test_turning_a_cards_toggle_off_switches_off_the_connections_syncs(
    running: RunningApp,
) -> None:
    ws = new_workspace(running.engine)
    services = running.services
    connection = connections.create(
        services.engine,
        services.box,
        ws.id,
        NewConnection(name="c", host="127.0.0.1", username="u", password="p"),
    )
    sync = syncs.create(services.engine, services.box, ws.id, sync_body(connection.id))
    syncs.set_enabled(services.engine, ws.id, sync.id, True)
    csrf = sign_in(running.client, ws.token)
    assert "Turn sync off for c?" in running.client.get("/integrations").text

    answer = running.client.post(f"/integrations/{connection.id}/sync-off", data={"csrf": csrf})

    assert answer.status_code == 200
    assert not syncs.get(services.engine, ws.id, sync.id).enabled
