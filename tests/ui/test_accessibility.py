"""Every kind of page, audited by axe-core (the accessibility engine of browsers' developer
tools) in the real browser: WCAG 2 A and AA and axe's best practices, no violation allowed.
axe-core comes from the npm registry with the web UI's assets (`make install`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.apiclient import Workspace
from tests.servers.sshd import SftpFolder
from tests.ui.conftest import LiveApp
from tests.ui.steps import fill_sftp_form
from tests.ui.test_wizard import next_step, open_wizard

pytestmark = pytest.mark.integration

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


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


def test_every_kind_of_page_passes_axe(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
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
    for address in ("/integrations", "/runs", "/users", "/users/u1", "/tokens"):
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
