"""End to end in a real browser: the web UI served by poundcake-api, driven by Chromium, on the
whole product (engine, workers, Alertmanager). One product and one browser serve the module."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests import alertmanager
from tests.e2e.stack import Product, eventually, running_product
from tests.e2e.web_browser import (
    SLOW_MS,
    USERNAME,
    Served,
    browser_page,
    chromium,
    create_login,
    log_in,
    log_in_and_wait,
)
from tests.integration.support.mariadb import admin_sql

UITREE = Path(__file__).resolve().parents[1] / "fixtures" / "packs" / "uitree"

CABS: dict[str, dict[str, Any]] = {
    "ui_disk": {
        "name": "ui_disk",
        "description": "Clean up a full disk, then say so",
        "alert_name_pattern": "^UIDiskFull$",
        "severity_filter": ["critical"],
        "verify_within": 600,
        "idempotent": True,
        "steps": [
            {
                "name": "clean",
                "action": "core.local",
                "parameters": {"cmd": "printf 'cleaning %s' {{ alert.labels.instance }}"},
                "expected_result": {"stdout_contains": "cleaning"},
                "timeout_seconds": 30,
            },
            {
                "name": "report",
                "action": "core.echo",
                "parameters": {"message": "done for {{ request_id }}"},
            },
        ],
    },
}


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    with running_product(tmp_path_factory.mktemp("web-ui"), CABS, packs=[UITREE]) as running:
        create_login(running)
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def served(product: Product) -> Iterator[Served]:
    """Every response body of the module's tests; none may hold the engine's API key."""
    recorded = Served()
    yield recorded
    recorded.assert_never_contained(product.api_key)


@pytest.fixture
def page(browser: Browser, served: Served, product: Product) -> Iterator[Page]:
    with browser_page(browser, served) as (_context, opened):
        yield opened
        assert product.api_key not in opened.content()


def status_of(product: Product, execution_id: str) -> str:
    status: str = product.engine_api("GET", f"/executions/{execution_id}").json()["status"]
    return status


def tree_parameters(tmp_path: Path, *, opened: bool) -> dict[str, Any]:
    """uitree.tree's parameters; ``opened``: both gates exist, nothing waits."""
    gate, last_gate = tmp_path / "gate", tmp_path / "last-gate"
    if opened:
        gate.touch()
        last_gate.touch()
    return {"gate": str(gate), "last_gate": str(last_gate), "names": ["a", "b", "c"]}


def match_payload(instance: str) -> dict[str, Any]:
    labels = {"alertname": "UIDiskFull", "severity": "critical", "instance": instance}
    return alertmanager.notification(labels, fingerprint="0a1b2c3d4e5f6071", summary="match test")


def test_a_wrong_password_shows_an_error_and_sets_no_cookie(
    browser: Browser, served: Served, product: Product
) -> None:
    with browser_page(browser, served) as (context, page):
        log_in(page, product, password="not-the-password")
        expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
        expect(page).to_have_url(re.compile(r"#/login$"))
        assert [c for c in context.cookies() if c["name"] == "poundcake_session"] == []

        page.get_by_label("Password").fill("Web-UI-passw0rd")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", level=1, name="Dashboard")).to_be_visible()
        [cookie] = [c for c in context.cookies() if c["name"] == "poundcake_session"]
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        expect(page.get_by_text(f"Signed in as {USERNAME}")).to_be_visible()


