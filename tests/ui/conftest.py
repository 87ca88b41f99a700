"""Fixtures of the browser tests: the app served by uvicorn on a loopback port, and Debian's
Chromium driven by Playwright (headless; Playwright downloads no browser of its own).

    live       package   LiveApp: the app's URL and services (SQLite, with its worker)
    workspace  function  a fresh workspace of `live`, with a token
    browser    session   headless /usr/bin/chromium
    page       function  a page in a fresh browser context (no cookies), failing the test
                         on any script error or Content-Security-Policy violation
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine

from tests.apiclient import Workspace, api_settings, new_workspace
from tests.servers import LOOPBACK
from tests.ui.browser import CHROMIUM, MISSING, headless_chromium, record_errors
from usersync.web.app import create_app
from usersync.web.deps import Services
from usersync.web.pages.render import STATIC

START_TIMEOUT = 15.0
EXPECT_TIMEOUT_MS = 15_000  # the connection test waits for a real sshd

pytestmark = pytest.mark.integration


@dataclass
class LiveApp:
    url: str
    services: Services

    @property
    def engine(self) -> Engine:
        return self.services.engine


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process keeps its own
        pass


@pytest.fixture(scope="package")  # its worker thread ends with the browser tests
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    if not (STATIC / "vendor" / "htmx.min.js").exists():
        pytest.fail("the web UI's assets are missing: run `make install` (npm ci)")
    data = tmp_path_factory.mktemp("ui")
    app = create_app(api_settings(data, f"sqlite:///{data / 'usersync.db'}"), run_worker=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on", ws="none"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="ui-uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:  # uvicorn has no "started" event to wait on
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start serving the app")
        time.sleep(0.02)
    try:
        services = app.state.services
        assert isinstance(services, Services)
        yield LiveApp(f"http://{LOOPBACK}:{port}", services)
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()


@pytest.fixture
def workspace(live: LiveApp) -> Workspace:
    return new_workspace(live.engine, prefix="ui")


# Package-scoped: Playwright's sync API keeps an event loop running in this thread until it
# stops, which would make asyncio.run() fail in the tests that come after these.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(MISSING)
    with headless_chromium(EXPECT_TIMEOUT_MS) as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, live: LiveApp) -> Iterator[Page]:
    context = browser.new_context(base_url=live.url)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    opened = context.new_page()
    script_errors: list[str] = []
    record_errors(opened, script_errors)
    try:
        yield opened
    finally:
        context.close()
    assert not script_errors, f"errors in the browser: {script_errors}"
