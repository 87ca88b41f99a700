"""Steps the browser tests share: signing in, the "Connect SFTP" form, and a confirmed
connection to the test sshd made through the store (for tests about later pages)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.apiclient import Workspace
from tests.servers.sshd import SftpFolder
from tests.ui.conftest import LiveApp
from usersync.connectivity import test_connection
from usersync.store import connections
from usersync.store.connections import Connection, NewConnection


def sign_in(page: Page, token: str) -> None:
    page.goto("/")
    page.get_by_label("Workspace token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Integrations", level=1)).to_be_visible()


def fill_sftp_form(page: Page, sftp: SftpFolder, name: str) -> None:
    page.get_by_role("button", name="Connect SFTP").click()
    page.get_by_label("Host").fill(sftp.host)
    page.get_by_label("Port").fill(str(sftp.port))
    page.get_by_label("User name").fill(sftp.username)
    page.get_by_label("Connection name").fill(name)


def fingerprints(sftp: SftpFolder) -> re.Pattern[str]:
    return re.compile("^(" + "|".join(re.escape(f) for f in sftp.host_key_fingerprints) + ")$")


def stored_connection(live: LiveApp, workspace_id: int, new: NewConnection) -> Connection:
    """`new` saved through the store, as the Connect form saves it."""
    return connections.create(live.engine, live.services.box, workspace_id, new)


def open_edit(page: Page, token: str, name: str) -> None:
    """Signed in, the edit form of the connection listed as `name`."""
    sign_in(page, token)
    page.get_by_role("link", name=f"Edit {name}").click()


def confirmed_connection(
    live: LiveApp, workspace: Workspace, sftp: SftpFolder, name: str = "test sshd"
) -> Connection:
    """A password connection to the test sshd whose host key is already confirmed."""
    services = live.services
    created = stored_connection(
        live,
        workspace.id,
        NewConnection(
            name=name,
            host=sftp.host,
            port=sftp.port,
            username=sftp.username,
            password=sftp.password,
        ),
    )
    offered = test_connection(
        services.settings, services.engine, services.box, workspace.id, created.id
    )
    return connections.update(
        services.engine,
        services.box,
        workspace.id,
        created.id,
        {"host_key_fingerprint": offered.host_key_fingerprint},
    )


def copied(page: Page, button: str, live: LiveApp) -> str:
    """What the button `button` puts on the clipboard (which the page may then read)."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page.get_by_role("button", name=button).click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    text: str = page.evaluate("navigator.clipboard.readText()")
    return text
