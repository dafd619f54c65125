"""Headless Chromium through Playwright, against the live test server.

Locally a machine without Chromium skips these tests; CI sets AFTERDESK_REQUIRE_BROWSER=1, where a missing
browser fails the run instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "browser-pass-123"  # the users these tests make log in with it
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _chromium_path() -> str | None:
    candidate = os.environ.get("AFTERDESK_CHROMIUM") or "/usr/bin/chromium"
    return candidate if Path(candidate).exists() else shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium():
    path = _chromium_path()
    required = os.environ.get("AFTERDESK_REQUIRE_BROWSER") == "1"
    if path is None:
        if required:
            pytest.fail(
                "Chromium is required (AFTERDESK_REQUIRE_BROWSER=1) but /usr/bin/chromium is missing."
            )
        pytest.skip("Chromium not installed: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("Playwright is required but not installed.")
        pytest.skip("Playwright not installed")
    # Playwright's sync API keeps an event loop in the test thread; the tests' own ORM calls are still sync.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(chromium, live_server, request):
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1360, "height": 900}, locale="en-US"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    # What a user would not see but a broken page shows: uncaught script errors, server errors, and
    # missing files (a 404 for anything but an htmx request, which may answer 404 on purpose; and for
    # pages a test marked `pages_not_found` opens to see them refused).
    pages_not_found = request.node.get_closest_marker("pages_not_found") is not None
    broken: list[str] = []
    page.on("pageerror", lambda error: broken.append(f"script error: {error}"))
    page.on(
        "response",
        lambda response: (
            broken.append(f"{response.status} {response.request.method} {response.url}")
            if response.status >= 500
            or (
                response.status == 404
                and response.request.resource_type not in ("xhr", "fetch")
                and not (pages_not_found and response.request.resource_type == "document")
            )
            else None
        ),
    )
    # The Content-Security-Policy refusing something the page needs (an inline script, style or handler), or
    # htmx asked to evaluate code it may not (an hx-trigger filter: said on the console by this init script,
    # which Playwright runs outside the page's CSP).
    page.add_init_script(
        "document.addEventListener('htmx:evalDisallowedError', function () {"
        " console.error('htmx:evalDisallowedError'); });"
    )
    page.on(
        "console",
        lambda message: (
            broken.append(f"console: {message.text}")
            if message.type == "error"
            and ("Content Security Policy" in message.text or "evalDisallowedError" in message.text)
            else None
        ),
    )
    yield page
    context.close()
    assert not broken, f"the pages had errors: {broken}"


@pytest.fixture
def screenshot(page, request):
    """Save a full-page screenshot under test-artifacts/ (kept by CI as evidence of what users see)."""

    def take(name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def docs_screenshots() -> Path | None:
    """docs/img/ when AFTERDESK_SCREENSHOTS=1 (`make screenshots`): the README's pictures are retaken there;
    otherwise None and nothing is written outside test-artifacts/."""
    if os.environ.get("AFTERDESK_SCREENSHOTS") != "1":
        return None
    return Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture
def log_in(page):
    """Log in through the login form, as a user would: `log_in(username)` (password PASSWORD by default)."""

    def go(username: str, password: str = PASSWORD) -> None:
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()

    return go
