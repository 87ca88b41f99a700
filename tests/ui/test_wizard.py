"""The sync wizard in a real browser against the real sshd and the app's own worker: the
source, Map properties (suggestions, the conversion preview with its refused cells, errors
next to their fields), Resolve conflicts, every kind of schedule with its description and
next fire times, the summary with its run options and webhook, Import, and the run it
starts. `expect` waits; nothing sleeps."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.apiclient import Workspace
from tests.hooks import signature, webhook_receiver
from tests.servers.sshd import SftpFolder, SshServer
from tests.ui.conftest import LiveApp
from tests.ui.steps import confirmed_connection, sign_in
from usersync.store import UserStore, properties, syncs, tokens, workspaces
from usersync.store.syncs import Sync

pytestmark = pytest.mark.integration

PEOPLE = (
    b"User ID,Email,Age,Newsletter,Signup\n"
    b"u1,ann@example.com,42,yes,2026-01-02\n"
    b"u2,bob@example.com,abc,no,2026-02-03\n"
    b'u3,"cy@example.com",7,no,2026-03-04\n'
)


def open_wizard(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder, data: bytes = PEOPLE
) -> None:
    """Signed in, on the source step of a confirmed connection, with people.csv (`data`)
    chosen."""
    sftp.put("in/userdata_people.csv", data)
    fetch_files(page, live, workspace, sftp, "in")
    expect(page.get_by_role("radio", name=re.compile("^userdata_people.csv"))).to_be_checked()


def fetch_files(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder, folder: str
) -> None:
    """Signed in, on the source step of a confirmed connection, with the files of `folder`
    (inside the test's own folder) fetched."""
    connection = confirmed_connection(live, workspace, sftp, "Acme")
    sign_in(page, workspace.token)
    page.goto(f"/integrations/{connection.id}/sync/new")
    page.get_by_role("button", name=f"Show the folders in {sftp.base}", exact=True).click()
    page.get_by_role("radio", name=folder, exact=True).check()
    page.get_by_role("button", name="Fetch files").click()


def test_a_session_that_ends_mid_wizard_signs_in_again_onto_the_wizards_page(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    sftp.put("in/userdata_people.csv", PEOPLE)
    connection = confirmed_connection(live, workspace, sftp, "Acme")
    sign_in(page, workspace.token)
    page.goto(f"/integrations/{connection.id}/sync/new")
    wizard = urlsplit(page.url)
    page.get_by_role("button", name=f"Show the folders in {sftp.base}", exact=True).click()
    page.get_by_role("radio", name="in", exact=True).check()
    tokens.revoke(live.engine, workspace.token)

    page.get_by_role("button", name="Fetch files").click()  # an htmx fragment's request

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Your session ended")).to_be_visible()
    another = tokens.create_token(live.engine, workspace.id).token
    page.get_by_label("Workspace token").fill(another)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Configure source", level=1)).to_be_visible()
    assert urlsplit(page.url)[2:4] == wizard[2:4]
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()  # the whole page


def open_schedule_step(page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder) -> None:
    """`open_wizard`, then on to the schedule step with every other step's defaults."""
    open_wizard(page, live, workspace, sftp)
    next_step(page, "Map properties")
    next_step(page, "Resolve conflicts")
    next_step(page, "Schedule import")


def next_step(page: Page, title: str) -> None:
    page.get_by_role("button", name=re.compile("^Next")).click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()


def previewed(page: Page, delimiter: str | None = None, encoding: str | None = None) -> Locator:
    """The preview's table, once the file format is chosen (where given) and previewed."""
    for label, value in (("Delimiter", delimiter), ("Encoding", encoding)):
        if value is not None:
            page.get_by_label(label).select_option(value)
    page.get_by_role("button", name="Preview file").click()
    return page.get_by_role("table", name=re.compile("the header and the first"))


def from_map_to_import(page: Page) -> None:
    """Map properties as suggested, and on to the summary with every other step's defaults."""
    for title in ("Resolve conflicts", "Schedule import", "Import"):
        next_step(page, title)


def open_user(page: Page, user_id: str) -> Locator:
    """User 360's record of `user_id`, found through the search box."""
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Users", exact=True
    ).click()
    page.get_by_label("Search by userId").fill(user_id)
    page.get_by_label("Search by userId").press("Enter")
    page.get_by_role("link", name=user_id, exact=True).click()
    return page.get_by_role("main")


def mapping_row(page: Page, column: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=column))


def signed_in_with_a_sync(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder, **values: Any
) -> Sync:
    """Signed in, with people.csv in the folder `in` and a sync of that folder made as the
    API makes one (`values` are its settings)."""
    sftp.put("in/userdata_people.csv", PEOPLE)
    connection = confirmed_connection(live, workspace, sftp, "Acme")
    given = {"connection_id": connection.id, "folder": sftp.path("in"), **values}
    sync = syncs.create(live.engine, live.services.box, workspace.id, given)
    sign_in(page, workspace.token)
    return sync


