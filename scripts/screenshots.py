"""Screenshots of each step of the web UI, for the documentation: `make screenshots`.

It sets up a throwaway data folder and SQLite database with the demo SFTP server
(`usersync demo`) and a token, starts `usersync serve` on a free loopback port, walks the
sync wizard in headless Chromium through an import of `userdata_with_errors.csv`, and writes
full-page PNGs to docs/screenshots/ (replacing the previous ones only when every step worked).
The server is always stopped and the data folder removed.

    .venv/bin/python scripts/screenshots.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from cryptography.fernet import Fernet
from playwright.sync_api import (
    Browser,
    Error,
    FloatRect,
    Locator,
    Page,
    ViewportSize,
    expect,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test servers' and browser tests' helpers

from tests.servers import LOOPBACK, free_port, tail  # noqa: E402
from tests.ui.browser import CHROMIUM, MISSING, headless_chromium, record_errors  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
LAPTOP: ViewportSize = {"width": 1280, "height": 800}
TABLET: ViewportSize = {"width": 768, "height": 1024}
MAX_HEIGHT = 3200  # taller pages are cut at this height
START_TIMEOUT = 30.0
CLI_TIMEOUT = 120.0
EXPECT_TIMEOUT_MS = 30_000
RUN_TIMEOUT_MS = 90_000  # the worker polls, waits for the file to settle, then imports
CONNECTION = "Demo SFTP server"
FILE = "userdata_with_errors.csv"
TYPES = {"age": "integer", "signup_date": "date", "newsletter": "boolean"}
CRON = "0 0 1 * * ?"
CRON_DESCRIPTION = "At 01:00, every day"
ZONE = "Europe/Berlin"
SYNC_NAME = "Demo customers"
USER_ID = "u-2001"
STOP_TIMEOUT = 15.0


class ScreenshotError(Exception):
    """A step that could not be done; its message says what to do."""


@dataclass(frozen=True)
class Instance:
    """A running `usersync serve` and what it needs."""

    url: str
    token: str


@dataclass
class Shooter:
    """Takes numbered full-page screenshots into a staging folder; `publish` moves them to
    `out` (replacing the previous ones) once every step has succeeded."""

    staging: Path
    taken: list[Path] = field(default_factory=list)

    def shot(self, page: Page, name: str) -> None:
        path = self.staging / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=path, full_page=True, clip=page_area(page), animations="disabled")
        self.taken.append(path)

    def publish(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("[0-9][0-9]-*.png"):
            old.unlink()
        written = [Path(shutil.move(path, out / path.name)) for path in self.taken]
        for path in written:
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        return written


def page_area(page: Page) -> FloatRect:
    """The whole page as wide as the viewport (nothing that overflows it sideways), and at
    most MAX_HEIGHT tall."""
    height = int(page.evaluate("document.documentElement.scrollHeight"))
    width = page.viewport_size["width"] if page.viewport_size else LAPTOP["width"]
    return {"x": 0, "y": 0, "width": width, "height": min(height, MAX_HEIGHT)}


# --- the server --------------------------------------------------------------------------


def usersync_command() -> Path:
    command = Path(sys.executable).with_name("usersync")
    if not command.exists():
        command = ROOT / ".venv" / "bin" / "usersync"
    if not command.exists():
        raise ScreenshotError("the usersync command is missing: run `make install`")
    return command


def environment(data_dir: Path, demo_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("USERSYNC_")}
    env.update(
        USERSYNC_DATA_DIR=str(data_dir),
        USERSYNC_DB=f"sqlite:///{data_dir / 'usersync.db'}",
        USERSYNC_SECRET_KEY=Fernet.generate_key().decode(),
        USERSYNC_DEMO_PORT=str(demo_port),
    )
    return env


def run_cli(env: dict[str, str], *args: str) -> str:
    command = [str(usersync_command()), *args]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ScreenshotError(f"`usersync {' '.join(args)}` did not finish in time") from exc
    if done.returncode != 0:
        raise ScreenshotError(
            f"`usersync {' '.join(args)}` failed (exit {done.returncode}): "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return done.stdout


def create_token(env: dict[str, str]) -> str:
    output = run_cli(
        env, "token", "create", "--workspace", "default", "--name", "screenshots", "--json"
    )
    try:
        token = json.loads(output)["token"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ScreenshotError(f"`usersync token create` printed no token: {output!r}") from exc
    return str(token)


def answers_health(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until_up(server: subprocess.Popen[bytes], url: str, demo_port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not (answers_health(url) and accepts(demo_port)):
        if server.poll() is not None:
            raise ScreenshotError(f"usersync serve exited ({server.returncode}):\n{tail(log)}")
        if time.monotonic() > deadline:
            raise ScreenshotError(
                f"usersync serve did not answer {url}/health and open the demo SFTP server "
                f"on port {demo_port} within {START_TIMEOUT:.0f} s:\n{tail(log)}"
            )
        time.sleep(0.2)


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(STOP_TIMEOUT)


@contextmanager
def running_usersync() -> Iterator[Instance]:
    """The demo set up in a fresh data folder, a token, and `usersync serve` answering."""
    with tempfile.TemporaryDirectory(prefix="usersync-screenshots-") as temp:
        data_dir = Path(temp)
        env = environment(data_dir, free_port())
        run_cli(env, "demo")
        token = create_token(env)
        port = free_port()
        url = f"http://{LOOPBACK}:{port}"
        log = data_dir / "serve.log"
        command = [str(usersync_command()), "serve", "--host", LOOPBACK, "--port", str(port)]
        with log.open("wb") as output:
            server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
            try:
                wait_until_up(server, url, int(env["USERSYNC_DEMO_PORT"]), log)
                yield Instance(url, token)
            finally:
                stop(server)


# --- the browser -------------------------------------------------------------------------


@contextmanager
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        raise ScreenshotError(MISSING)
    with headless_chromium(EXPECT_TIMEOUT_MS) as browser:
        yield browser


def heading(page: Page, name: str) -> Locator:
    return page.get_by_role("heading", name=name, level=1)


def next_step(page: Page, title: str) -> None:
    page.get_by_role("button", name=re.compile("^Next")).click()
    expect(heading(page, title)).to_be_visible()


def nav_link(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def demo_card(page: Page) -> Locator:
    return page.get_by_role("article").filter(has=page.get_by_role("heading", name=CONNECTION))


# --- the steps ---------------------------------------------------------------------------


def sign_in(page: Page, shooter: Shooter, token: str) -> None:
    page.goto("/")
    expect(heading(page, "Sign in")).to_be_visible()
    page.get_by_label("Workspace token").fill(token)
    shooter.shot(page, "signin")
    page.get_by_role("button", name="Sign in").click()
    expect(heading(page, "Integrations")).to_be_visible()


def integrations(page: Page, shooter: Shooter) -> None:
    expect(demo_card(page).get_by_text("Host key confirmed")).to_be_visible()
    shooter.shot(page, "integrations")


def sync_on(page: Page, shooter: Shooter) -> None:
    demo_card(page).get_by_role("switch", name="Sync on").click()
    dialog = page.get_by_role("dialog", name=f"Turn sync on for {CONNECTION}?")
    expect(dialog).to_be_visible()
    shooter.shot(page, "sync-on")
    dialog.get_by_role("button", name="Sync on").click()
    expect(heading(page, "Configure source")).to_be_visible()


def configure_source(page: Page, shooter: Shooter) -> None:
    page.get_by_role("button", name="Show the folders in /archive", exact=True).click()
    expect(page.get_by_role("radio", name="2026", exact=True)).to_be_visible()
    expect(page.get_by_role("radio", name=re.compile("the top folder"))).to_be_checked()
    page.get_by_role("button", name="Fetch files").click()
    page.locator("#files label").filter(has_text=FILE).click()
    chosen = page.get_by_role("radio", name=re.compile(f"^{re.escape(FILE)}"))
    expect(chosen).to_be_checked()
    expect(page.locator("#hidden-note")).to_contain_text("hidden")
    page.get_by_role("button", name="Preview file").click()
    preview = page.locator("#preview").get_by_role("table")
    expect(preview).to_contain_text(FILE)
    expect(preview.get_by_role("row")).to_have_count(6)
    shooter.shot(page, "configure-source")


def map_properties(page: Page, shooter: Shooter) -> None:
    next_step(page, "Map properties")
    expect(page.get_by_label("User ID column")).to_have_value("userId")
    for column, kind in TYPES.items():
        page.get_by_label(f"Type of {column}").select_option(kind)
    conversion = page.get_by_role("table", name=re.compile("^How the first"))
    headers = conversion.get_by_role("columnheader")
    for column, kind in TYPES.items():
        expect(headers.filter(has_text=column)).to_have_text(f"{column} {kind}")
    expect(conversion).to_have_accessible_name(re.compile("would be rejected"))
    expect(conversion.locator("td.bad")).to_have_count(1)
    show_refused_cells(page)
    shooter.shot(page, "map-properties")
    page.set_viewport_size(TABLET)
    show_refused_cells(page)
    shooter.shot(page, "map-properties-tablet")
    page.set_viewport_size(LAPTOP)


def show_refused_cells(page: Page) -> None:
    """Scroll the conversion preview to its last columns, where the typed ones are."""
    figure = page.locator("#conversion figure")
    figure.evaluate("figure => { figure.scrollLeft = figure.scrollWidth; }")
    expect(figure.locator("td.bad")).to_be_visible()


def resolve_conflicts(page: Page, shooter: Shooter) -> None:
    next_step(page, "Resolve conflicts")
    expect(page.get_by_role("radio", name="Update existing user data")).to_be_checked()
    shooter.shot(page, "resolve-conflicts")


def schedule_import(page: Page, shooter: Shooter) -> None:
    next_step(page, "Schedule import")
    page.get_by_label("Time zone").fill(ZONE)
    page.get_by_role("radio", name="Custom").check()
    page.get_by_label("Cron expression").fill(CRON)
    when = page.locator("#when")
    expect(when.locator("#schedule-description")).to_have_text(CRON_DESCRIPTION)
    expect(when).to_contain_text(ZONE)
    runs = page.get_by_role("list", name="The next 5 runs").get_by_role("listitem")
    expect(runs).to_have_count(5)
    shooter.shot(page, "schedule-import")


def import_summary(page: Page, shooter: Shooter) -> None:
    next_step(page, "Import")
    summary = page.get_by_role("main")
    expect(summary).to_contain_text(FILE)
    expect(summary).to_contain_text(CRON_DESCRIPTION)
    page.get_by_label("Sync name").fill(SYNC_NAME)
    shooter.shot(page, "import-summary")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(heading(page, f"Runs of {SYNC_NAME}")).to_be_visible()


def finished_run(page: Page, shooter: Shooter) -> None:
    page.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    badge = page.locator("#run-live .run-state .run-badge")
    expect(badge).to_have_text("Partial", timeout=RUN_TIMEOUT_MS)
    rejected = page.get_by_role("table", name=re.compile("^The rejected rows"))
    expect(rejected.get_by_role("row")).to_have_count(1 + 3)
    shooter.shot(page, "run")


def runs_list(page: Page, shooter: Shooter) -> None:
    nav_link(page, "Runs").click()
    expect(heading(page, "Runs")).to_be_visible()
    table = page.get_by_role("table", name="Runs, newest first")
    expect(table.locator(".run-badge")).to_have_text(["Partial"])
    shooter.shot(page, "runs")


def users_list(page: Page, shooter: Shooter) -> None:
    nav_link(page, "Users").click()
    expect(heading(page, "Users")).to_be_visible()
    expect(page.get_by_role("table").get_by_role("rowheader")).to_have_count(9)
    shooter.shot(page, "users")


def user_record(page: Page, shooter: Shooter) -> None:
    page.get_by_role("link", name=USER_ID, exact=True).click()
    expect(heading(page, USER_ID)).to_be_visible()
    properties = page.get_by_role("table", name=f"Properties of {USER_ID}")
    expect(properties.get_by_role("rowheader")).to_have_count(7)
    shooter.shot(page, "user")


def change_settings(page: Page, shooter: Shooter) -> None:
    nav_link(page, "Runs").click()
    page.get_by_role("link", name=SYNC_NAME).first.click()
    expect(heading(page, f"Runs of {SYNC_NAME}")).to_be_visible()
    shooter.shot(page, "sync-history")
    page.get_by_role("button", name="Change settings").click()
    expect(heading(page, "Save changes")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text(CRON_DESCRIPTION)
    shooter.shot(page, "change-settings")


def api_tokens(page: Page, shooter: Shooter) -> None:
    nav_link(page, "API tokens").click()
    expect(heading(page, "API tokens")).to_be_visible()
    page.get_by_label("Name").fill("nightly export")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token")).to_have_text(re.compile("^ust_"))
    shooter.shot(page, "api-tokens")


def workspace_settings(page: Page, shooter: Shooter) -> None:
    page.get_by_role("link", name="change").click()
    expect(heading(page, "Workspace")).to_be_visible()
    page.get_by_role("combobox", name="Time zone").fill(ZONE)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text(ZONE)
    shooter.shot(page, "workspace")


STEPS = (
    integrations,
    sync_on,
    configure_source,
    map_properties,
    resolve_conflicts,
    schedule_import,
    import_summary,
    finished_run,
    runs_list,
    users_list,
    user_record,
    change_settings,
    api_tokens,
    workspace_settings,
)


def take_screenshots(browser: Browser, instance: Instance, shooter: Shooter) -> None:
    context = browser.new_context(
        base_url=instance.url,
        viewport=LAPTOP,
        device_scale_factor=1,
        locale="en-GB",
        timezone_id=ZONE,
        color_scheme="light",
    )
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    record_errors(page, errors)
    try:
        run_step("sign_in", partial(sign_in, page, shooter, instance.token))
        for step in STEPS:
            run_step(step.__name__, partial(step, page, shooter))
    finally:
        context.close()
    if errors:
        raise ScreenshotError(f"errors in the browser: {errors}")


def run_step(name: str, step: Callable[[], None]) -> None:
    try:
        step()
    except (PlaywrightTimeout, AssertionError, Error) as exc:
        raise ScreenshotError(
            f"step {name}: the UI did not reach the expected state: {exc}"
        ) from exc


# --- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT}")
    return Path(parser.parse_args(argv).out).resolve()


def screenshots(out: Path) -> list[Path]:
    with tempfile.TemporaryDirectory(prefix="usersync-shots-") as staging:
        shooter = Shooter(Path(staging))
        with chromium() as browser, running_usersync() as instance:
            take_screenshots(browser, instance, shooter)
        return shooter.publish(out)


def main(argv: list[str] | None = None) -> int:
    out = parse_args(argv)
    started = time.monotonic()
    try:
        written = screenshots(out)
    except (ScreenshotError, OSError) as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 1
    total = sum(path.stat().st_size for path in written)
    seconds = time.monotonic() - started
    print(f"{len(written)} screenshots, {total / 1024:.0f} KB, in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
