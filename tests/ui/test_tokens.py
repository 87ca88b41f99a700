"""API tokens in a real browser: a new token is shown once and works against the REST API,
revoking it shuts the API to it, and revoking the session's own token signs the browser out."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.apiclient import Workspace, new_workspace
from tests.ui.conftest import LiveApp
from tests.ui.steps import copied, sign_in
from usersync.store import tokens

pytestmark = pytest.mark.integration


def api_status(live: LiveApp, token: str) -> int:
    answer = httpx.get(f"{live.url}/api/syncs", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code


def test_a_token_made_in_the_ui_is_shown_once_works_and_is_revoked(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    sign_in(page, workspace.token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    listed = page.get_by_role("table", name="Tokens of this workspace")
    expect(listed.get_by_role("row")).to_have_count(2)  # the header, the session's token
    expect(listed.get_by_role("rowheader")).to_have_text(f"{workspace.token[:8]}… (this session)")

    page.get_by_label("Name").evaluate("field => field.removeAttribute('maxlength')")
    page.get_by_label("Name").fill("x" * 201)
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_label("Name")).to_have_accessible_description(
        re.compile("a token name has at most 200 characters; this one has 201")
    )
    expect(listed.get_by_role("row")).to_have_count(2)
    page.get_by_label("Name").fill("nightly export")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").inner_text()
    assert token.startswith("ust_")
    expect(page.get_by_text("Copy it now: it is not shown again.")).to_be_visible()
    assert copied(page, "Copy the token", live) == token
    assert api_status(live, token) == 200

    page.reload()  # makes no second token, and shows this one no more
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    assert token not in page.content()
    expect(listed.get_by_role("row")).to_have_count(3)
    made = listed.get_by_role("row", name=re.compile(re.escape(token[:8])))
    expect(made.get_by_role("cell").nth(0)).to_have_text("nightly export")
    expect(made.get_by_role("cell").nth(2)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d "))
    made.get_by_text("Revoke…").click()  # a second click, to be sure
    made.get_by_role("button", name=re.compile("^Revoke .* now$")).click()
    expect(made.get_by_role("cell").nth(3)).to_have_text(re.compile("^Revoked "))
    assert api_status(live, token) == 401
    assert api_status(live, workspace.token) == 200

    other = new_workspace(live.engine, prefix="other")
    other_holder = tokens.lookup(live.engine, other.token)
    assert other_holder is not None
    other_id = other_holder.token_id
    csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
    answer = page.request.post(f"/tokens/{other_id}/revoke", form={"csrf": csrf})
    assert answer.status == 404
    assert api_status(live, other.token) == 200  # another workspace's token is not ours

    own = listed.get_by_role("row", name=re.compile("this session"))
    expect(own).to_contain_text("Revoking it signs you out.")
    own.get_by_text("Revoke…").click()
    own.get_by_role("button", name=re.compile("^Revoke .* now$")).click()
    expect(page.get_by_label("Workspace token")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(
        "You revoked the token this browser signed in with."
    )
    assert api_status(live, workspace.token) == 401
    page.goto("/tokens")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Ftokens$"))


def test_a_long_token_name_wraps_and_keeps_the_revoke_control_in_view(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    tokens.create_token(live.engine, workspace.id, name="CI ☃ " + "n" * 195)
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in(page, workspace.token)

    page.goto("/tokens")

    region = page.get_by_role("region", name="Tokens of this workspace")
    assert region.evaluate("box => box.scrollWidth <= box.clientWidth")
    for revoke in page.get_by_text("Revoke…").all():
        box = revoke.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= 1280