def test_an_alert_appears_and_its_trail_completes_without_a_reload(
    page: Page, product: Product
) -> None:
    log_in_and_wait(page, product)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", level=1, name="Alerts")).to_be_visible()
    page.evaluate("window.__notReloaded = 'still here'")
    instance = "web-7 <img src=x onerror=alert(1)>"

    product.fire_through_alertmanager(
        {"alertname": "UIDiskFull", "severity": "critical", "instance": instance}
    )
    # The list refreshes on the alert's live event: no reload, no click.
    row = page.get_by_role("row").filter(has_text="UIDiskFull")
    expect(row).to_be_visible(timeout=SLOW_MS)
    expect(row).to_contain_text(instance)
    row.get_by_role("link", name="UIDiskFull").click()
    expect(page.get_by_role("heading", level=1, name="UIDiskFull")).to_be_visible()
    expect(page.get_by_text("Verification", exact=True)).to_be_visible()
    expect(page.get_by_text("Abandoned runs resumed", exact=True)).to_be_visible()
    page.locator("a.trail-link").first.click()
    expect(page.get_by_role("heading", level=1, name="Request trail")).to_be_visible()

    trail = page.locator(".view")
    expect(trail).to_have_attribute("data-complete", "true", timeout=SLOW_MS)
    expect(page.get_by_text("POST /api/v1/webhook")).to_be_visible()
    expect(page.get_by_text("Rule poundcake_cabs.ui_disk")).to_be_visible()
    expect(page.locator(".event-step")).to_have_count(2)
    expect(page.locator(".event-step .step-output pre").first).to_have_text(f"cleaning {instance}")
    expect(page.get_by_text("Workflow succeeded")).to_be_visible()
    assert page.evaluate("window.__notReloaded") == "still here"
    # The attacker-controlled label stayed text: no element was made of it.
    assert page.locator("img").count() == 0

    # An execution: its output, parameters and result.
    page.locator(".event-step").first.get_by_role("link", name="execution details").click()
    expect(page.get_by_role("heading", level=1, name=re.compile("^Execution"))).to_be_visible()
    expect(page.get_by_label("Execution output")).to_have_text(f"cleaning {instance}")
    expect(page.locator(".view")).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
    assert page.evaluate("window.__notReloaded") == "still here"

    # The dashboard counts the remediation and draws the week's executions.
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator(".big-number")).to_have_text("100%")
    expect(page.get_by_role("img", name=re.compile("Executions per day"))).to_be_visible()
    expect(page.locator(".activity li").first).to_be_visible()
    assert page.evaluate("window.__notReloaded") == "still here"

    # The alerts view's filters.
    page.get_by_role("link", name="1 remediated", exact=True).click()
    expect(page).to_have_url(re.compile(r"#/alerts\?state=remediated$"))
    expect(page.get_by_role("row").filter(has_text="UIDiskFull")).to_have_count(1)
    page.get_by_label("State").select_option("failed")
    page.get_by_label("Name contains").fill("UIDisk")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("No alerts match these filters.")).to_be_visible()
    page.get_by_label("State").select_option("")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_role("row").filter(has_text="UIDiskFull")).to_have_count(1)


def test_the_executions_list_filters_and_reruns(page: Page, product: Product) -> None:
    execution_id = product.start_execution("core.echo", {"message": "from e2e"})
    eventually(lambda: status_of(product, execution_id) == "succeeded", "the echo execution")
    log_in_and_wait(page, product)
    page.goto(f"{product.api_url}/#/executions")
    page.get_by_label("Action").fill("core.echo")
    page.get_by_label("Status").select_option("succeeded")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"action=core.echo"))
    rows = page.get_by_role("row").filter(has_text="core.echo")
    expect(rows.first).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="core.local")).to_have_count(0)

    page.get_by_role("link", name=execution_id).click()
    expect(page.get_by_label("Execution output")).to_contain_text("from e2e")
    page.get_by_role("button", name="Re-run").click()
    # The new execution's page follows it live until it has run.
    expect(page).not_to_have_url(re.compile(f"{execution_id}$"))
    rerun_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator(".view")).to_have_attribute("data-status", "succeeded", timeout=SLOW_MS)
    expect(page.get_by_label("Execution output")).to_contain_text("from e2e")
    rerun = product.engine_api("GET", f"/executions/{rerun_id}").json()
    assert rerun["action"]["ref"] == "core.echo"
    assert rerun["parameters"] == {"message": "from e2e"}


def test_a_running_execution_is_canceled_from_its_page(page: Page, product: Product) -> None:
    execution_id = product.start_execution("core.local", {"cmd": "sleep 60"})
    log_in_and_wait(page, product)
    page.goto(f"{product.api_url}/#/executions/{execution_id}")
    view = page.locator(".view")
    expect(view).to_have_attribute("data-status", "running", timeout=SLOW_MS)
    page.get_by_role("button", name="Cancel").click()
    # The page follows the execution's events to its end.
    expect(view).to_have_attribute("data-status", "canceled", timeout=SLOW_MS)
    expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
    assert status_of(product, execution_id) == "canceled"


