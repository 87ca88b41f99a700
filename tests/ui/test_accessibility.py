"""Every kind of page, audited by axe-core (the accessibility engine of browsers' developer
tools) in the real browser: WCAG 2 A and AA and axe's best practices, no violation allowed.
axe-core comes from the npm registry with the web UI's assets (`make install`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from tests.apiclient import Workspace
from tests.servers.sshd import SftpFolder
from tests.ui.conftest import LiveApp
from tests.ui.steps import fill_sftp_form
from tests.ui.test_wizard import next_step, open_wizard

pytestmark = pytest.mark.integration

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 1.4.10 Reflow: content 320 CSS px wide, with no scrolling sideways.
PHONE: ViewportSize = {"width": 320, "height": 640}


def violations(page: Page, name: str) -> list[str]:
    """axe-core's findings on the page as it is now, one line each, named `name`."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make install` (npm ci)")
    page.evaluate(AXE.read_text())  # through the debugger: the pages' CSP allows no script
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{name}: {found['id']} ({found['impact']}): {found['help']} at "
        + ", ".join(" ".join(node["target"]) for node in found["nodes"][:3])
        for found in result["violations"]
    ]


# The pages follow the system's light or dark; on a phone, wide tables scroll on their own.
@pytest.mark.parametrize(
    ("scheme", "phone"), [("light", False), ("dark", True)], ids=["light", "dark-phone"]
)
def test_every_kind_of_page_passes_axe(
    page: Page,
    live: LiveApp,
    workspace: Workspace,
    sftp: SftpFolder,
    scheme: Literal["light", "dark"],
    phone: bool,
) -> None:
    page.emulate_media(color_scheme=scheme)
    if phone:
        page.set_viewport_size(PHONE)
    found: list[str] = []
    page.goto("/signin")
    found += violations(page, "sign in")
    open_wizard(page, live, workspace, sftp)  # signs in
    found += violations(page, "Configure source")
    next_step(page, "Map properties")
    page.get_by_label("Property for Email").fill("2fast")
    page.get_by_role("button", name=re.compile("^Next")).click()
    expect(page.get_by_role("heading", name="Map properties", level=1)).to_be_visible()
    found += violations(page, "Map properties, with an error")
    page.get_by_label("Property for Email").fill("email")
    for title in ("Resolve conflicts", "Schedule import", "Import"):
        next_step(page, title)
        found += violations(page, title)
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    expect(page.get_by_role("heading", name="Rejected rows")).to_be_visible()
    found += violations(page, "a run")
    for address in ("/integrations", "/runs", "/users", "/users/u1", "/tokens", "/workspace"):
        page.goto(address)
        found += violations(page, address)
    page.goto("/integrations")
    fill_sftp_form(page, sftp, "")
    page.get_by_role("button", name="Test connection").click()  # no password: errors
    expect(page.get_by_label(re.compile("^Password"))).to_have_accessible_description(
        re.compile("Enter the password")
    )
    found += violations(page, "Connect SFTP, with errors")
    page.get_by_role("radio", name="a key pair usersync makes").check()
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("button", name="Confirm and connect")).to_be_visible()
    expect(page.get_by_role("button", name="Copy the public key")).to_be_visible()
    found += violations(page, "Test connection, its host key to confirm and its public key")

    assert found == []


# Boxes that scroll sideways on their own (wide tables, code): what is inside them may be
# wider, except a table's caption, which must be readable without scrolling.
_OWN_SCROLL = ".table-scroll, .overflow-auto, pre"
_OVERFLOWING = f"""() => {{
    const right = e => {{  // of a caption, its text: its box is as wide as its table
        if (e.tagName !== "CAPTION") return e.getBoundingClientRect().right;
        const text = document.createRange();
        text.selectNodeContents(e);
        return text.getBoundingClientRect().right;
    }};
    return [...document.querySelectorAll("body *")]
        .filter(e => e.getClientRects().length && right(e) > innerWidth + 1
            && (!e.parentElement.closest({_OWN_SCROLL!r}) || e.tagName === "CAPTION"))
        .slice(0, 3).map(e => e.outerHTML.slice(0, 100));
}}"""


def overflowing(page: Page, name: str) -> list[str]:
    """The elements of the page that stand out past the right edge of the window (the page
    scrolls sideways, or a caption is cut), one line each."""
    wide = page.evaluate("document.documentElement.scrollWidth") > page.evaluate("innerWidth")
    found: list[str] = page.evaluate(_OVERFLOWING)
    return [f"{name}: {html}" for html in found] or ([f"{name}: scrolls sideways"] if wide else [])


def test_every_kind_of_page_fits_a_phone_without_scrolling_sideways(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    page.set_viewport_size(PHONE)
    found: list[str] = []
    page.goto("/signin")
    found += overflowing(page, "sign in")
    open_wizard(page, live, workspace, sftp)
    found += overflowing(page, "Configure source")
    for title in ("Map properties", "Resolve conflicts", "Schedule import", "Import"):
        next_step(page, title)
        found += overflowing(page, title)
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("heading", name="Rejected rows")).to_be_visible()
    found += overflowing(page, "a run")
    sync_history = page.get_by_role("navigation", name="breadcrumb").get_by_role("link").nth(1)
    sync_history.click()
    expect(page).to_have_url(re.compile(r"/runs\?sync=\d+$"))
    found += overflowing(page, "a sync's history")
    page.get_by_role("button", name="Change settings").click()
    expect(page).to_have_url(re.compile(r"/syncs/\d+/edit$"))
    found += overflowing(page, "a sync's settings")
    for address in ("/integrations", "/runs", "/users", "/users/u1", "/tokens", "/workspace"):
        page.goto(address)
        found += overflowing(page, address)
    for form in ("Connect SFTP", "Connect FTP, FTPS or S3"):
        page.goto("/integrations")
        page.get_by_role("button", name=form).click()
        expect(page.get_by_role("button", name="Test connection")).to_be_visible()
        found += overflowing(page, form)
    page.goto("/tokens")
    page.get_by_role("button", name=re.compile("^Create")).click()
    expect(page.get_by_role("button", name=re.compile("^Copy"))).to_be_visible()
    found += overflowing(page, "a new token")

    assert found == [], "\n".join(found)
