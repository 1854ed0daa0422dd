"""Browser helpers for the web UI tests: Debian's Chromium driven by Playwright (no download),
a login user made with ``st2-setup-auth``, and a recorder of everything the server sent."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from playwright.sync_api import Browser, BrowserContext, Page, Response, expect, sync_playwright

from tests.e2e.stack import Product
from tests.integration.support.commands import BIN, command_environment

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USERNAME = "ui-operator"
PASSWORD = "Web-UI-passw0rd"
# Expectations that wait on the engine (an alert's whole remediation) get this long.
SLOW_MS = 120_000


@contextmanager
def chromium(extra_args: Sequence[str] = ()) -> Iterator[Browser]:
    """Debian's Chromium under Playwright (with ``extra_args`` on its command line), closed
    afterwards."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield browser
        finally:
            browser.close()


def create_login(product: Product, username: str = USERNAME, password: str = PASSWORD) -> None:
    """A password user in the engine's database, as an operator makes one."""
    created = subprocess.run(
        [
            str(BIN / "st2-setup-auth"),
            "--user",
            username,
            "--password",
            password,
            "--config-file",
            str(product.engine.config_path),
        ],
        env=command_environment(product.engine.directory),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr


@dataclass
class Served:
    """The bodies of every response the browser received from poundcake-api (but the event
    stream, which never ends)."""

    bodies: list[str] = field(default_factory=list)

    def record(self, response: Response) -> None:
        if "/ui/api/events" in response.url or response.status in (204, 304):
            return
        if response.request.resource_type not in ("document", "script", "stylesheet", "fetch"):
            return
        try:
            self.bodies.append(response.text())
        except Exception:  # noqa: BLE001 - a response the page navigated away from has no body
            return

    def assert_never_contained(self, secret: str) -> None:
        assert self.bodies, "no responses were recorded"
        assert not [body for body in self.bodies if secret in body]


@contextmanager
def browser_page(
    browser: Browser, served: Served, *, width: int = 1280, height: int = 900
) -> Iterator[tuple[BrowserContext, Page]]:
    """A fresh browser context (no cookies) and a page whose responses ``served`` records."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.on("response", served.record)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # A dialog would mean server data ran as script (alert labels are attacker-controlled).
    page.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    try:
        yield context, page
    finally:
        context.close()
    assert not errors, f"JavaScript errors or dialogs on the page: {errors}"


def log_in(
    page: Page, product: Product, password: str = PASSWORD, *, base_url: str | None = None
) -> None:
    """Open the UI (at poundcake-api, or at ``base_url``) and log in through the form."""
    page.goto(f"{base_url or product.api_url}/#/login")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def log_in_and_wait(page: Page, product: Product, *, base_url: str | None = None) -> None:
    log_in(page, product, base_url=base_url)
    expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()
    expect(page.locator("#live-status")).to_have_text("Live updates on")
