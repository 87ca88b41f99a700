"""The web UI's errors answer as pages (with the pages' security headers), the API's as JSON:
an unknown address, a malformed query, a form without its CSRF token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.apiclient import RunningApp, TestClient, api_settings, new_workspace, running_app
from usersync.web.pages.session import SESSION_COOKIE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    data = tmp_path_factory.mktemp("pages")
    with running_app(api_settings(data, f"sqlite:///{data / 'usersync.db'}")) as running:
        yield running


@pytest.fixture
def browser(app: RunningApp) -> TestClient:
    """A client signed in to a workspace of its own, as the sign-in page leaves a browser."""
    workspace = new_workspace(app.engine, prefix="pages")
    app.client.cookies.clear()
    app.client.cookies.set(SESSION_COOKIE, f"nonce.{workspace.token}")
    return app.client


def is_page(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    return response.text


def test_an_unknown_address_is_a_not_found_page(browser: TestClient) -> None:
    text = is_page(browser.get("/no/such/page"), 404)
    assert "There is no page at /no/such/page." in text
    assert "<h1>Not found</h1>" in text


def test_an_error_page_keeps_the_navigation_and_leads_back_to_its_section(
    browser: TestClient,
) -> None:
    missing_user = is_page(browser.get("/users/nobody"), 404)
    missing_run = is_page(browser.get("/runs/999999"), 404)

    for text in (missing_user, missing_run):
        assert '<nav aria-label="Main">' in text
        assert ">Sign out<" in text  # the signed-in user's navigation
    assert '<a href="/users">Back to users</a>' in missing_user
    assert '<a href="/runs">Back to runs</a>' in missing_run


def test_the_api_keeps_answering_json(browser: TestClient) -> None:
    response = browser.get("/api/no/such/thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_malformed_query_names_the_parameter(browser: TestClient) -> None:
    text = is_page(browser.get("/users?limit=0"), 422)
    assert "This address is not valid" in text
    assert "limit" in text
    text = is_page(browser.get("/runs?sync=abc"), 422)
    assert "sync" in text


def test_a_wizard_step_without_its_csrf_token_is_refused(browser: TestClient) -> None:
    text = is_page(browser.post("/integrations/1/sync/new", data={"step": "source"}), 403)
    assert "This form has expired" in text


def test_a_missing_connection_is_a_not_found_page(browser: TestClient) -> None:
    text = is_page(browser.get("/integrations/999999/sync/new"), 404)
    assert "there is no connection 999999" in text