def test_a_workflow_shows_its_tasks_live_and_pauses_and_resumes_from_its_page(
    page: Page, product: Product, tmp_path: Path
) -> None:
    gate, last_gate = tmp_path / "gate", tmp_path / "last-gate"
    log_in_and_wait(page, product)
    workflow = product.start_execution("uitree.tree", tree_parameters(tmp_path, opened=False))
    page.goto(f"{product.api_url}/#/executions/{workflow}")
    page.evaluate("window.__notReloaded = 'still here'")
    view = page.locator(".view")
    tree = page.get_by_role("list", name="Task tree")
    expect(page.get_by_role("heading", level=2, name="Tasks")).to_be_visible()

    def task(name: str) -> Locator:
        link = page.get_by_role("link", name=name, exact=True)
        return page.locator(".task-row").filter(has=link).locator(".badge")

    # The workflow waits in "hold" until the gate file exists.
    expect(task("hold")).to_have_text("running", timeout=SLOW_MS)
    expect(task("greet")).to_have_text("succeeded")
    expect(view).to_have_attribute("data-status", "running")

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status").filter(has_text="Execution is now pausing.")).to_be_visible()
    expect(view).to_have_attribute("data-status", "pausing", timeout=SLOW_MS)
    gate.touch()
    # The running task ends, then the workflow pauses: both arrive as events.
    expect(task("hold")).to_have_text("succeeded", timeout=SLOW_MS)
    expect(view).to_have_attribute("data-status", "paused", timeout=SLOW_MS)
    expect(page.get_by_role("button", name="Pause")).to_be_disabled()
    expect(tree.get_by_role("link", name="fan item 0")).to_have_count(0)

    page.get_by_role("button", name="Resume").click()
    # While the workflow itself stays "running", its new tasks (items, a sub-workflow's task)
    # appear and change from their own events.
    items = page.get_by_role("list", name="Items of fan")
    expect(items.get_by_role("link")).to_have_count(3, timeout=SLOW_MS)
    for index in range(3):
        expect(task(f"fan item {index}")).to_have_text("succeeded", timeout=SLOW_MS)
    nested = page.get_by_role("list", name="Tasks of nested")
    expect(nested.get_by_role("link", name="inside", exact=True)).to_be_visible(timeout=SLOW_MS)
    expect(task("inside")).to_have_text("succeeded", timeout=SLOW_MS)
    expect(task("last")).to_have_text("running", timeout=SLOW_MS)
    expect(view).to_have_attribute("data-status", "running")
    expect(page.get_by_role("button", name="Resume")).to_be_disabled()

    last_gate.touch()
    expect(view).to_have_attribute("data-status", "succeeded", timeout=SLOW_MS)
    expect(tree.locator(".badge")).to_have_text(["succeeded"] * 9)
    assert page.evaluate("window.__notReloaded") == "still here"

    # A task's link, followed with the keyboard, opens that task's own execution view.
    greet = tree.get_by_role("link", name="greet", exact=True)
    greet_id = str(greet.get_attribute("href")).rsplit("/", 1)[-1]
    greet.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"#/executions/{greet_id}$"))
    expect(page.get_by_role("heading", level=1, name=f"Execution {greet_id}")).to_be_visible()
    expect(page.get_by_label("Execution output")).to_contain_text("hello from the tree")
    expect(page.get_by_role("link", name=workflow)).to_be_visible()
    # A task that is no workflow cannot pause: no pause or resume buttons.
    expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    expect(page.get_by_role("button", name="Resume")).to_have_count(0)


def test_a_with_items_task_shows_its_first_items_and_links_to_the_rest(
    page: Page, product: Product, tmp_path: Path
) -> None:
    workflow = product.start_execution("uitree.tree", tree_parameters(tmp_path, opened=True))
    eventually(lambda: status_of(product, workflow) == "succeeded", "the workflow", timeout=120)
    # The view asks for 20 items per with-items task; here the server is asked for 2 instead.
    page.route(
        "**/ui/api/executions/*/tasks",
        lambda route: route.continue_(url=f"{route.request.url}?items=2"),
    )
    log_in_and_wait(page, product)
    page.goto(f"{product.api_url}/#/executions/{workflow}")
    items = page.get_by_role("list", name="Items of fan")
    expect(items.get_by_role("link")).to_have_count(2, timeout=SLOW_MS)
    expect(page.get_by_text("fan · with items (3)")).to_be_visible()
    expect(page.locator(".task-more")).to_contain_text("1 more item")

    page.get_by_role("link", name="all items of fan").click()
    expect(page.get_by_role("heading", level=1, name="Executions")).to_be_visible()
    expect(page.get_by_label("Parent execution")).to_have_value(workflow)
    expect(page.get_by_label("Workflow task execution")).not_to_have_value("")
    rows = page.get_by_role("row").filter(has_text="core.echo")
    expect(rows).to_have_count(3)


