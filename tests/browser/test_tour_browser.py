"""The README's five-minute tour, followed in Chromium on the seeded demo, word for word.

The tour is read from README.md itself: its numbered steps, the user each step logs in as ("log in as `agent`")
and the names it sets in bold, in order. Each step below takes those names one by one and uses them as the
page's link, heading, option or label (`get_by_role(..., name=...)`), so a label renamed on a page, or in the
README, fails here; and a step must use every name its README step sets in bold, so the README cannot promise
something the test does not check.

With AFTERDESK_SCREENSHOTS=1 (`make screenshots`) the same walk retakes the README's two pictures,
docs/img/queue.png and docs/img/case.png, at 1280 x 800 in English.

The demo is seeded once, at its default size (the tour's first cases are the ones `make run` shows): about
10 to 60 s, by machine. With SQLite the live server shares the test's connection, so the seed is seen at once.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from portal.demo import DEMO_USERS, LIVE_TITLE, TTS_MY, demo_seed

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

README = Path(__file__).resolve().parents[2] / "README.md"
TOUR_HEADING = "## A five-minute tour of the demo"
BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)
LOGIN = re.compile(r"log in as `([^`]+)`")
SCREEN = {"width": 1280, "height": 800}
PNG_BUDGET = 400 * 1024  # bytes per committed screenshot


@dataclass
class Step:
    text: str
    login: str | None  # the user the step logs in as, if it does
    names: deque[str]  # the bold names, in the README's order

    def take(self) -> str:
        assert self.names, f"the test wants another bold name than the README's step sets: {self.text!r}"
        return self.names.popleft()

    def done(self) -> None:
        assert not self.names, f"the README's step names {list(self.names)} that the test does not check"


def tour() -> list[Step]:
    """The tour section's introduction (step 0) and its numbered steps."""
    text = README.read_text(encoding="utf-8")
    assert TOUR_HEADING in text, f"README.md has no {TOUR_HEADING!r} section"
    section = text.split(TOUR_HEADING, 1)[1].split("\n## ", 1)[0]
    steps = []
    for part in re.split(r"^\d+\. ", section, flags=re.MULTILINE):
        login = LOGIN.search(part)
        names = deque(" ".join(name.split()) for name in BOLD.findall(part))
        steps.append(Step(text=" ".join(part.split()), login=login and login.group(1), names=names))
    return steps


def _queue_nav(page: Page):
    return page.locator("#queue-nav")


def _main_nav(page: Page):
    return page.get_by_role("navigation", name="Main")


def _open_first_case(page: Page, type_name: str) -> None:
    """Open the first case of the list on screen, and check it is of the type the step chose."""
    page.locator("#case-table tbody tr").first.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(type_name)


def _save(page: Page, folder: Path | None, name: str) -> None:
    """Retake a README picture: the top of the page as a 1280 x 800 screen shows it, as a small PNG."""
    if folder is None:
        return
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(path))
    # A UI screen has few colours: a 256-colour palette keeps it sharp at a fraction of the size.
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    small.save(path, optimize=True)
    assert path.stat().st_size < PNG_BUDGET, f"{path} is {path.stat().st_size} bytes"


def step_queue(page: Page, step: Step, shots: Path | None) -> None:
    nav = _queue_nav(page)
    expect(nav.get_by_role("link", name=step.take())).to_have_attribute("aria-current", "page")  # All open
    for _ in range(3):  # My cases, Unassigned, Breaching soon
        expect(nav.get_by_role("link", name=step.take())).to_be_visible()
    expect(page.locator("#case-table tbody tr").first).to_be_visible()
    _save(page, shots, "queue")


def step_pickup_overdue(page: Page, step: Step, shots: Path | None) -> None:
    nav = _queue_nav(page)
    by_type = step.take()
    expect(nav.get_by_role("heading", name=by_type)).to_be_visible()
    pickup = step.take()
    nav.get_by_role("link", name=pickup).click()
    expect(page).to_have_url(re.compile(r"[?&]type=pickup_overdue"))
    _open_first_case(page, pickup)
    expect(page.get_by_role("heading", name=step.take())).to_be_visible()  # Why this case was raised
    for _ in range(2):  # the SLA clocks
        clock = re.compile(rf"^{re.escape(step.take())}$")
        expect(page.locator("dt", has_text=clock)).to_be_visible()
    expect(page.locator("[data-evidence-wanted]")).to_be_visible()  # "a banner asks for the proof"
    expect(page.get_by_role("link", name=step.take())).to_be_visible()  # Build an appeal with this case
    appeals = step.take()
    _queue_nav(page).get_by_role("link", name=appeals).click()
    expect(page.get_by_role("heading", level=1, name=appeals)).to_be_visible()
    under_way = page.locator("main").get_by_role("link", name=re.compile("TikTok Shop late dispatch"))
    expect(under_way.first).to_be_visible()  # the demo's no-show appeal, under way


