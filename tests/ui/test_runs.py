"""The Runs pages in a real browser (headless Chromium) against the app served by uvicorn,
with its worker, and the real sshd: "Run now" on a sync's history, the run page's live
progress until the run finishes, its rejected rows and their CSV, "Run again", paging, and
other workspaces' runs. Playwright's `expect` waits for each outcome; nothing sleeps."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.apiclient import Workspace, new_workspace
from tests.servers.sshd import SftpFolder
from tests.ui.conftest import LiveApp
from tests.ui.steps import confirmed_connection, sign_in, stored_connection
from usersync.store import UserStore, runs, syncs
from usersync.store.connections import NewConnection
from usersync.store.syncs import Sync
from usersync.web.pages.runs import PAGE_SIZE

pytestmark = pytest.mark.integration

GOOD_FILE = b"id,email\nu1,a@x.example\nu2,b@x.example\nu3,c@x.example\n"
BAD_AGE_FILE = b"id,email,age\nu1,a@x.example,30\nu2,b@x.example,abc\nu3,c@x.example,41\n"
AGE_MAPPING = {
    "user_id": "id",
    "properties": {"email": "email", "age": "age"},
    "types": {"age": "integer"},
}


def a_sync(live: LiveApp, workspace: Workspace, sftp: SftpFolder, **values: Any) -> Sync:
    """A sync of `userdata_a.csv` in the test's folder on the sshd, switched off unless
    `values` say otherwise (so only "Run now" runs it)."""
    connection = confirmed_connection(live, workspace, sftp)
    given: dict[str, Any] = {
        "connection_id": connection.id,
        "folder": sftp.path(),
        "file": "userdata_a.csv",
        "mapping": {"user_id": "id", "properties": {"email": "email"}},
        "enabled": False,
        **values,
    }
    return syncs.create(live.engine, live.services.box, workspace.id, given)


def hold(live: LiveApp, sync: Sync) -> int:
    """A run of `sync` that is running (with no worker behind it): one run of a sync at a
    time, so the worker starts no other run of it until `release`."""
    assert sync.path is not None
    return runs.create_run(
        live.engine, sync.workspace_id, source="", path=sync.path, sync_id=sync.id
    )


def release(live: LiveApp, run_id: int) -> None:
    runs.finish_run(live.engine, run_id, status="failed", message="stopped by the test")


def run_now(page: Page, sync: Sync) -> int:
    """Open the sync's history, press Run now (with the keyboard) and return the run's id."""
    page.goto(f"/runs?sync={sync.id}")
    page.get_by_role("button", name="Run now").press("Enter")
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    return run_id_of(page)


def run_id_of(page: Page) -> int:
    return int(page.url.rsplit("/", 1)[1])


def status_of(page: Page, path: str) -> int:
    """Open `path` in the page; the HTTP status it was answered with."""
    answer = page.goto(path)
    assert answer is not None
    return answer.status


def status_badge(page: Page) -> Locator:
    return page.locator("#run-live .run-state .run-badge")


def counts(page: Page) -> Locator:
    return page.get_by_role("table", name="Counts").get_by_role("cell")


def test_run_now_shows_live_progress_until_the_run_succeeds(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", GOOD_FILE)
    sync = a_sync(live, workspace, sftp)
    busy = hold(live, sync)
    sign_in(page, workspace.token)

    run_id = run_now(page, sync)

    expect(page.get_by_role("heading", name=f"Run {run_id}", level=1)).to_be_visible()
    expect(status_badge(page)).to_have_text("Queued")
    expect(page.get_by_role("progressbar", name="Progress")).to_be_visible()
    expect(page.get_by_role("progressbar", name="Progress")).to_have_accessible_description(
        "Waiting to start."
    )
    release(live, busy)

    expect(page.get_by_role("status")).to_have_text(f"Run {run_id} finished: Succeeded.")
    expect(status_badge(page)).to_have_text("Succeeded")
    expect(counts(page)).to_have_text(["3", "3", "0", "0"])
    expect(page.get_by_role("progressbar")).to_have_count(0)
    expect(page.locator("[hx-trigger]")).to_have_count(0)  # the polling has stopped
    expect(page.get_by_text("No rows were rejected.")).to_be_visible()
    expect(page.get_by_text(f"{len(GOOD_FILE)} bytes")).to_be_visible()


def test_a_queued_run_is_cancelled_from_its_page_and_a_running_one_is_asked_to_stop(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", GOOD_FILE)
    sync = a_sync(live, workspace, sftp)
    busy = hold(live, sync)  # so the run stays queued
    sign_in(page, workspace.token)

    run_id = run_now(page, sync)
    expect(status_badge(page)).to_have_text("Queued")
    page.get_by_role("button", name="Cancel this run").click()

    expect(page).to_have_url(re.compile(rf"/runs/{run_id}$"))
    expect(status_badge(page)).to_have_text("Failed")
    expect(page.locator("#run-message")).to_contain_text("cancelled before it started")
    expect(page.get_by_role("button", name="Cancel this run")).to_have_count(0)

    page.goto(f"/runs/{busy}")  # running: its worker (none here) is asked to stop it
    page.get_by_role("button", name="Cancel this run").click()
    expect(page.locator("#run-cancelling")).to_have_text(
        "Cancelling: the run stops within a few seconds, and applies nothing."
    )
    expect(status_badge(page)).to_have_text("Running")
    release(live, busy)
    run = runs.get_run(live.engine, run_id)
    assert run is not None
    assert (run.status, run.rows_read) == ("failed", 0)


def test_rejected_rows_show_their_line_column_value_and_message_and_download_as_csv(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", BAD_AGE_FILE)
    sync = a_sync(live, workspace, sftp, mapping=AGE_MAPPING)
    sign_in(page, workspace.token)

    run_id = run_now(page, sync)

    expect(status_badge(page)).to_have_text("Partial")
    expect(counts(page)).to_have_text(["3", "2", "0", "1"])
    rejected = page.get_by_role("table", name="The rejected row")
    expect(rejected.get_by_role("columnheader")).to_have_text(
        ["Line", "Column", "Value", "Message"]
    )
    [row] = rejected.get_by_role("row").all()[1:]
    cells = row.get_by_role("cell")
    expect(cells).to_have_text(
        ["3", "age", "abc", re.compile(r"^'abc' is not .+ \(property 'age' is integer\)$")]
    )
    message = cells.nth(3).inner_text()

    with page.expect_download() as started:
        page.get_by_role("link", name="Download errors (CSV)").click()
    download = started.value
    assert download.suggested_filename == f"run-{run_id}-errors.csv"
    report = list(csv.reader(io.StringIO(Path(download.path()).read_text("utf-8"))))
    assert report == [["line", "column", "value", "message"], ["3", "age", "abc", message]]

    run = runs.get_run(live.engine, run_id)
    assert run is not None
    assert runs.delete_old_errors(live.engine, run, keep=0) == [run_id]  # as newer runs do
    page.reload()
    expect(page.get_by_role("region", name="Rejected rows")).to_contain_text(
        re.compile(r"1 row was rejected\. Its line and message were deleted on .+, to keep")
    )
    expect(page.get_by_role("link", name="Download errors (CSV)")).to_have_count(0)
    assert page.request.get(f"/runs/{run_id}/errors.csv").status == 410


def test_check_the_file_is_a_dry_run_that_applies_nothing_then_import_now_applies(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", BAD_AGE_FILE)
    sync = a_sync(live, workspace, sftp, mapping=AGE_MAPPING)
    sign_in(page, workspace.token)
    page.goto(f"/runs?sync={sync.id}")

    check = page.get_by_role("button", name="Check the file")
    expect(check).to_have_accessible_description(re.compile(r"^Check the file is a dry run: "))
    check.click()

    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    checked = run_id_of(page)
    expect(page.get_by_role("heading", name=f"Run {checked} (dry run)", level=1)).to_be_visible()
    expect(status_badge(page)).to_have_text("Partial")
    expect(page.locator("#run-live .run-state")).to_contain_text(
        "A dry run: the file can be imported, except the rejected rows listed below. "
        "Nothing was applied."
    )
    expect(page.get_by_role("table", name="Counts (what an import would do)")).to_be_visible()
    expect(page.get_by_role("table", name="The rejected row")).to_be_visible()
    expect(page.locator("[hx-trigger]")).to_have_count(0)  # no webhook answer to wait for
    assert _user_ids(live, workspace) == []

    page.get_by_role("button", name="Check again").click()
    expect(page).not_to_have_url(re.compile(rf"/runs/{checked}$"))
    expect(page.get_by_role("heading", name=re.compile(r"\(dry run\)$"), level=1)).to_be_visible()
    expect(status_badge(page)).to_have_text("Partial")
    again = run_id_of(page)

    page.get_by_role("button", name="Import now").click()
    expect(page).not_to_have_url(re.compile(rf"/runs/{again}$"))
    imported = run_id_of(page)
    expect(page.get_by_role("heading", name=f"Run {imported}", level=1)).to_be_visible()
    expect(status_badge(page)).to_have_text("Partial")
    expect(page.get_by_role("button", name="Run again")).to_be_visible()
    assert _user_ids(live, workspace) == ["u1", "u3"]

    page.goto(f"/runs?sync={sync.id}")
    triggers = page.get_by_role("table", name="Runs of this sync, newest first").locator(
        "tbody td:nth-child(4)"
    )
    expect(triggers).to_have_text(["Run now", "Run now (dry run)", "Run now (dry run)"])


def _user_ids(live: LiveApp, workspace: Workspace) -> list[str]:
    found = UserStore(live.engine).list_users(workspace.id, limit=10)
    return [user.user_id for user in found]


def test_run_again_lands_on_a_new_run_and_the_history_lists_runs_newest_first(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", GOOD_FILE)
    sync = a_sync(
        live,
        workspace,
        sftp,
        name="Nightly users",
        schedule={"type": "once", "at": "2098-07-01T09:30"},  # never during the test
        timezone="Europe/Paris",
        enabled=True,
        import_unchanged=True,
    )
    sign_in(page, workspace.token)
    page.goto(f"/runs?sync={sync.id}")
    expect(page.get_by_role("heading", name="Runs of Nightly users", level=1)).to_be_visible()
    summary = page.get_by_role("article", name="The sync")
    expect(summary.get_by_role("definition")).to_have_text(
        [
            sftp.path(),
            "userdata_a.csv",
            "Once, at 09:30 on Tuesday 1 July 2098",
            "Europe/Paris",
            "On",
            "2098-07-01 09:30:00 CEST",
        ]
    )
    expect(page.get_by_text("This sync has not run yet.")).to_be_visible()

    first = run_now(page, sync)
    expect(status_badge(page)).to_have_text("Succeeded")
    page.get_by_role("button", name="Run again").click()
    expect(page).not_to_have_url(re.compile(rf"/runs/{first}$"))
    second = run_id_of(page)
    expect(page.get_by_role("heading", name=f"Run {second}", level=1)).to_be_visible()
    expect(status_badge(page)).to_have_text("Succeeded")
    assert second > first

    page.get_by_role("navigation", name="breadcrumb").get_by_role(
        "link", name="Nightly users"
    ).click()
    history = page.get_by_role("table", name="Runs of this sync, newest first")
    expect(history.get_by_role("rowheader")).to_have_text([str(second), str(first)])
    expect(history.get_by_role("link", name=f"Run {first}")).to_have_attribute(
        "href", f"/runs/{first}"
    )
    expect(history.locator(".run-badge")).to_have_text(["Succeeded", "Succeeded"])


def test_a_run_whose_file_is_missing_fails_with_the_reason(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    sync = a_sync(live, workspace, sftp, file="userdata_gone.csv")
    sign_in(page, workspace.token)

    run_now(page, sync)

    expect(status_badge(page)).to_have_text("Failed")
    expect(page.locator("#run-message")).to_contain_text(
        re.compile(r"userdata_gone\.csv does not exist")
    )
    expect(page.get_by_text("then Run again")).to_be_visible()
    expect(page.get_by_role("heading", name="Rejected rows")).to_have_count(0)
    expect(page.get_by_role("button", name="Run again")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    filters = page.get_by_role("navigation", name="Filter runs by status")
    expect(filters.get_by_role("link", name="All")).to_have_attribute("aria-current", "page")
    filters.get_by_role("link", name="Failed").click()
    expect(filters.get_by_role("link", name="Failed")).to_have_attribute("aria-current", "page")
    listed = page.get_by_role("table", name="Runs, newest first")
    expect(listed.locator(".run-badge")).not_to_have_count(0)
    expect(listed.locator(".run-badge", has_not_text="Failed")).to_have_count(0)
    filters.get_by_role("link", name="Queued").click()
    expect(page.get_by_text("No queued runs.")).to_be_visible()


def test_another_workspaces_run_and_sync_are_not_found(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    other = new_workspace(live.engine, prefix="ui")
    theirs = runs.create_run(live.engine, other.id, source="", path="/in/userdata_x.csv")
    connection = stored_connection(
        live,
        other.id,
        NewConnection(name="theirs", host="files.example.com", username="u", password="not-used"),
    )
    their_sync = syncs.create(
        live.engine,
        live.services.box,
        other.id,
        {
            "connection_id": connection.id,
            "folder": "/in",
            "file": "userdata_x.csv",
            "mapping": {"user_id": "id"},
        },
    )
    sign_in(page, workspace.token)

    assert status_of(page, f"/runs/{theirs}") == 404

    expect(page.get_by_role("heading", name="Not found", level=1)).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(f"there is no run {theirs}")
    for path in (f"/runs/{theirs}/errors.csv", f"/runs/{theirs}/progress"):
        assert page.request.get(path).status == 404, path
    for path in (f"/runs?sync={their_sync.id}", f"/syncs/{their_sync.id}/edit"):
        assert status_of(page, path) == 404, path
        expect(page.get_by_role("alert")).to_have_text(f"there is no sync {their_sync.id}")


def test_runs_page_says_how_to_start_then_pages_older_runs_on_a_tablet(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    page.set_viewport_size({"width": 768, "height": 1024})
    sign_in(page, workspace.token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    expect(page.get_by_role("heading", name="Runs", level=1)).to_be_visible()
    expect(page.get_by_text("No runs yet.")).to_be_visible()
    expect(page.get_by_role("link", name="Runs", exact=True)).to_have_attribute(
        "aria-current", "page"
    )

    made = [
        runs.create_run(
            live.engine,
            workspace.id,
            source="",
            path=f"/exports/a/rather/long/folder/name/userdata_{n}.csv",
            status="succeeded",
        )
        for n in range(PAGE_SIZE + 1)
    ]
    page.reload()
    table = page.get_by_role("table", name="Runs, newest first")
    expect(table.get_by_role("rowheader")).to_have_count(PAGE_SIZE)
    expect(table.get_by_role("rowheader").first).to_have_text(str(made[-1]))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.get_by_role("link", name="Older runs").click()
    expect(page.get_by_role("table").get_by_role("rowheader")).to_have_text([str(made[0])])
    expect(page.get_by_role("link", name="Older runs")).to_have_count(0)
    page.get_by_role("link", name="Newest runs").click()
    expect(page.get_by_role("table").get_by_role("rowheader")).to_have_count(PAGE_SIZE)


def test_a_sync_turns_off_and_on_and_is_deleted_from_its_history(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", GOOD_FILE)
    sync = a_sync(live, workspace, sftp, schedule={"type": "daily", "time": "01:00"})
    sign_in(page, workspace.token)
    run_id = run_now(page, sync)
    expect(status_badge(page)).to_have_text("Succeeded")
    page.goto(f"/runs?sync={sync.id}")
    facts = page.locator(".runs-facts")
    expect(facts).to_contain_text("Off: it runs only when you click Run now")

    page.get_by_role("button", name="Turn on").click()

    expect(facts).to_contain_text("On")
    expect(facts).not_to_contain_text("None scheduled")
    on = syncs.get(live.engine, workspace.id, sync.id)
    assert on.enabled
    assert on.next_run_at is not None

    page.get_by_role("button", name="Turn off").click()

    expect(facts).to_contain_text("Off: it runs only when you click Run now")
    assert not syncs.get(live.engine, workspace.id, sync.id).enabled

    page.get_by_text("Delete this sync").click()
    page.get_by_role("button", name=f"Delete {sync.path}").click()

    expect(page).to_have_url(re.compile(r"/runs$"))
    assert syncs.list_all(live.engine, workspace.id) == []
    kept = runs.get_run(live.engine, run_id)
    assert kept is not None
    assert kept.status == "succeeded"
    expect(page.get_by_role("table", name="Runs, newest first")).to_contain_text("userdata_a.csv")


def test_a_long_sync_name_wraps_in_the_breadcrumb_and_the_short_crumbs_stay_whole(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    sftp.put("userdata_a.csv", b"id,email\nu1,a@example.com\n")
    name = "Nightly import of the customer records of every region " * 3
    sync = a_sync(live, workspace, sftp, name=name.strip())
    sign_in(page, workspace.token)
    page.set_viewport_size({"width": 768, "height": 1000})
    run_id = run_now(page, sync)

    crumbs = page.get_by_role("navigation", name="breadcrumb")
    runs_link = crumbs.get_by_role("link", name="Runs", exact=True)
    this_run = crumbs.get_by_text(f"Run {run_id}", exact=True)

    for crumb in (runs_link, this_run):
        box = crumb.bounding_box()
        assert box is not None
        # On one line: squeezed beside the long name, "Runs" stood a letter or two a line
        # (30 px wide, 126 px high).
        assert box["width"] > 50, box
        assert box["height"] < 70, box