def test_the_cab_match_test_shows_rendered_parameters_and_rules_toggle(
    page: Page, product: Product
) -> None:
    log_in_and_wait(page, product)
    page.get_by_role("link", name="Rules & CABs").click()
    expect(page.get_by_role("heading", level=2, name="CAB match test")).to_be_visible()
    # The CAB's run safety fields, defaults included.
    card = page.locator("article.cab")
    expect(card).to_contain_text("Verify the fix")
    expect(card).to_contain_text("within 600 s")
    expect(card).to_contain_text("Silence while running")
    expect(card).to_contain_text("Resume abandoned runs")
    payload = page.get_by_label("Alertmanager webhook payload (JSON)")
    payload.fill("{ not json")
    page.get_by_role("button", name="Test match").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid JSON")

    payload.fill(json.dumps(match_payload("match-host-3")))
    page.get_by_role("button", name="Test match").click()
    results = page.locator(".match-results")
    expect(results).to_contain_text("Matches CAB ui_disk", timeout=30_000)
    expect(results).to_contain_text("printf 'cleaning %s' match-host-3")
    expect(results.locator(".match-cab tbody tr")).to_have_count(2)
    assert not [
        a for a in product.alerts("UIDiskFull") if a["labels"].get("instance") == "match-host-3"
    ]

    toggle = page.get_by_label("Enable rule poundcake_cabs.ui_disk")
    expect(toggle).to_be_checked()
    toggle.uncheck()
    expect(page.get_by_text("Rule poundcake_cabs.ui_disk is now disabled.")).to_be_visible()
    assert product.engine_api("GET", "/rules/poundcake_cabs.ui_disk").json()["enabled"] is False
    toggle.check()
    expect(page.get_by_text("Rule poundcake_cabs.ui_disk is now enabled.")).to_be_visible()
    assert product.engine_api("GET", "/rules/poundcake_cabs.ui_disk").json()["enabled"] is True


def test_the_actions_view_lists_parameters(page: Page, product: Product) -> None:
    log_in_and_wait(page, product)
    page.goto(f"{product.api_url}/#/actions?pack=core")
    local = page.locator("details.action").filter(has_text="core.local").first
    local.locator("summary").click()
    expect(local.get_by_role("cell", name="cmd", exact=True)).to_be_visible()


def test_an_expired_session_sends_the_browser_to_login(page: Page, product: Product) -> None:
    log_in_and_wait(page, product)
    page.get_by_role("link", name="Executions").click()
    expect(page.get_by_role("heading", level=1, name="Executions")).to_be_visible()
    admin_sql(
        "UPDATE poundcake_ui_sessions SET expires_at = '2000-01-01 00:00:00'",
        database=product.database,
    )
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"#/login$"))
    expect(
        page.get_by_role("status").filter(has_text="Session expired. Log in again.")
    ).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_count(0)


def test_at_phone_width_the_navigation_is_usable(
    browser: Browser, served: Served, product: Product
) -> None:
    with browser_page(browser, served, width=375, height=740) as (_context, page):
        log_in_and_wait(page, product)
        page.reload()
        links = page.get_by_role("navigation", name="Main").get_by_role("link")
        expect(links).to_have_count(6)
        for index in range(6):
            box = links.nth(index).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
        assert page.evaluate("document.documentElement.scrollWidth") <= 375

        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        expect(links.first).to_be_focused()
        page.keyboard.press("Tab")
        expect(links.nth(1)).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1, name="Alerts")).to_be_visible()
        expect(links.nth(1)).to_have_attribute("aria-current", "page")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375

        # The skip link jumps over the navigation into the page.
        page.reload()
        expect(links).to_have_count(6)
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        page.keyboard.press("Tab")
        assert page.evaluate("document.querySelector('main').contains(document.activeElement)")
        assert page.evaluate("document.activeElement !== document.querySelector('main')")


def test_logging_out_ends_the_session(page: Page, product: Product) -> None:
    log_in_and_wait(page, product)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"#/login$"))
    status = page.evaluate("fetch('/ui/api/dashboard').then((r) => r.status)")
    assert status == 401