def step_oversold_live(page: Page, step: Step, shots: Path | None) -> None:
    _main_nav(page).get_by_role("link", name=step.take()).click()  # Cases
    oversold = step.take()
    _queue_nav(page).get_by_role("link", name=oversold).click()
    expect(page).to_have_url(re.compile(r"[?&]type=oversold"))
    live, any_live = step.take(), step.take()
    assert live == LIVE_TITLE, f"the README's live session is {live!r}, the demo's is {LIVE_TITLE!r}"
    page.locator(
        "form.filters select", has=page.get_by_role("option", name=any_live, exact=True)
    ).select_option(label=live)
    expect(page).to_have_url(re.compile(r"[?&]live=\d+"))
    _open_first_case(page, oversold)
    expect(page.get_by_text(live, exact=True)).to_be_visible()  # the order came from the live session
    expect(page.get_by_text(step.take()).first).to_be_visible()  # Suggested path
    expect(page.get_by_role("heading", name=step.take())).to_be_visible()  # Compensation
    expect(page.get_by_text(step.take(), exact=True)).to_be_visible()  # The buyer chose:
    _save(page, shots, "case")


def step_parcel(page: Page, step: Step, shots: Path | None) -> None:
    failed = step.take()
    _queue_nav(page).get_by_role("link", name=failed).click()
    expect(page).to_have_url(re.compile(r"[?&]type=delivery_failed"))
    _open_first_case(page, failed)
    page.get_by_role("heading", name=step.take()).first.get_by_role("link").click()  # beside Parcel
    expect(page).to_have_url(re.compile(r"/tracking/shipments/\d+/"))
    timeline = step.take()
    expect(page.get_by_role("heading", name=timeline)).to_be_visible()
    scans = page.locator("section", has=page.get_by_role("heading", name=timeline)).locator("tbody tr")
    expect(scans.first).to_be_visible()
    expect(page.get_by_text("AttemptFail").first).to_be_visible()  # the failed delivery is in its story
    expect(page.get_by_role("heading", name=step.take())).to_be_visible()  # Cases on this parcel


def step_templates(page: Page, step: Step, shots: Path | None) -> None:
    _main_nav(page).get_by_role("link", name=step.take()).click()  # Templates
    expect(page.get_by_role("heading", level=1, name=step.take())).to_be_visible()  # Message templates
    expect(page.get_by_role("link", name=step.take())).to_be_visible()  # New template
    reports = step.take()
    _main_nav(page).get_by_role("link", name=reports).click()
    expect(page.get_by_role("heading", level=1, name=reports)).to_be_visible()


def step_store(page: Page, step: Step, shots: Path | None) -> None:
    _main_nav(page).get_by_role("link", name=step.take()).click()  # Stores
    page.locator("tr", has_text=TTS_MY.name).get_by_role("link", name=step.take()).click()  # Manage
    expect(page.get_by_role("heading", level=1)).to_have_text(TTS_MY.name)
    for _ in range(4):  # Settings, Members, Storefront API, Tracking connections
        expect(page.get_by_role("heading", name=step.take(), exact=True)).to_be_visible()
    expect(page.get_by_text("pushes only")).to_be_visible()  # the demo's simulator connection
    expect(page.get_by_role("link", name=step.take())).to_be_visible()  # Import orders


STEPS = (step_queue, step_pickup_overdue, step_oversold_live, step_parcel, step_templates, step_store)


def test_the_readme_tour_has_one_step_per_walk_and_names_demo_users():
    intro, *steps = tour()
    assert len(steps) == len(STEPS), f"README's tour has {len(steps)} steps, the test walks {len(STEPS)}"
    assert intro.login and not intro.names
    usernames = {user[0] for user in DEMO_USERS}
    assert {step.login for step in (intro, *steps) if step.login} <= usernames
    assert all(step.names for step in steps)


def test_the_readme_tour(page, log_in, docs_screenshots):
    demo_seed()
    page.set_viewport_size(SCREEN)
    intro, *steps = tour()
    log_in(intro.login, settings.DEMO_PASSWORD)
    expect(page).to_have_url(re.compile(r"/cases/$"))
    for walk, step in zip(STEPS, steps, strict=True):
        if step.login:
            page.get_by_role("button", name="Log out").click()
            log_in(step.login, settings.DEMO_PASSWORD)
            expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
        walk(page, step, docs_screenshots)
        step.done()
