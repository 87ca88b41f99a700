"""The User 360 pages in a real browser (headless Chromium) against the app served by
uvicorn: the users list with its search, paging and empty states, and one user's record with
each property's type. Users are seeded through the store's own write path (UserStore.apply and
the property catalog), as an import writes them."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.apiclient import Workspace, new_workspace
from tests.ui.conftest import LiveApp
from tests.ui.steps import sign_in
from usersync.store import ConflictMode, UserStore, properties, tokens, workspaces

pytestmark = pytest.mark.integration


def seed(live: LiveApp, ws: int, users: dict[str, dict[str, Any]]) -> None:
    """Create or update these users (userId -> properties), all in one apply."""
    changes = [(user_id, json.dumps(props)) for user_id, props in users.items()]
    UserStore(live.engine).apply(ws, [changes], ConflictMode.UPDATE)


# A userId with a slash, a space, non-ASCII letters and URL characters, beside "team" (its
# first path segment).
ODD = "team/Zoë Ünal?x#1%2F"
WITH_ODD = {ODD: {"city": "Zürich"}, "team": {"city": "Bern"}}


def users_nav_link(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name="Users", exact=True)


def open_users(page: Page, token: str, query: str = "") -> None:
    sign_in(page, token)
    if query:
        page.goto(f"/users?{query}")
    else:
        users_nav_link(page).click()
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()


def user_ids(page: Page) -> Locator:
    """The userId cells of the list (each row's header)."""
    return page.get_by_role("table").get_by_role("rowheader")


def search(page: Page, term: str) -> None:
    box = page.get_by_role("searchbox", name="Search by userId")
    box.fill(term)
    box.press("Enter")


def status_of_opening(page: Page, url: str) -> int:
    response = page.goto(url)
    assert response is not None
    return response.status


def property_row(page: Page, name: str) -> Locator:
    table = page.get_by_role("table", name=re.compile("^Properties of "))
    return table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name, exact=True))


def test_no_users_yet_says_that_an_import_brings_them(page: Page, workspace: Workspace) -> None:
    open_users(page, workspace.token)

    expect(users_nav_link(page)).to_have_attribute("aria-current", "page")
    empty = page.get_by_role("region", name="No users yet")
    expect(empty).to_contain_text("a sync imports")
    expect(page.get_by_role("table")).to_have_count(0)
    empty.get_by_role("link", name="Integrations").click()
    expect(page.get_by_role("heading", name="Integrations", level=1)).to_be_visible()


