"""Debian's Chromium, headless, driven by Playwright (which downloads no browser of its own):
what the browser tests and `make screenshots` (scripts/screenshots.py) share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
MISSING = f"{CHROMIUM} is missing: run `make system-packages` (apt-get install chromium)"


@contextmanager
def headless_chromium(expect_timeout_ms: int) -> Iterator[Browser]:
    """The browser, with `expect` waiting up to `expect_timeout_ms`; the caller checks first
    that CHROMIUM exists (MISSING says what to do)."""
    expect.set_options(timeout=expect_timeout_ms)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def record_errors(page: Page, errors: list[str]) -> None:
    """Append the page's script and Content-Security-Policy errors to `errors`; not the 4xx
    answers the forms give."""

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", on_console)
