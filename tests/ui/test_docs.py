"""The REST API's page (/docs, the footer's "REST API" link) in a real browser, with every
request that leaves the server refused: Swagger UI comes from usersync itself, so the page
works on a machine without internet access."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Route, expect

from tests.ui.conftest import LiveApp

pytestmark = pytest.mark.integration


def test_the_rest_api_page_works_offline(page: Page, live: LiveApp) -> None:
    elsewhere: list[str] = []

    def refuse(route: Route) -> None:
        elsewhere.append(route.request.url)
        route.abort()

    page.route(lambda url: not url.startswith(live.url), refuse)
    page.goto("/docs")

    expect(page.get_by_role("heading", name="usersync")).to_be_visible()
    expect(page.get_by_text("List users, ordered by userId")).to_be_visible()
    assert elsewhere == []
