"""The workspace's settings page in a real browser: its time zone, reached from the pages
that show times, changed, refused when unknown, and used by those pages at once."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.apiclient import Workspace, new_workspace
from tests.ui.conftest import LiveApp
from tests.ui.steps import sign_in
from usersync.store import ConflictMode, UserStore, workspaces

pytestmark = pytest.mark.integration


def shown_in(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def test_the_time_zone_is_changed_from_the_users_page_and_its_times_follow(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    UserStore(live.engine).apply(workspace.id, [[("u-1", '{"city": "Lima"}')]], ConflictMode.UPDATE)
    created = UserStore(live.engine).require_user(workspace.id, "u-1").created_at
    sign_in(page, workspace.token)
    page.goto("/users")
    expect(page.get_by_role("main")).to_contain_text("Times are in UTC (change).")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="u-1"))
    expect(row.get_by_role("cell").nth(1)).to_have_text(shown_in(created, "UTC"))

    page.get_by_role("link", name="change").click()
    expect(page.get_by_role("heading", name="Workspace", level=1)).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text(f"The settings of {workspace.name}.")
    field = page.get_by_role("combobox", name="Time zone")
    expect(field).to_have_value("UTC")
    field.fill("America/Lima")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_have_text("Saved: times are now shown in America/Lima.")
    expect(field).to_have_value("America/Lima")
    [stored] = workspaces.list_all(live.engine, workspace_id=workspace.id)
    assert stored.timezone == "America/Lima"
    page.goto("/users")
    expect(row.get_by_role("cell").nth(1)).to_have_text(shown_in(created, "America/Lima"))
    page.goto("/runs")
    expect(page.get_by_role("main")).to_contain_text("Times are in America/Lima (change).")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("America/Lma", "unknown time zone 'America/Lma'; did you mean 'America/Lima'?"),
        ("   ", "give an IANA zone name such as 'Europe/Berlin' or 'UTC'"),
    ],
)
def test_a_time_zone_that_does_not_exist_is_refused_and_nothing_changes(
    page: Page, live: LiveApp, workspace: Workspace, typed: str, message: str
) -> None:
    workspaces.set_timezone(live.engine, workspace.id, "Europe/Berlin")
    sign_in(page, workspace.token)
    page.goto("/workspace")
    field = page.get_by_role("combobox", name="Time zone")
    field.fill(typed)
    page.get_by_role("button", name="Save").click()

    expect(field).to_have_accessible_description(re.compile(re.escape(message)))
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value(typed)
    expect(page.get_by_role("status")).to_have_count(0)
    [stored] = workspaces.list_all(live.engine, workspace_id=workspace.id)
    assert stored.timezone == "Europe/Berlin"


def test_the_settings_change_only_the_sessions_own_workspace(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    other = new_workspace(live.engine, prefix="other")
    sign_in(page, workspace.token)
    page.goto("/workspace")
    page.get_by_role("combobox", name="Time zone").fill("Asia/Tokyo")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_be_visible()
    zones = {w.id: w.timezone for w in workspaces.list_all(live.engine)}
    assert (zones[workspace.id], zones[other.id]) == ("Asia/Tokyo", None)

    answer = page.request.post("/workspace", form={"timezone": "Europe/Paris"})  # no CSRF
    assert answer.status == 403
    assert workspaces.zone(live.engine, workspace.id).key == "Asia/Tokyo"
