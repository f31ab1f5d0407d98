"""The console in a real browser: Debian's Chromium driven by Playwright against the live
test server (no browser is downloaded: ``make install`` installs ``chromium`` with apt).

An agent logs in, opens the top case of today's to-do list with the keyboard, approves
its offer and sees it queued in the outbox; edits another offer beyond the campaign's
limits and is refused; an Admin finds the campaign's and the model's charts drawn. Every
page is screenshotted to ``var/screenshots/`` and no page may log a JavaScript error.
Clicks are counted from the moment the agent is logged in.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from ml.metrics import evaluate
from ml.models import ModelVersion
from retention.models import Alert, CampaignOutcome, Intervention, OutboxMessage
from retention.services.pipeline import after_scoring
from tests.factories import NOW, campaign, customer, scored_run

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "pw-for-tests"
pytestmark = [
    pytest.mark.browser,
    # live_server needs committed data; serialized rollback restores the migrations' rows
    # (roles, rules, templates) for the suite's other transactional tests.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def browser(live_server, shop):
    """Chromium for one test, started after the database is set up and stopped before it
    is flushed: Playwright's sync API runs an event loop in this thread, and while it
    runs Django hands this thread other connection objects (asgiref's context-local
    storage), which know nothing of the test database's serialized contents."""
    if not Path(CHROMIUM).exists():
        raise pytest.UsageError(f"{CHROMIUM} is missing: run `make install` (apt-get chromium)")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the test's own ORM calls are sync
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            yield launched
            launched.close()
            connections.close_all()  # those opened while the loop ran
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE")


@pytest.fixture
def shop(settings):
    """Customers at risk with alerts and offers of a campaign, the campaign measured on
    three days, and a model version whose holdout curves were recorded."""
    settings.OUTBOX_RETRY_SECONDS = 0
    people = [customer(f"c{i}", name=f"Person {i}") for i in range(8)]
    rows = [
        {"customer": c, "probability": 0.75 + i / 50, "expected_spend": 120.0 + 40 * i}
        for i, c in enumerate(people)
    ]
    win_back = campaign(control_share=0.25)
    after_scoring(run=scored_run(rows), now=NOW)
    for day, (t, c) in enumerate([(0.30, 0.21), (0.33, 0.22), (0.35, 0.22)]):
        CampaignOutcome.objects.create(
            campaign=win_back,
            as_of=dt.date(2026, 7, 10) + dt.timedelta(days=7 * day),
            arms={
                "treatment": {
                    "customers": 300,
                    "retained": round(300 * t),
                    "retention": t,
                    "revenue": 9000.0,
                    "discount_cost": 300.0,
                },
                "control": {
                    "customers": 100,
                    "retained": round(100 * c),
                    "retention": c,
                    "revenue": 2500.0,
                },
            },
            uplift=t - c,
            ci_low=t - c - 0.06,
            ci_high=t - c + 0.06,
            net_incremental_revenue=1200.0,
            verdict="treatment retains more",
            computed_at=NOW,
        )
    rng = np.random.default_rng(0)
    p = rng.uniform(size=2000)
    version = ModelVersion.objects.get()
    version.metrics = evaluate((rng.uniform(size=2000) < p).astype(int), p)
    version.status = ModelVersion.Status.CHAMPION
    version.save()
    return win_back


# Visible form fields a screen reader could not name: no <label> and no aria-label(ledby).
UNLABELLED_FIELDS = """() => [...document.querySelectorAll("input, select, textarea")]
    .filter(f => !["hidden", "submit", "button"].includes(f.type) && f.offsetParent !== null)
    .filter(f => !f.labels?.length && !f.getAttribute("aria-label")
        && !f.getAttribute("aria-labelledby"))
    .map(f => f.name || f.id || f.outerHTML.slice(0, 80))"""