def the_only_sync(live: LiveApp, workspace: Workspace) -> Sync:
    [sync] = syncs.list_all(live.engine, workspace.id)
    return sync


def schedule_of(live: LiveApp, workspace: Workspace) -> dict[str, Any]:
    return the_only_sync(live, workspace).schedule


def test_a_folder_of_daily_exports_lists_the_newest_first_and_chooses_it(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    workspaces.set_timezone(live.engine, workspace.id, "Asia/Kolkata")  # UTC+05:30
    now = datetime.now(UTC).replace(microsecond=0)
    for days_ago, day in ((2, "2026-11-25"), (0, "2026-11-27"), (1, "2026-11-26")):
        sftp.put(f"daily/userdata_{day}.csv", PEOPLE, mtime=now - timedelta(days=days_ago, hours=1))
    fetch_files(page, live, workspace, sftp, "daily")

    files = page.get_by_role("group", name=re.compile("^Select file")).get_by_role("radio")
    expect(files).to_have_count(3)
    assert files.evaluate_all("radios => radios.map(radio => radio.value)") == [
        "userdata_2026-11-27.csv",
        "userdata_2026-11-26.csv",
        "userdata_2026-11-25.csv",
    ]
    expect(files.first).to_be_checked()
    expect(page.get_by_role("group", name=re.compile("^Select file"))).to_contain_text(
        "3 files, the newest first"
    )
    newest = (now - timedelta(hours=1)).astimezone(ZoneInfo("Asia/Kolkata"))
    expect(files.first).to_have_accessible_name(
        re.compile(re.escape(newest.strftime(", modified %Y-%m-%d %H:%M:%S IST")) + "$")
    )
    next_step(page, "Map properties")
    expect(page.get_by_role("main")).to_contain_text(sftp.path("daily/userdata_2026-11-27.csv"))


def test_the_whole_wizard_imports_the_file_and_lands_on_its_run(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    open_wizard(page, live, workspace, sftp)
    next_step(page, "Map properties")

    expect(page.get_by_label("User ID column")).to_have_value("User ID")
    expect(page.get_by_label("Property for Email")).to_have_value("email")
    expect(page.get_by_label("Type of Newsletter")).to_have_value("boolean")
    expect(page.get_by_label("Type of Signup")).to_have_value("date")
    expect(page.get_by_label("Type of Age")).to_have_value("string")  # "abc" is no number
    preview = page.get_by_role("table", name=re.compile("How the first 3 rows would import"))
    expect(preview).to_have_accessible_name(re.compile("all of them convert"))

    page.get_by_label("Type of Age").select_option("integer")
    expect(preview).to_have_accessible_name(re.compile("1 row would be rejected"))
    refused = preview.locator("td.bad")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("'abc' is not a whole number")
    page.get_by_role("switch", name="Import Signup").uncheck()
    expect(preview.get_by_role("columnheader")).to_have_text(
        ["Line", "userId", "email string", "age integer", "newsletter boolean"]
    )

    next_step(page, "Resolve conflicts")
    page.get_by_role("radio", name="Retain imported user data").check()
    expect(page.get_by_text("Properties the mapping leaves out")).to_be_visible()
    next_step(page, "Schedule import")
    expect(page.get_by_role("radio", name="One time")).to_be_checked()
    expect(page.get_by_role("radio", name="Now")).to_be_checked()
    expect(page.locator("#when")).to_contain_text("Once, right away")
    next_step(page, "Import")

    summary = page.get_by_role("main")
    expect(summary).to_contain_text("userdata_people.csv")
    expect(summary).to_contain_text("Retain imported user data")
    expect(page.get_by_role("table", name="Mapped columns").get_by_role("row")).to_have_count(4)
    page.get_by_label("Sync name").fill("People from Acme")
    page.get_by_role("button", name="Import", exact=True).click()

    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    sync = the_only_sync(live, workspace)
    assert sync.name == "People from Acme"
    assert sync.enabled is True
    assert sync.conflict == "replace"
    assert sync.mapping == {
        "user_id": "User ID",
        "properties": {"email": "Email", "age": "Age", "newsletter": "Newsletter"},
        "types": {"email": "string", "age": "integer", "newsletter": "boolean"},
    }
    assert sync.schedule == {"type": "once"}
    expect(page.get_by_role("main")).to_contain_text("Partial")
    rejected = page.get_by_role("table", name="The rejected row").get_by_role("row").nth(1)
    expect(rejected.get_by_role("cell")).to_have_text(
        ["3", "Age", "abc", "'abc' is not a whole number such as 42 (property 'age' is integer)"]
    )

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Integrations").click()
    syncs_of = page.get_by_role("list", name="Syncs of Acme")
    expect(syncs_of).to_contain_text("People from Acme")
    expect(syncs_of).to_contain_text("Once, right away")
    expect(syncs_of.get_by_role("link", name="Partial")).to_have_attribute(
        "href", re.compile(r"^/runs/\d+$")
    )
    expect(page.get_by_role("switch", name="Sync on")).to_be_checked()

    record = open_user(page, "u3")
    expect(record.get_by_role("heading", level=1)).to_contain_text("u3")
    expect(record).to_contain_text("cy@example.com")
    expect(record.get_by_role("row", name=re.compile("^age"))).to_contain_text("7")


def test_save_and_check_the_file_saves_the_sync_off_and_checks_it_before_any_import(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    open_wizard(page, live, workspace, sftp)
    next_step(page, "Map properties")
    page.get_by_label("Type of Age").select_option("integer")
    next_step(page, "Resolve conflicts")
    next_step(page, "Schedule import")
    next_step(page, "Import")

    check = page.get_by_role("button", name="Save and check the file")
    expect(check).to_have_accessible_description(re.compile("^Save and check the file saves"))
    check.click()

    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"\(dry run\)$"))
    expect(page.locator("#run-live .run-state")).to_contain_text("A dry run: the file can be")
    expect(page.get_by_role("table", name="The rejected row")).to_contain_text("abc")
    expect(page.locator("#run-sync-off")).to_contain_text("The sync is off")
    sync = the_only_sync(live, workspace)
    assert sync.enabled is False
    assert sync.schedule == {"type": "once"}
    assert UserStore(live.engine).list_users(workspace.id, limit=10) == []

    page.get_by_role("button", name="Import now").click()
    expect(page.get_by_role("heading", level=1)).not_to_have_text(re.compile("dry run"))
    expect(page.locator("#run-live .run-state")).to_contain_text("Imported, except the rejected")
    record = open_user(page, "u3")
    expect(record.get_by_role("row", name=re.compile("^age"))).to_contain_text("7")
    assert the_only_sync(live, workspace).enabled is False  # on only when turned on


@pytest.mark.parametrize(
    ("choose", "description", "stored"),
    [
        (
            lambda page: (
                page.get_by_role("radio", name="Repeat").check(),
                page.get_by_role("radio", name="Daily").check(),
                page.get_by_label("Time", exact=True).fill("02:30"),
            ),
            "At 02:30, every day",
            {"type": "daily", "time": "02:30"},
        ),
        (
            lambda page: (
                page.get_by_role("radio", name="Repeat").check(),
                page.get_by_role("radio", name="Weekly").check(),
                page.get_by_role("checkbox", name="Monday").check(),
                page.get_by_role("checkbox", name="Thursday").check(),
                page.get_by_label("Time", exact=True).fill("09:30"),
            ),
            "At 09:30, on Monday and Thursday",
            {"type": "weekly", "days": ["MON", "THU"], "time": "09:30"},
        ),
        (
            lambda page: (
                page.get_by_role("radio", name="Repeat").check(),
                page.get_by_role("radio", name="Monthly").check(),
                page.get_by_label("Day of the month").fill("31"),
                page.get_by_label("Time", exact=True).fill("01:00"),
            ),
            "At 01:00, on day 31 of the month (the last day in shorter months)",
            {"type": "monthly", "day": 31, "time": "01:00"},
        ),
        (
            lambda page: (
                page.get_by_role("radio", name="Specific date & time").check(),
                page.get_by_label("Date and time").fill("2031-12-01T09:00"),
            ),
            "Once, at 09:00 on Monday 1 December 2031",
            {"type": "once", "at": "2031-12-01T09:00"},
        ),
        (
            lambda page: (
                page.get_by_role("radio", name="Custom").check(),
                page.get_by_label("Cron expression").fill("0 0 1 * * ?"),
            ),
            "At 01:00, every day",
            {"type": "cron", "expression": "0 0 1 * * ?"},
        ),
    ],
    ids=["daily", "weekly", "monthly", "specific-date", "cron"],
)
def test_each_schedule_kind_is_described_with_its_next_runs_and_saved(
    page: Page,
    live: LiveApp,
    workspace: Workspace,
    sftp: SftpFolder,
    choose: Any,
    description: str,
    stored: dict[str, Any],
) -> None:
    open_schedule_step(page, live, workspace, sftp)
    page.get_by_label("Time zone").fill("Europe/Berlin")

    choose(page)

    when = page.locator("#when")
    expect(when.locator("#schedule-description")).to_have_text(description)
    expect(when).to_contain_text("Europe/Berlin")
    runs = 1 if stored["type"] == "once" else 5
    expect(
        page.get_by_role("list", name=f"The next {runs} runs").get_by_role("listitem")
    ).to_have_count(runs)
    next_step(page, "Import")
    expect(page.get_by_role("main")).to_contain_text(description)
    page.get_by_role("button", name="Import", exact=True).click()

    expect(page).to_have_url(re.compile(r"/runs\?sync=\d+$"))
    sync = the_only_sync(live, workspace)
    assert sync.schedule == stored
    assert sync.timezone == "Europe/Berlin"
    assert sync.next_run_at is not None


@pytest.mark.parametrize("workspace_zone", ["Asia/Kolkata", None])
def test_a_new_schedule_starts_in_the_workspaces_zone_else_the_browsers(
    browser: Browser,
    live: LiveApp,
    workspace: Workspace,
    sftp: SftpFolder,
    workspace_zone: str | None,
) -> None:
    if workspace_zone is not None:
        workspaces.set_timezone(live.engine, workspace.id, workspace_zone)
    offered = workspace_zone or "America/Lima"  # the browser's
    context = browser.new_context(base_url=live.url, timezone_id="America/Lima")
    page = context.new_page()
    try:
        open_schedule_step(page, live, workspace, sftp)
        expect(page.get_by_label("Time zone")).to_have_value(offered)
        expect(page.locator("#when")).to_contain_text(offered)
        next_step(page, "Import")
        page.get_by_role("button", name="Import", exact=True).click()
        expect(page).to_have_url(re.compile(r"/runs/\d+$"))  # the default: once, now
    finally:
        context.close()
    assert the_only_sync(live, workspace).timezone == offered


def test_a_bad_cron_expression_is_explained_inline_and_keeps_the_wizard_on_its_step(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    open_schedule_step(page, live, workspace, sftp)
    page.get_by_role("radio", name="Custom").check()
    page.get_by_label("Cron expression").fill("0 0/120 * * * ?")

    expect(page.locator("#when-problem")).to_contain_text("120")

    page.get_by_role("button", name=re.compile("^Next")).click()
    field = page.get_by_label("Cron expression")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(re.compile("120"))
    expect(field).to_have_value("0 0/120 * * * ?")
    expect(page.get_by_role("radio", name="Custom")).to_be_checked()
    # Said once, beside the field; the next runs' place says only why it is empty.
    expect(page.locator("#when")).to_have_text(
        "The next runs show once the schedule above is complete."
    )


def test_a_weekly_schedule_without_days_yet_asks_for_them_without_an_error(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    open_schedule_step(page, live, workspace, sftp)
    page.get_by_role("radio", name="Repeat").check()
    page.get_by_role("radio", name="Weekly").check()

    asked = page.locator("#when-problem")
    expect(asked).to_have_text("Choose at least one day.")
    expect(asked).to_have_class("when-hint")
    page.get_by_role("checkbox", name="Tuesday").check()
    expect(page.locator("#schedule-description")).to_contain_text("Tuesday")


def test_mapping_errors_show_next_to_their_fields_and_keep_what_was_typed(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    properties.create(live.engine, workspace.id, "age", "integer")
    open_wizard(page, live, workspace, sftp)
    next_step(page, "Map properties")
    expect(mapping_row(page, "Age")).to_contain_text("existing property")
    expect(page.get_by_label("Type of Age")).to_have_value("integer")  # the catalog's type

    page.get_by_label("Type of Age").select_option("string")
    page.get_by_label("Property for Signup").fill("email")
    page.get_by_label("Property for Newsletter").fill("2fast")
    page.get_by_role("button", name=re.compile("^Next")).click()

    expect(page.get_by_label("Type of Age")).to_have_accessible_description(
        re.compile("age is a integer property already")
    )
    expect(page.get_by_label("Property for Signup")).to_have_accessible_description(
        "Column Email feeds email already: give another name."
    )
    expect(page.get_by_label("Property for Newsletter")).to_have_accessible_description(
        re.compile("'2fast' is not a valid property name")
    )
    expect(page.get_by_label("Property for Newsletter")).to_have_value("2fast")
    expect(page.get_by_role("heading", name="Map properties", level=1)).to_be_visible()


def test_back_and_change_keep_every_choice(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    open_wizard(page, live, workspace, sftp)
    next_step(page, "Map properties")
    page.get_by_label("Property for Email").fill("work_email")
    next_step(page, "Resolve conflicts")
    expect(page.get_by_role("radio", name="Update existing user data")).to_be_checked()
    page.get_by_role("radio", name="Retain imported user data").check()
    expect(page.get_by_role("checkbox", name="Empty cells clear their property")).to_be_hidden()
    page.get_by_role("radio", name="Update existing user data").check()
    page.get_by_role("checkbox", name="Empty cells clear their property").check()
    page.get_by_role("switch", name="Leave them as they are").check()
    next_step(page, "Schedule import")
    page.get_by_role("radio", name="Repeat").check()
    page.get_by_label("Time", exact=True).fill("04:15")
    next_step(page, "Import")

    page.get_by_role("button", name="Change the properties").click()
    expect(page.get_by_label("Property for Email")).to_have_value("work_email")
    page.get_by_role("button", name="Back").click()
    expect(page.get_by_role("radio", name=re.compile("^userdata_people.csv"))).to_be_checked()
    next_step(page, "Map properties")
    next_step(page, "Resolve conflicts")
    expect(page.get_by_role("checkbox", name="Empty cells clear their property")).to_be_checked()
    expect(page.get_by_role("switch", name="Leave them as they are")).to_be_checked()
    next_step(page, "Schedule import")
    expect(page.get_by_label("Time", exact=True)).to_have_value("04:15")
    next_step(page, "Import")
    expect(page.get_by_role("main")).to_contain_text("work_email")
    expect(page.get_by_role("main")).to_contain_text("empty cells clear their property")
    expect(page.get_by_role("main")).to_contain_text("the file does not change are left as")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs\?sync=\d+$"))
    sync = the_only_sync(live, workspace)
    assert (sync.conflict, sync.empty_cells, sync.skip_unchanged_users) == ("update", "clear", True)
    assert sync.schedule == {"type": "daily", "time": "04:15"}


def fits_the_width(page: Page) -> bool:
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def test_every_step_fits_a_tablet_and_goes_forward_with_the_keyboard(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    page.set_viewport_size({"width": 768, "height": 1024})
    open_wizard(page, live, workspace, sftp)
    assert fits_the_width(page)
    for title in ("Map properties", "Resolve conflicts", "Schedule import", "Import"):
        next_step(page, title)
        assert fits_the_width(page), f"{title} is wider than a tablet"
    page.get_by_label("Sync name").fill("From the keyboard")
    page.get_by_label("Sync name").press("Enter")  # the form's default action: Import
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    assert the_only_sync(live, workspace).name == "From the keyboard"


def test_a_semicolon_file_in_windows_1252_is_read_as_the_user_says(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    # As Excel writes a CSV file with a German or French locale.
    open_wizard(page, live, workspace, sftp, "Kunde;Stadt\nk1;Málaga\nk2;Zürich\n".encode("cp1252"))
    expect(page.get_by_label("Delimiter")).to_have_value(",")
    expect(page.get_by_label("Encoding")).to_have_value("")

    table = previewed(page)
    expect(table.get_by_role("columnheader")).to_have_text(["Kunde;Stadt"])
    expect(page.locator("#format-hint")).to_have_text(
        "The rows look separated by semicolons: choose Semicolon as the delimiter, "
        "then preview again."
    )

    expect(previewed(page, delimiter=";").get_by_role("columnheader")).to_have_text(
        ["Kunde", "Stadt"]
    )
    expect(page.locator("#format-hint")).to_have_text(
        "Choose the file's encoding above: files saved by Excel on Windows are usually "
        "Windows-1252."
    )
    table = previewed(page, encoding="cp1252")
    expect(table.get_by_role("columnheader")).to_have_text(["Kunde", "Stadt"])
    expect(table.get_by_role("row").nth(1).get_by_role("cell")).to_have_text(["k1", "Málaga"])
    expect(page.locator("#format-hint")).to_have_count(0)

    next_step(page, "Map properties")
    page.get_by_label("User ID column").select_option("Kunde")
    from_map_to_import(page)
    expect(page.get_by_role("main")).to_contain_text("semicolon-separated, cp1252")
    page.get_by_role("button", name="Change the source").click()
    expect(page.get_by_label("Delimiter")).to_have_value(";")
    expect(page.get_by_label("Encoding")).to_have_value("cp1252")
    next_step(page, "Map properties")
    from_map_to_import(page)
    page.get_by_role("button", name="Import", exact=True).click()

    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    expect(page.get_by_role("main")).to_contain_text("Succeeded")
    sync = the_only_sync(live, workspace)
    assert (sync.delimiter, sync.encoding) == (";", "cp1252")
    record = open_user(page, "k1")
    expect(record.get_by_role("row", name=re.compile("^stadt"))).to_contain_text("Málaga")


def test_a_syncs_settings_change_in_the_wizard_and_its_other_settings_stay(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    before = signed_in_with_a_sync(
        page,
        live,
        workspace,
        sftp,
        name="People",
        file="userdata_people.csv",
        mapping={
            "user_id": "User ID",
            "properties": {"work_email": "Email", "age": "Age"},
            "types": {"age": "integer"},
        },
        schedule={"type": "weekly", "days": ["MON", "THU"], "time": "09:30"},
        timezone="Europe/Berlin",
        max_rejected=7,
        webhook_url="https://hooks.example/people",
        webhook_secret="old-secret",
        enabled=True,
    )
    page.goto(f"/runs?sync={before.id}")
    facts = page.get_by_role("article", name="The sync")
    expect(facts).to_contain_text(
        "Webhook https://hooks.example/people, told of failed runs", use_inner_text=True
    )
    page.get_by_role("button", name="Change settings").click()

    expect(page.get_by_role("heading", name="Save changes", level=1)).to_be_visible()
    summary = page.get_by_role("main")
    expect(summary).to_contain_text("Changing the sync People")
    expect(summary).to_contain_text("userdata_people.csv")
    expect(page.get_by_role("table", name="Mapped columns").get_by_role("row")).to_have_count(3)
    expect(summary).to_contain_text("Update existing user data")
    expect(page.locator("#schedule-description")).to_contain_text("09:30")
    expect(page.get_by_label("Sync name")).to_have_value("People")
    expect(page.get_by_label("Rejected rows allowed")).to_have_value("7")
    expect(page.get_by_role("radio", name="Leave it")).to_be_checked()
    expect(page.get_by_label("Address")).to_have_value("https://hooks.example/people")
    expect(page.get_by_role("radio", name="Failed runs")).to_be_checked()
    expect(page.get_by_label(re.compile("^Secret"))).to_have_accessible_name(
        "Secret (empty: keep the stored one)"
    )
    expect(summary).to_contain_text("Saving leaves the sync on")

    expect(summary).to_contain_text("The chosen file, read again each time")

    page.get_by_role("button", name="Change the source").click()
    expect(page.get_by_role("radio", name=re.compile("^userdata_people.csv"))).to_be_checked()
    page.get_by_role("radio", name=re.compile("^The newest userdata_")).check()
    next_step(page, "Map properties")
    expect(page.get_by_label("Property for Email")).to_have_value("work_email")
    expect(page.get_by_label("Type of Age")).to_have_value("integer")
    expect(page.get_by_role("switch", name="Import Signup")).not_to_be_checked()
    page.get_by_role("switch", name="Import Newsletter").check()
    next_step(page, "Resolve conflicts")
    page.get_by_role("radio", name="Retain imported user data").check()
    next_step(page, "Schedule import")
    expect(page.get_by_role("radio", name="Repeat")).to_be_checked()
    expect(page.get_by_label("Time", exact=True)).to_have_value("09:30")
    page.get_by_label("Time", exact=True).fill("10:45")
    next_step(page, "Save changes")
    expect(page.get_by_role("main")).to_contain_text(
        "The newest userdata_*.csv file in the folder at run time"
    )
    page.get_by_label("Rejected rows allowed").fill("three")
    page.get_by_role("radio", name="Move it to a folder").check()
    page.get_by_label("Folder to move imported files to").fill(sftp.path("in"))
    page.get_by_role("button", name="Save changes", exact=True).click()
    expect(page.get_by_label("Rejected rows allowed")).to_have_accessible_description(
        "Give a whole number of rows (0 or more), or leave it empty."
    )
    expect(page.get_by_label("Folder to move imported files to")).to_have_accessible_description(
        "Give a folder other than the one the files come from."
    )
    page.get_by_label("Rejected rows allowed").fill("3")
    page.get_by_label("Folder to move imported files to").fill("/archive")
    page.get_by_role("radio", name="Every run").check()
    page.get_by_role("button", name="Save changes", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/runs\?sync={before.id}$"))
    after = the_only_sync(live, workspace)
    assert (after.max_rejected, after.after_import, after.move_to) == (3, "move", "/archive")
    assert after.mapping["properties"] == {
        "work_email": "Email",
        "age": "Age",
        "newsletter": "Newsletter",
    }
    assert after.mapping["types"]["newsletter"] == "boolean"
    assert after.conflict == "replace"
    assert (after.file_choice, after.file) == ("newest", "userdata_people.csv")
    assert after.schedule == {"type": "weekly", "days": ["MON", "THU"], "time": "10:45"}
    assert (after.name, after.timezone, after.enabled) == ("People", "Europe/Berlin", True)
    assert (after.webhook_url, after.webhook_on) == ("https://hooks.example/people", "always")
    assert syncs.webhook_secret(live.engine, live.services.box, workspace.id, after.id) == (
        "old-secret"
    )
    assert after.next_run_at is not None
    assert after.next_run_at != before.next_run_at
    expect(page.get_by_role("main")).to_contain_text("10:45")
    expect(facts).to_contain_text("After import The file moves to /archive", use_inner_text=True)
    expect(facts).to_contain_text("told of every run")


def test_a_webhook_set_in_the_wizard_hears_of_the_run_and_its_secret_stays_off_the_page(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    open_wizard(page, live, workspace, sftp)
    next_step(page, "Map properties")
    from_map_to_import(page)
    address, secret = page.get_by_label("Address"), page.get_by_label(re.compile("^Secret"))
    unchanged = page.get_by_role("switch", name="Import a file again when it has not changed")
    expect(unchanged).not_to_be_checked()
    expect(page.get_by_role("radio", name="Failed runs")).to_be_checked()

    with webhook_receiver() as hook:
        address.fill("hooks.example/usersync")
        page.get_by_role("radio", name="Every run").check()
        secret.fill("s3cret-hook")
        unchanged.check()
        page.get_by_role("button", name="Import", exact=True).click()

        expect(address).to_have_accessible_description(
            "Give an address that starts with https:// (or http://)."
        )
        page.get_by_role("button", name="Send a test call").click()
        expect(page.locator("#webhook-test")).to_have_text(
            "Give an address that starts with https:// (or http://)."
        )
        expect(secret).to_have_accessible_description(
            "Type the secret again: the page does not keep it."
        )
        assert "s3cret-hook" not in page.content()
        expect(page.get_by_role("radio", name="Every run")).to_be_checked()
        expect(unchanged).to_be_checked()
        assert syncs.list_all(live.engine, workspace.id) == []
        address.fill(hook.url)
        secret.fill("s3cret-hook")
        page.get_by_role("button", name="Send a test call").click()
        expect(page.locator("#webhook-test")).to_have_text("Sent: the address answered 204.")
        tried_headers, tried = hook.next_call()
        assert json.loads(tried)["event"] == "webhook.test"
        assert tried_headers["X-Usersync-Signature"] == signature("s3cret-hook", tried)
        page.get_by_role("button", name="Import", exact=True).click()

        expect(page).to_have_url(re.compile(r"/runs/\d+$"))
        headers, body = hook.next_call()
        # The run's page polls on until the answer is recorded, and shows it.
        expect(page.locator("#run-webhook")).to_have_text("The sync's webhook answered 204.")

    sync = the_only_sync(live, workspace)
    assert (sync.webhook_url, sync.webhook_on) == (hook.url, "always")
    assert (sync.has_webhook_secret, sync.import_unchanged) == (True, True)
    report = json.loads(body)
    assert (report["sync_id"], report["status"]) == (sync.id, "succeeded")
    assert headers["X-Usersync-Signature"] == signature("s3cret-hook", body)
    page.goto(f"/syncs/{sync.id}/edit")
    expect(address).to_have_value(hook.url)
    assert "s3cret-hook" not in page.content()


def test_changing_a_sync_the_test_call_is_signed_with_its_stored_secret(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    with webhook_receiver() as hook:
        hooked = signed_in_with_a_sync(
            page,
            live,
            workspace,
            sftp,
            file="userdata_people.csv",
            mapping={"user_id": "User ID", "properties": {"email": "Email"}},
            webhook_url=hook.url,
            webhook_secret="stored-secret",
        )
        page.goto(f"/syncs/{hooked.id}/edit")
        page.get_by_role("button", name="Send a test call").click()
        expect(page.locator("#webhook-test")).to_have_text("Sent: the address answered 204.")
        headers, body = hook.next_call()
        page.get_by_role("checkbox", name="Remove the stored secret").check()
        page.get_by_role("button", name="Send a test call").click()
        expect(page.locator("#webhook-test")).to_contain_text("the call was not signed")
        unsigned, _ = hook.next_call()

    assert json.loads(body)["sync_id"] == hooked.id
    assert headers["X-Usersync-Signature"] == signature("stored-secret", body)
    assert "X-Usersync-Signature" not in unsigned
    assert "stored-secret" not in page.content()


def test_a_sync_the_wizard_cannot_show_points_to_the_api(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    newest = signed_in_with_a_sync(
        page,
        live,
        workspace,
        sftp,
        file="userdata_people.csv",
        mapping={"user_id": "id", "properties": {"email": "mail", "contact": "mail"}},
    )
    page.goto(f"/runs?sync={newest.id}")
    expect(page.get_by_role("button", name="Change settings")).to_have_count(0)
    expect(page.get_by_role("main")).to_contain_text(f"PATCH /api/syncs/{newest.id}")

    answer = page.goto(f"/syncs/{newest.id}/edit")

    assert answer is not None
    assert answer.status == 409
    expect(page.get_by_role("alert")).to_contain_text("one of its columns feeds two properties")


def test_a_sync_of_the_folders_newest_file_made_without_one_asks_for_a_sample_to_map(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    newest = signed_in_with_a_sync(
        page,
        live,
        workspace,
        sftp,
        file_choice="newest",
        mapping={"user_id": "User ID", "properties": {"email": "Email"}},
    )
    page.goto(f"/syncs/{newest.id}/edit")
    summary = page.get_by_role("main")
    expect(summary).to_contain_text("None chosen: choose one to map its columns")
    expect(summary).to_contain_text("The newest userdata_*.csv file in the folder at run time")

    page.get_by_role("button", name="Change the properties").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose a file in Configure source first")
    page.get_by_role("button", name="Back").click()
    expect(page.get_by_role("radio", name=re.compile("^The newest userdata_"))).to_be_checked()
    page.get_by_role("radio", name=re.compile("^userdata_people.csv")).check()
    next_step(page, "Map properties")
    expect(page.get_by_label("Property for Email")).to_have_value("email")
    expect(page.get_by_role("switch", name="Import Age")).not_to_be_checked()
    for title in ("Resolve conflicts", "Schedule import", "Save changes"):
        next_step(page, title)
    page.get_by_role("button", name="Save changes", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/runs\?sync={newest.id}$"))
    after = the_only_sync(live, workspace)
    assert (after.file_choice, after.file) == ("newest", "userdata_people.csv")
    assert after.mapping["properties"] == {"email": "Email"}


def test_the_browsers_back_and_forward_move_between_steps_without_resending_a_form(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    open_wizard(page, live, workspace, sftp)
    next_step(page, "Map properties")
    page.get_by_label("Property for Email").fill("2fast")
    page.get_by_role("button", name=re.compile("^Next")).click()
    expect(page.get_by_label("Property for Email")).to_have_accessible_description(
        re.compile("'2fast' is not a valid property name")
    )
    page.reload()  # the step with its errors, shown again: no form is sent again
    expect(page.get_by_label("Property for Email")).to_have_value("2fast")
    page.get_by_label("Property for Email").fill("work_email")
    next_step(page, "Resolve conflicts")
    page.get_by_role("radio", name="Retain imported user data").check()
    next_step(page, "Schedule import")

    page.go_back()
    expect(page.get_by_role("heading", name="Resolve conflicts", level=1)).to_be_visible()
    page.go_back()
    expect(page.get_by_role("heading", name="Map properties", level=1)).to_be_visible()
    page.go_forward()
    expect(page.get_by_role("heading", name="Resolve conflicts", level=1)).to_be_visible()
    page.get_by_role("radio", name="Retain imported user data").check()
    next_step(page, "Schedule import")
    next_step(page, "Import")
    expect(page.get_by_role("main")).to_contain_text("work_email")
    page.reload()
    expect(page.get_by_role("heading", name="Import", level=1)).to_be_visible()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))  # the one-time run, started now
    sync = the_only_sync(live, workspace)
    assert sync.conflict == "replace"
    assert sync.mapping["properties"]["work_email"] == "Email"


def test_a_wizard_step_that_is_no_longer_kept_starts_the_wizard_again_saying_why(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    open_wizard(page, live, workspace, sftp)
    next_step(page, "Map properties")
    kept = page.url
    assert re.search(r"/sync/new\?step=[\w-]+$", kept)

    page.goto(re.sub(r"step=[\w-]+$", "step=unknown", kept))
    expect(page.get_by_role("heading", name="Configure source", level=1)).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("That step of the wizard is no longer kept")
    other = confirmed_connection(live, workspace, sftp, "Other")  # kept for Acme, not Other
    page.goto(re.sub(r"/integrations/\d+/", f"/integrations/{other.id}/", kept))
    expect(page.get_by_role("alert")).to_contain_text("That step of the wizard is no longer kept")
    page.goto(kept)
    expect(page.get_by_role("heading", name="Map properties", level=1)).to_be_visible()


def test_a_new_sync_starts_in_the_accounts_home_folder(
    page: Page, live: LiveApp, workspace: Workspace
) -> None:
    with SshServer(start_folder="/home/alice") as server:
        home = server.folder("/home/alice")
        home.put("userdata_people.csv", PEOPLE)
        connection = confirmed_connection(live, workspace, home, "Alice's server")
        sign_in(page, workspace.token)
        page.goto(f"/integrations/{connection.id}/sync/new")

        expect(page.get_by_role("radio", name="/home/alice (your home folder)")).to_be_checked()
        page.get_by_role("button", name="Fetch files").click()
        expect(page.get_by_role("radio", name=re.compile("^userdata_people.csv"))).to_be_checked()
        next_step(page, "Map properties")
        from_map_to_import(page)
        expect(page.get_by_role("main")).to_contain_text("/home/alice/userdata_people.csv")