def test_every_user_downloads_as_a_userdata_file_and_as_json_lines(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    properties.ensure(live.engine, workspace.id, {"city": "string"})
    seed(live, workspace.id, WITH_ODD)
    open_users(page, workspace.token)

    with page.expect_download() as as_csv:
        page.get_by_role("link", name=re.compile(r"^CSV \(a userdata file")).click()
    with page.expect_download() as as_jsonl:
        page.get_by_role("link", name=re.compile(r"^JSON Lines")).click()

    assert re.fullmatch(r"userdata_export_\d{4}-\d\d-\d\d\.csv", as_csv.value.suggested_filename)
    text = Path(as_csv.value.path()).read_text("utf-8")
    assert list(csv.reader(io.StringIO(text))) == [
        ["userId", "city"],
        ["team", "Bern"],
        [ODD, "Zürich"],
    ]
    lines = Path(as_jsonl.value.path()).read_text("utf-8").splitlines()
    assert [json.loads(line)["properties"] for line in lines] == [
        {"city": "Bern"},
        {"city": "Zürich"},
    ]


def test_search_narrows_the_list_and_keeps_the_term(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    seed(live, workspace.id, {"alice": {}, "Malice-2": {}, "bob": {}, "ALICIA": {}})
    open_users(page, workspace.token)
    expect(user_ids(page)).to_have_text(["ALICIA", "Malice-2", "alice", "bob"])

    search(page, "alic")

    expect(user_ids(page)).to_have_text(["ALICIA", "Malice-2", "alice"])
    expect(page.get_by_role("table")).to_have_accessible_name("Users whose userId contains “alic”")
    expect(page.get_by_role("searchbox", name="Search by userId")).to_have_value("alic")

    search(page, "carol")

    expect(page.get_by_text("No userId contains “carol”")).to_be_visible()
    expect(page.get_by_role("table")).to_have_count(0)
    expect(page.get_by_role("searchbox", name="Search by userId")).to_have_value("carol")


def read_every_page(page: Page) -> list[str]:
    """The userIds of this page and of every next one, following "Next page" to the end."""
    seen: list[str] = []
    while True:
        expect(user_ids(page).first).to_be_visible()
        shown = user_ids(page).all_inner_texts()
        seen.extend(shown)
        next_page = page.get_by_role("link", name="Next page")
        if next_page.count() == 0:
            return seen
        next_page.click()
        after = re.compile(f", after {re.escape(shown[-1])}$")
        expect(page.get_by_role("table")).to_have_accessible_name(after)


def test_next_page_reaches_every_user_exactly_once(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    ids = [f"user-{n:02}" for n in range(11)]
    seed(live, workspace.id, {user_id: {"n": n} for n, user_id in enumerate(ids)})
    open_users(page, workspace.token, "limit=3")

    assert read_every_page(page) == ids
    expect(user_ids(page)).to_have_count(2)

    page.get_by_role("link", name="First page").click()
    expect(user_ids(page)).to_have_text(ids[:3])
    expect(page.get_by_role("link", name="First page")).to_have_count(0)


def test_paging_a_search_keeps_the_term_on_every_page(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    wanted = [f"vip-{n}" for n in range(5)]
    seed(live, workspace.id, {user_id: {} for user_id in [*wanted, "other-1", "zz-2"]})
    open_users(page, workspace.token, "limit=2")

    search(page, "VIP")

    assert read_every_page(page) == wanted
    expect(page.get_by_role("searchbox", name="Search by userId")).to_have_value("VIP")


def test_a_user_shows_each_property_with_its_type_and_empty_ones_muted(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    properties.ensure(
        live.engine,
        workspace.id,
        {"age": "integer", "vip": "boolean", "born": "date", "email": "string", "plan": "string"},
    )
    record = {"age": 41, "vip": True, "born": "1985-02-01", "email": "a@x.example", "nickname": ""}
    seed(live, workspace.id, {"u-1": record})
    open_users(page, workspace.token)
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="u-1"))
    expect(row.get_by_role("cell").first).to_have_text(
        "5 properties age 41 · born 1985-02-01 · email a@x.example · 2 more"
    )

    row.get_by_role("link", name="u-1").click()

    expect(page.get_by_role("heading", name="u-1", level=1)).to_be_visible()
    expected = {
        "age": ["integer", "41"],
        "born": ["date", "1985-02-01"],
        "email": ["string", "a@x.example"],
        "nickname": ["not in the catalog", "empty"],
        "plan": ["string", "empty"],
        "vip": ["boolean", "true"],
    }
    table = page.get_by_role("table", name="Properties of u-1")
    expect(table.get_by_role("rowheader")).to_have_text(sorted(expected))
    for name, cells in expected.items():
        expect(property_row(page, name).get_by_role("cell")).to_have_text(cells)
    for name in ("plan", "nickname"):
        expect(property_row(page, name).locator(".empty-value").last).to_have_text("empty")


def in_kolkata(moment: datetime) -> str:
    """A stored time as the pages show it in Asia/Kolkata (UTC+05:30 all year, so the test
    does not depend on the season)."""
    return moment.astimezone(ZoneInfo("Asia/Kolkata")).strftime("%Y-%m-%d %H:%M:%S IST")


def test_times_are_shown_in_the_workspaces_time_zone(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    workspaces.set_timezone(live.engine, workspace.id, "Asia/Kolkata")
    seed(live, workspace.id, {"u-1": {"city": "Pune"}})
    record = UserStore(live.engine).require_user(workspace.id, "u-1")
    open_users(page, workspace.token)
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="u-1"))
    shown = in_kolkata(record.created_at)
    expect(row.get_by_role("cell")).to_have_text([re.compile("1 property"), shown, shown])

    row.get_by_role("link", name="u-1").click()
    expect(page.get_by_role("definition").filter(has_text="IST")).to_have_text([shown, shown])

    page.goto("/tokens")
    expect(page.get_by_text("Times are in Asia/Kolkata (change).")).to_be_visible()
    [token] = tokens.list_tokens(live.engine, workspace.id)
    created = page.get_by_role("row").filter(has_text=token.name).get_by_role("cell").nth(1)
    expect(created).to_have_text(in_kolkata(token.created_at))

    page.goto("/runs")
    expect(page.get_by_text("Every import of this workspace, newest first.")).to_have_text(
        "Every import of this workspace, newest first. Times are in Asia/Kolkata (change)."
    )


def test_a_user_id_with_a_slash_space_and_non_ascii_round_trips_through_its_link(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    seed(live, workspace.id, WITH_ODD)
    open_users(page, workspace.token)

    link = page.get_by_role("link", name=ODD, exact=True)
    link.focus()
    page.keyboard.press("Enter")

    expect(page).to_have_url(f"{live.url}/users/{quote(ODD, safe='')}")
    expect(page.get_by_role("heading", level=1)).to_have_text(ODD)
    city = property_row(page, "city").get_by_role("cell")
    expect(city).to_have_text(["not in the catalog", "Zürich"])


def test_a_user_deleted_from_its_page_is_gone_and_the_list_says_so(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    seed(live, workspace.id, WITH_ODD)
    open_users(page, workspace.token)
    page.get_by_role("link", name=ODD, exact=True).click()

    page.get_by_text("Delete this user").click()
    page.get_by_role("button", name=f"Delete {ODD}").click()

    expect(page.get_by_role("status")).to_have_text(f"User {ODD} was deleted.")
    expect(user_ids(page)).to_have_text(["team"])
    assert UserStore(live.engine).get_user(workspace.id, ODD) is None
    assert status_of_opening(page, f"/users/{quote(ODD, safe='')}") == 404


@pytest.mark.parametrize("dots", [".", ".."])
def test_a_user_id_of_dots_opens_from_its_link(
    page: Page, live: LiveApp, workspace: Workspace, dots: str
) -> None:
    # A browser resolves `/users/..` to `/`: such userIds are linked by a query value.
    seed(live, workspace.id, {dots: {"city": "Basel"}})
    open_users(page, workspace.token)

    page.get_by_role("link", name=dots, exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(dots)
    expect(property_row(page, "city").get_by_role("cell").last).to_have_text("Basel")


def test_an_unknown_user_id_is_a_404_page(page: Page, workspace: Workspace) -> None:
    sign_in(page, workspace.token)

    status = status_of_opening(page, "/users/nobody%2Fhere")

    assert status == 404
    expect(page.get_by_role("heading", name="Not found", level=1)).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("there is no user 'nobody/here'")


def test_another_workspaces_user_is_not_listed_and_is_a_404_page(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    other = new_workspace(live.engine, prefix="ui")
    seed(live, other.id, {"their-user": {"plan": "gold"}})
    seed(live, workspace.id, {"our-user": {"plan": "free"}})
    open_users(page, workspace.token)

    expect(user_ids(page)).to_have_text(["our-user"])
    search(page, "their")
    expect(page.get_by_text("No userId contains “their”")).to_be_visible()

    status = status_of_opening(page, "/users/their-user")

    assert status == 404
    expect(page.get_by_role("heading", name="Not found", level=1)).to_be_visible()
