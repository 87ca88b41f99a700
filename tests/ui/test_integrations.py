"""The web UI in a real browser (headless Chromium) against the app served by uvicorn and the
real sshd: signing in, "Connect SFTP" with its host-key confirmation, the integration cards
and their "Sync on" toggle, and the first step of the sync wizard. Playwright's `expect`
waits for each outcome; nothing sleeps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.apiclient import Workspace
from tests.servers.ftpd import VsftpdServer
from tests.servers.s3 import S3Bucket
from tests.servers.sshd import SftpFolder
from tests.ui.conftest import LiveApp
from tests.ui.steps import (
    confirmed_connection,
    copied,
    fill_sftp_form,
    fingerprints,
    open_edit,
    sign_in,
    stored_connection,
)
from usersync.store import connections, syncs
from usersync.store.connections import NewConnection

pytestmark = pytest.mark.integration


def test_a_bad_token_is_refused_next_to_the_token_field(page: Page) -> None:
    page.goto("/integrations")

    expect(page).to_have_url(re.compile(r"/signin\?next=%2Fintegrations$"))
    page.get_by_label("Workspace token").fill("ust_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()

    field = page.get_by_label("Workspace token")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(re.compile("not valid"))
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def test_signing_in_keeps_the_token_in_an_http_only_cookie_until_sign_out(
    page: Page, workspace: Workspace
) -> None:
    sign_in(page, workspace.token)

    [cookie] = [c for c in page.context.cookies() if c["name"] == "usersync_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # no script can read it
    expect(page.get_by_text("No integrations yet")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/integrations")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_connect_form_errors_show_next_to_their_fields_and_keep_what_was_typed(
    page: Page, workspace: Workspace
) -> None:
    sign_in(page, workspace.token)
    page.get_by_role("button", name="Connect SFTP").click()
    page.get_by_label("Host").fill("files.example.com")
    page.get_by_label("Port").fill("99999")

    page.get_by_role("button", name="Test connection").click()

    expect(page.get_by_label("Port")).to_have_accessible_description(re.compile("between 1"))
    expect(page.get_by_label("User name")).to_have_accessible_description(
        "Enter the user name to log in with."
    )
    expect(page.get_by_label("Password", exact=True)).to_have_accessible_description(
        "Enter the password."
    )
    expect(page.get_by_label("Host")).to_have_value("files.example.com")
    expect(page.get_by_label("Host")).not_to_have_attribute("aria-invalid", "true")


def test_a_connection_test_that_waits_on_a_slow_server_says_so_at_once(
    page: Page, workspace: Workspace
) -> None:
    sign_in(page, workspace.token)
    page.get_by_role("button", name="Connect SFTP").click()
    page.get_by_label("Host").fill("sftp.example.com")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password", exact=True).fill("secret")
    # The page as it stays while a server takes its time to answer: the form is not sent
    # (window's listener comes after the page's own, on the document).
    page.evaluate("window.addEventListener('submit', (event) => event.preventDefault())")

    page.get_by_role("button", name="Test connection").click()

    waiting = page.get_by_role("button", name="Testing the connection…")
    expect(waiting).to_have_attribute("aria-busy", "true")
    expect(waiting).to_be_disabled()


def test_a_name_too_long_is_an_error_next_to_it_and_the_form_is_kept(
    page: Page, workspace: Workspace
) -> None:
    sign_in(page, workspace.token)
    page.get_by_role("button", name="Connect SFTP").click()
    name = page.get_by_label("Connection name")
    expect(name).to_have_attribute("maxlength", "200")
    name.evaluate("field => field.removeAttribute('maxlength')")  # as an old browser would
    name.fill("n" * 201)
    page.get_by_label("Host").fill("files.example.com")

    page.get_by_role("button", name="Test connection").click()

    expect(name).to_have_accessible_description("At most 200 characters; this has 201.")
    expect(page.get_by_label("Host")).to_have_value("files.example.com")


def test_connect_sftp_confirm_the_host_key_and_sync_on_asks_first(
    page: Page, workspace: Workspace, sftp: SftpFolder
) -> None:
    sign_in(page, workspace.token)
    fill_sftp_form(page, sftp, "Acme exports")
    page.get_by_label(re.compile("^Password")).fill(sftp.password)

    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#fingerprint")).to_have_text(fingerprints(sftp))
    page.get_by_role("button", name="Confirm and connect").click()

    card = page.get_by_role("article").filter(has=page.get_by_role("heading", name="Acme exports"))
    expect(page.get_by_role("status")).to_contain_text("Connected to Acme exports")
    expect(card.get_by_text("Host key confirmed")).to_be_visible()
    toggle = card.get_by_role("switch", name="Sync on")
    expect(toggle).not_to_be_checked()

    toggle.click()
    dialog = page.get_by_role("dialog", name="Turn sync on for Acme exports?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(toggle).not_to_be_checked()

    toggle.press("Space")  # the keyboard works as well
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Sync on").click()
    expect(page.get_by_role("heading", name="Configure source")).to_be_visible()


def test_a_private_key_file_logs_in_once_the_host_key_is_confirmed(
    page: Page, workspace: Workspace, sftp: SftpFolder
) -> None:
    sign_in(page, workspace.token)
    fill_sftp_form(page, sftp, "With a key")
    page.get_by_role("radio", name="a private key").check()
    page.get_by_label("Private key file").set_input_files(Path(sftp.client_key_path))

    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#fingerprint")).to_have_text(fingerprints(sftp))
    page.get_by_role("button", name="Confirm and connect").click()

    expect(page.get_by_role("status")).to_contain_text("Connected to With a key")


def test_a_key_pair_usersync_makes_shows_its_public_key_until_the_server_lets_it_in(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    sign_in(page, workspace.token)
    fill_sftp_form(page, sftp, "Made key")
    page.get_by_role("radio", name="a key pair usersync makes").check()
    expect(page.get_by_text("When you save, usersync makes an ed25519 key pair")).to_be_visible()
    expect(page.get_by_label("Private key file")).to_be_hidden()
    expect(page.get_by_label(re.compile("^Password"))).to_be_hidden()

    page.get_by_role("button", name="Test connection").click()
    public_key = page.locator("#public-key")
    expect(public_key).to_have_text(re.compile(r"^ssh-ed25519 \S+ usersync Made key$"))
    page.get_by_role("button", name="Confirm and connect").click()
    expect(page.get_by_role("alert")).to_contain_text("refused the login")
    line = public_key.inner_text()
    assert copied(page, "Copy the public key", live) == line

    with sftp.server.authorizing(line):
        page.get_by_role("button", name="Test again").click()
        expect(page.get_by_role("status")).to_contain_text("Connected to sftp://")
    expect(public_key).to_be_hidden()  # it is in, as the server says
    page.goto(page.url.replace("/verify", "/edit"))
    expect(page.locator("#public-key")).to_have_text(line)


def test_the_source_step_expands_folders_fetches_files_and_previews_one(
    page: Page, workspace: Workspace, sftp: SftpFolder
) -> None:
    sftp.mkdir("exports/2026")
    sftp.put("exports/userdata_a.csv", b"userId,email\nu1,a@x.example\nu2,b@x.example\n")
    sftp.put("exports/notes.txt", b"hello")
    sftp.put("exports/UserData_b.csv", b"userId\n")
    sign_in(page, workspace.token)
    fill_sftp_form(page, sftp, "Browse")
    page.get_by_label(re.compile("^Password")).fill(sftp.password)
    page.get_by_role("button", name="Test connection").click()
    page.get_by_role("button", name="Confirm and connect").click()
    page.get_by_role("switch", name="Sync on").click()
    page.get_by_role("dialog").get_by_role("button", name="Sync on").click()

    page.get_by_role("button", name=f"Show the folders in {sftp.base}", exact=True).click()
    page.get_by_role("button", name=f"Show the folders in {sftp.path('exports')}").click()
    expect(page.get_by_role("radio", name="2026")).to_be_visible()
    page.get_by_role("radio", name="exports").check()
    page.get_by_role("button", name="Fetch files").click()

    expect(page.get_by_role("radio", name=re.compile("^userdata_a.csv"))).to_be_checked()
    expect(page.locator("#hidden-note")).to_contain_text("2 files hidden")
    page.get_by_role("button", name="Preview file").click()
    table = page.get_by_role("table")
    expect(table.get_by_role("columnheader")).to_have_text(["userId", "email"])
    expect(table.get_by_role("row")).to_have_count(3)
    expect(table.get_by_role("cell", name="b@x.example")).to_be_visible()


def test_editing_a_connection_keeps_its_password_and_a_new_port_asks_for_the_key_again(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    connection = confirmed_connection(live, workspace, sftp, "Old name")

    open_edit(page, workspace.token, "Old name")
    expect(page.get_by_role("heading", name="Edit Old name")).to_be_visible()
    expect(page.get_by_label("Host")).to_have_value(sftp.host)
    page.get_by_label("Connection name").fill("New name")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_have_text("Saved New name.")
    saved = connections.get(live.engine, live.services.box, workspace.id, connection.id)
    assert saved.has_password  # the empty password field kept it
    assert saved.host_key_fingerprint == connection.host_key_fingerprint

    page.get_by_role("link", name="Edit New name").click()
    page.get_by_label("Port").fill("1")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Test connection")
    moved = connections.get(live.engine, live.services.box, workspace.id, connection.id)
    assert (moved.port, moved.host_key_fingerprint) == (1, None)


def test_a_new_password_is_tested_when_saved_and_a_refused_login_offers_the_edit_page(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    confirmed_connection(live, workspace, sftp, "Files")

    open_edit(page, workspace.token, "Files")
    page.get_by_label(re.compile("^Password")).fill("not the password")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Test connection")
    expect(page.get_by_role("alert")).to_contain_text("refused the login")
    page.get_by_role("button", name="Edit the connection").click()
    page.get_by_label(re.compile("^Password")).fill(sftp.password)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Connected to")
    page.get_by_role("button", name="Back to integrations").click()
    page.get_by_role(
        "link", name="Test connection to Files"
    ).click()  # a confirmed one can be tested too
    expect(page.get_by_role("status")).to_contain_text("Connected to")


def test_deleting_a_connection_deletes_its_syncs(
    page: Page, live: LiveApp, workspace: Workspace, sftp: SftpFolder
) -> None:
    connection = confirmed_connection(live, workspace, sftp, "Doomed")
    syncs.create(
        live.engine,
        live.services.box,
        workspace.id,
        {
            "connection_id": connection.id,
            "folder": sftp.path(),
            "file": "userdata_a.csv",
            "mapping": {"user_id": "id"},
        },
    )
    open_edit(page, workspace.token, "Doomed")

    page.get_by_text("Delete this connection").click()
    page.get_by_role("button", name="Delete Doomed").click()

    expect(page.get_by_text("No integrations yet")).to_be_visible()
    assert syncs.list_all(live.engine, workspace.id) == []


def test_an_s3_bucket_connects_and_its_files_are_browsed(
    page: Page, workspace: Workspace, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put("exports/userdata_a.csv", b"userId,email\nu1,a@x.example\n")
    sign_in(page, workspace.token)
    page.get_by_role("button", name="Connect FTP, FTPS or S3").click()
    page.get_by_role("radio", name="S3-compatible bucket").check()
    expect(page.get_by_label("Host")).to_be_hidden()
    page.get_by_role("button", name="Test connection").click()  # nothing filled in
    expect(page.get_by_label("Bucket", exact=True)).to_have_accessible_description(
        "Enter the bucket's name."
    )
    expect(page.get_by_label("Secret access key")).to_have_accessible_description(
        "Enter the secret access key."
    )

    page.get_by_label("Bucket", exact=True).fill(s3_bucket.name)
    page.get_by_label("Access key ID").fill(s3_bucket.access_key_id)
    page.get_by_label("Secret access key").fill(s3_bucket.secret_access_key)
    page.get_by_label("Endpoint URL").fill(s3_bucket.endpoint_url)
    page.get_by_label("Region").fill(s3_bucket.region)
    page.get_by_role("button", name="Test connection").click()

    expect(page.get_by_role("status")).to_have_text(f"Connected to s3://{s3_bucket.name}.")
    page.get_by_role("button", name="Back to integrations").click()
    card = page.get_by_role("article").filter(
        has=page.get_by_role("heading", name=f"s3://{s3_bucket.name}")
    )
    expect(card.get_by_text("Ready.")).to_be_visible()
    card.get_by_role("switch", name="Sync on").click()
    page.get_by_role("dialog").get_by_role("button", name="Sync on").click()
    page.get_by_role("radio", name="exports").check()
    page.get_by_role("button", name="Fetch files").click()
    expect(page.get_by_role("radio", name=re.compile("^userdata_a.csv"))).to_be_checked()


def test_ftps_needs_its_private_certificate_authority_and_plain_ftp_warns(
    page: Page, workspace: Workspace, vsftpd: VsftpdServer, tmp_path: Path
) -> None:
    sign_in(page, workspace.token)
    page.get_by_role("button", name="Connect FTP, FTPS or S3").click()
    expect(page.get_by_role("radio", name="FTPS")).to_be_checked()
    page.get_by_role("radio", name="FTP", exact=True).check()
    expect(page.get_by_text("Plain FTP sends the password")).to_be_visible()
    expect(page.get_by_label("Certificate authority")).to_be_hidden()
    page.get_by_role("radio", name="FTPS").check()
    expect(page.get_by_role("radio", name="a private key")).to_be_hidden()
    page.get_by_label("Host").fill(vsftpd.host)
    page.get_by_label("Port").fill(str(vsftpd.port))
    page.get_by_label("User name").fill(vsftpd.username)
    page.get_by_label("Connection name").fill("Untrusted")
    page.get_by_label("Password", exact=True).fill(vsftpd.password)
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("alert")).to_contain_text("certificate")

    page.goto("/integrations/new?kind=ftps")
    not_a_certificate = tmp_path / "notes.pem"
    not_a_certificate.write_text("hello")
    page.get_by_label("Certificate authority").set_input_files(not_a_certificate)
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_label("Certificate authority")).to_have_accessible_description(
        re.compile("not a certificate in PEM form")
    )

    page.get_by_label("Host").fill(vsftpd.host)
    page.get_by_label("Port").fill(str(vsftpd.port))
    page.get_by_label("User name").fill(vsftpd.username)
    page.get_by_label("Password", exact=True).fill(vsftpd.password)
    page.get_by_label("Connection name").fill("Trusted")
    page.get_by_label("Certificate authority").set_input_files(vsftpd.ca_file)
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("status")).to_contain_text("Connected to ftps://")


def test_an_s3_connection_is_edited_with_its_own_fields(
    page: Page, live: LiveApp, workspace: Workspace, s3_bucket: S3Bucket
) -> None:
    created = stored_connection(
        live,
        workspace.id,
        NewConnection(
            name="Bucket",
            kind="s3",
            host=s3_bucket.name,
            username=s3_bucket.access_key_id,
            password=s3_bucket.secret_access_key,
            options={"endpoint_url": s3_bucket.endpoint_url, "region": s3_bucket.region},
        ),
    )
    open_edit(page, workspace.token, "Bucket")
    expect(page.get_by_label("Bucket", exact=True)).to_have_value(s3_bucket.name)
    expect(page.get_by_label("Endpoint URL")).to_have_value(s3_bucket.endpoint_url)
    expect(page.get_by_label("Host")).to_be_hidden()
    page.get_by_label("Region").fill("eu-central-1")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_have_text("Saved Bucket.")
    saved = connections.get(live.engine, live.services.box, workspace.id, created.id)
    assert saved.options == {"endpoint_url": s3_bucket.endpoint_url, "region": "eu-central-1"}
    assert (saved.has_password, saved.kind) == (True, "s3")


def test_a_stored_certificate_authority_can_be_forgotten(
    page: Page, live: LiveApp, workspace: Workspace, vsftpd: VsftpdServer
) -> None:
    created = stored_connection(
        live,
        workspace.id,
        NewConnection(
            name="Private CA",
            kind="ftps",
            host=vsftpd.host,
            port=vsftpd.port,
            username=vsftpd.username,
            password=vsftpd.password,
            options={"ca_pem": vsftpd.ca_file.read_text()},
        ),
    )
    open_edit(page, workspace.token, "Private CA")
    page.get_by_role("checkbox", name=re.compile("Forget the stored certificate authority")).check()
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_have_text("Saved Private CA.")
    saved = connections.get(live.engine, live.services.box, workspace.id, created.id)
    assert "ca_pem" not in saved.options