class Session:
    """One signed-in browser tab that counts the agent's clicks and keeps the JavaScript
    errors, the form fields without a label and screenshots of every page it visits."""

    def __init__(self, browser, base_url: str, username: str) -> None:
        self.page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
        self.base_url, self.clicks, self.errors, self.unlabelled = base_url, 0, [], []
        self.page.on("pageerror", lambda exc: self.errors.append(f"{self.page.url}: {exc}"))
        self.page.on(
            "console",
            lambda msg: (
                self.errors.append(f"{self.page.url}: {msg.text}") if msg.type == "error" else None
            ),
        )
        self.page.goto(base_url + "/console/")
        assert "/console/login/" in self.page.url  # anonymous: sent to log in
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(base_url + "/console/")

    def click(self, selector: str) -> None:
        self.clicks += 1
        self.page.click(selector)

    def press(self, key: str, *, counts: bool = False) -> None:
        self.clicks += counts
        self.page.keyboard.press(key)

    def shot(self, name: str) -> None:
        fields = self.page.evaluate(UNLABELLED_FIELDS)
        self.unlabelled += [f"{name}: {field}" for field in fields]
        folder = Path(settings.VAR_DIR) / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_an_agent_works_the_top_case_from_the_keyboard(live_server, shop, agent_user, browser):
    agent = Session(browser, live_server.url, agent_user.username)
    page = agent.page
    agent.shot("login-landing-today")
    top = Alert.objects.filter(planned_on__isnull=False).order_by("-priority", "pk").first()
    assert page.locator("[data-card]").first.get_attribute("id") == f"card-{top.pk}"

    agent.press("j")  # focus the top card
    agent.press("Enter", counts=True)  # open it: one action from login
    page.wait_for_url(f"**/console/customers/{top.customer.external_id}/")
    assert agent.clicks == 1
    agent.shot("customer")

    agent.click("#offer-panel button[data-approve]")  # approve: one more
    page.wait_for_selector("#offer-panel [data-state=queued]")
    assert agent.clicks == 2
    message = OutboxMessage.objects.get(intervention__alert=top)
    assert (
        page.locator("#offer-panel [data-outbox]").first.inner_text().startswith("In the outbox:")
    )
    assert f"#{message.pk}" in page.inner_text("#offer-panel")
    agent.shot("customer-approved")

    # Another offer, edited beyond the campaign's 20% cap: refused, nothing sent.
    other = Intervention.objects.filter(state="proposed").order_by("-expected_net_value").first()
    page.goto(f"{live_server.url}/console/customers/{other.customer.external_id}/")
    page.focus("#offer-panel")
    agent.press("e")
    page.select_option("#id_offer_type", "percent_off")
    page.fill("#id_offer_value", "90")
    page.click("#offer-panel form[action$='/edit/'] button[type=submit]")
    refusal = page.wait_for_selector("#offer-panel .notice.error")
    assert refusal.inner_text().startswith("Not allowed:")
    other.refresh_from_db()
    assert other.state == "proposed" and not OutboxMessage.objects.filter(intervention=other)
    agent.shot("customer-edit-refused")

    # On Today, `a` approves the focused card in place.
    page.goto(live_server.url + "/console/")
    agent.press("j")
    card_id = page.evaluate("document.activeElement.id")
    agent.press("a")
    page.wait_for_selector(f"#{card_id} [data-state=queued]")
    agent.shot("today-after-approve")

    page.goto(live_server.url + "/console/campaigns/")
    agent.shot("campaigns")
    for admin_only in ("/console/models/", "/console/overview/"):
        assert page.request.get(live_server.url + admin_only).status == 403
    assert agent.errors == [] and agent.unlabelled == []


def test_an_admin_finds_the_campaign_and_model_charts_drawn(browser, live_server, shop, admin_user):
    admin = Session(browser, live_server.url, admin_user.username)
    page = admin.page
    pages = {
        "campaign": f"/console/campaigns/{shop.pk}/",
        "models": "/console/models/",
        "overview": "/console/overview/",
    }
    for name, path in pages.items():
        page.goto(live_server.url + path)
        charts = page.locator("svg.chart")
        assert charts.count() >= 2, name
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            assert box["width"] > 100 and box["height"] > 50, name
        admin.shot(name)
    page.goto(live_server.url + pages["campaign"])
    assert page.locator("svg.chart path.series").count() >= 3  # two arms and the uplift
    page.goto(live_server.url + pages["models"])
    roc = page.locator("svg.chart", has=page.locator("title", has_text="ROC"))
    assert roc.locator("path.series").count() == 1
    assert admin.errors == [] and admin.unlabelled == []
