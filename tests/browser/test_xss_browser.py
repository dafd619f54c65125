"""Hostile text everywhere a buyer, a storefront, a carrier or a colleague can write, shown on every page
that shows it, in Chromium: nothing runs, and the text is shown as text.

The world (tests/browser/xss_world.py) spreads the whole corpus (tests/xss_corpus.py) over the fields and is
built once for the module; each page family is a test of its own, so a failure names the page. A page
passes when, after it loaded and its htmx partials were swapped in:
- no payload ran: no dialog (alert/confirm/prompt), no call of the `window.__xss` hook, no script error;
- no payload reached the markup: none is in any HTML answer unescaped (so the proof does not rest on the
  Content-Security-Policy), and the DOM has no event-handler attribute, script, `javascript:`/`data:` link
  or CSS expression made from one;
- the payloads the page shows are visible as the text that was written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from django.core.management import call_command
from django.test import override_settings
from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import PASSWORD
from tests.browser.xss_world import STORE_CODE, World, build_world
from tests.xss_corpus import STORABLE, Payload

pytestmark = [pytest.mark.browser]

# Installed before any page script: the marker every payload calls, and a console line a listener can see
# even when the page has gone.
HOOK = """
window.__xssHits = [];
window.__xss = function (id) { window.__xssHits.push(String(id)); console.log("XSS-EXECUTED " + id); };
"""

# What no template makes and an escaped payload cannot make: handlers, scripts and links carrying a
# payload id; script-bearing URLs; CSS expressions; elements only an injection brings.
DOM_AUDIT = r"""() => {
  const id = /\bx\d{3}\b/;
  const found = [];
  const urlAttrs = ["href", "src", "action", "formaction", "data", "xlink:href", "hx-get", "hx-post", "poster", "background"];
  for (const el of document.querySelectorAll("*")) {
    const tag = el.tagName.toLowerCase();
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value;
      if ((name.startsWith("on") || name.includes("hx-on")) && id.test(value)) found.push(`${tag}[${name}=${value}]`);
      if (urlAttrs.includes(name) && /^(javascript|vbscript|data):/i.test(value.replace(/[\u0000-\u0020]/g, "")))
        found.push(`${tag}[${name}=${value}]`);
      if (name === "style" && /expression\(|javascript:/i.test(value)) found.push(`${tag}[style=${value}]`);
      if (name === "srcdoc") found.push(`${tag}[srcdoc]`);
    }
    if ((tag === "script" || tag === "style") && id.test(el.textContent)) found.push(`<${tag}>${el.textContent.slice(0, 80)}`);
    if (["iframe", "object", "embed", "marquee", "math", "mglyph", "animate", "foreignobject"].includes(tag) && id.test(el.outerHTML))
      found.push(`<${tag}>`);
  }
  return found;
}"""

MARKER = re.compile(r"\bx\d{3}\b")
URL_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "data",
    "xlink:href",
    "hx-get",
    "hx-post",
    "poster",
    "background",
}
INJECTED_ONLY = {
    "iframe",
    "object",
    "embed",
    "marquee",
    "math",
    "mglyph",
    "animate",
    "foreignobject",
    "frame",
    "base",
}


class MarkupAudit(HTMLParser):
    """The server's HTML as a browser's parser reads it: markup (not text) that a payload made."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            value = value or ""
            if (name.startswith("on") or "hx-on" in name) and MARKER.search(value + name):
                self.found.append(f"<{tag} {name}={value[:60]}>")
            if name in URL_ATTRIBUTES and re.match(
                r"(javascript|vbscript|data):", re.sub(r"[\x00-\x20]", "", value), re.I
            ):
                self.found.append(f"<{tag} {name}={value[:60]}>")
            if name == "style" and re.search(r"expression\(|javascript:", value, re.I):
                self.found.append(f"<{tag} style={value[:60]}>")
            if name == "srcdoc" or (MARKER.search(name)):
                self.found.append(f"<{tag} {name}>")
        if tag in INJECTED_ONLY:
            self.found.append(f"<{tag}>")
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in and MARKER.search(data):
            self.found.append(f"<{self._in}>{data[:60]}")


def _markup_made_by_payloads(html: str) -> list[str]:
    audit = MarkupAudit()
    audit.feed(html)
    audit.close()
    return audit.found


FIELD_VALUES = """() => [...document.querySelectorAll("input, textarea")].map(el => el.value)"""


def _normal(text: str) -> str:
    """Whitespace collapsed and case folded, as CSS shows it (table headers are set in capitals)."""
    return " ".join(text.split()).casefold()


def _markup(payload: Payload) -> bool:
    """Whether the payload holds a character escaping changes: present verbatim, it was not escaped."""
    return any(char in payload.text for char in "<>\"'")


@dataclass
class Watch:
    """What the page did that it should not have, since the last reset."""

    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    responses: list = field(default_factory=list)

    def reset(self) -> None:
        self.dialogs.clear()
        self.console.clear()
        self.errors.clear()
        self.responses.clear()


@pytest.fixture(autouse=True)
def _live_server_helper(request):
    """pytest-django's helper without its per-test transactional_db: the world is built once for the module
    (below) and flushed once after it, as a transactional test would."""
    if "live_server" not in request.fixturenames:
        yield
        return
    live_server = request.getfixturevalue("live_server")
    live_server._live_server_modified_settings.enable()
    yield
    live_server._live_server_modified_settings.disable()


@pytest.fixture(autouse=True)
def _media_root():
    """The module's own media directory (set by `world`), not a fresh one per test: the evidence is in it."""
    yield


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory, live_server):
    """Built once, committed (the live server's threads read it on PostgreSQL), flushed after the module.
    It asks for `live_server` so that pytest-django sets the test database up for every test using it."""
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("xss-media"))):
        try:
            yield build_world()
        finally:
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def browser_page(chromium, live_server, world):
    """One logged-in context for the module (a superuser who is an admin of the store: every page opens)."""
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1360, "height": 900}, locale="en-US"
    )
    context.set_default_timeout(10_000)
    context.add_init_script(HOOK)
    page = context.new_page()
    watch = Watch()

    def on_dialog(dialog) -> None:
        watch.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on(
        "console",
        lambda message: watch.console.append(message.text) if "XSS-EXECUTED" in message.text else None,
    )
    page.on("pageerror", lambda error: watch.errors.append(str(error)))
    page.on("response", lambda answer: watch.responses.append(answer))
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("xss-boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/cases/"))
    yield page, watch
    context.close()


def _check(page, watch: Watch, url: str, *, shows: list[Payload] = (), then=None) -> list[str]:
    """Open `url` (then run `then(page)`: htmx swaps, a select), and list everything wrong with it."""
    watch.reset()
    response = page.goto(url)
    problems = []
    if response is None or response.status >= 400:
        return [f"{url}: HTTP {response.status if response else 'none'}"]
    if not url.startswith("/admin/"):  # the portal's pages load partials with htmx once loaded
        page.wait_for_load_state("networkidle")
    if then is not None:
        then(page)
        page.wait_for_load_state("networkidle")
    hits = page.evaluate("window.__xssHits")
    if watch.dialogs or watch.console or hits or watch.errors:
        problems.append(
            f"{url}: ran: dialogs={watch.dialogs} hooks={hits or watch.console} errors={watch.errors}"
        )
    problems += [f"{url}: in the DOM: {found}" for found in page.evaluate(DOM_AUDIT)]
    for answer in watch.responses:
        if answer.status >= 500:
            problems.append(f"{url}: {answer.status} from {answer.url}")
        if "text/html" not in (answer.headers.get("content-type") or "") or answer.status >= 300:
            continue
        try:
            body = answer.text()
        except PlaywrightError:  # gone with a navigation since: the same GET again
            body = page.request.get(answer.url, headers=answer.request.headers).text()
        raw = [p.id for p in STORABLE if _markup(p) and p.text in body] + _markup_made_by_payloads(body)
        if raw:
            problems.append(f"{url}: unescaped in {answer.url}: {raw}")
    # What a person sees: the page's text and what its form fields hold.
    text = _normal(page.inner_text("body") + " " + " ".join(page.evaluate(FIELD_VALUES)))
    missing = [p.id for p in shows if _normal(p.text) not in text]
    if missing:
        problems.append(f"{url}: not shown as text: {missing}")
    return problems


def _htmx(url: str, target: str):
    def swap(page) -> None:
        page.evaluate("([url, target]) => htmx.ajax('GET', url, {target, swap: 'outerHTML'})", [url, target])

    return swap


def _pages(w: World) -> dict[str, list[tuple[str, list[Payload], object]]]:
    """Each page family: (url, payloads it must show as text, what to do once it has loaded)."""
    store = f"/stores/{STORE_CODE}"
    first, pickup, damaged = w.case_pks[0], w.case_pks[1], w.case_pks[2]
    # AfterShip pushed the first six checkpoints (the first case's parcel), 17TRACK the next four (the second's).
    aftership = w.on(*[f"checkpoint_{name}.{i}" for name in ("text", "location") for i in range(6)])
    seventeentrack = w.on(*[f"checkpoint_{name}.{i}" for name in ("text", "location") for i in range(6, 10)])
    return {
        "queue": [
            ("/cases/", w.on("order_id", "buyer_name") + w.on("case_summary")[:3], None),
            ("/cases/?queue=unassigned", w.on("order_id"), None),
            ("/cases/?type=stalled_in_transit", [], _htmx("/cases/?type=lost", "#workspace")),
        ],
        "case page": [
            (f"/cases/{pk}/", w.on(f"order_id.{i}", f"buyer_name.{i}", f"buyer_phone.{i}"), None)
            for i, pk in enumerate(w.case_pks)
        ]
        + [
            (
                f"/cases/{first}/",
                aftership[:6] + w.on("note.0", "buyer_reply.0"),
                _htmx(f"/cases/{first}/timeline/", "#case-timeline"),
            ),
            (f"/cases/{first}/", [], _htmx(f"/cases/{first}/parcel/", "#case-parcel")),
            (f"/cases/{damaged}/", w.on("compensation_failure"), None),
            (
                f"/cases/{first}/",
                w.on("template_body.0"),
                lambda page: page.locator("#id_template").select_option(value=str(w.template_pk)),
            ),
        ],
        "parcel page": [
            (f"/tracking/shipments/{w.shipment_pk}/", aftership, None),
            (f"/tracking/shipments/{w.other_shipment_pk}/", seventeentrack, None),
        ],
        "complaints": [("/cases/triage/", [], None)]
        + [(url, [payload], None) for url, payload in w.complaint_pages],
        "reports": [
            ("/reports/", [], None),
            ("/reports/health/", [], None),
            (f"/reports/health/{STORE_CODE}/", w.on("threshold_source"), None),
            (f"/reports/health/{STORE_CODE}/thresholds/", [], None),
        ],
        "war room": [
            ("/reports/live/", w.on("live_title"), None),
            (
                f"/reports/live/{w.live_session_pk}/",
                w.on("live_title.0"),
                _htmx(f"/reports/live/{w.live_session_pk}/boards/", "#war-room-boards"),
            ),
            (f"/reports/live/{w.live_session_pk}/review/", w.on("live_title.0"), None),
            (
                f"/reports/live/compare/?s={w.live_session_pk}&s={w.other_live_session_pk}",
                w.on("live_title"),
                None,
            ),
        ],
        "store pages": [
            ("/stores/", w.on("store_name"), None),
            (f"{store}/", w.on("store_name", "api_key_name", "endpoint_description"), None),
            (f"{store}/webhooks/{w.webhook_endpoint_pk}/", w.on("endpoint_description"), None),
        ],
        "template library": [
            ("/cases/templates/", w.on("template_name"), None),
            (f"/cases/templates/{w.template_pk}/edit/", w.on("template_name.0", "template_body.0"), None),
            ("/cases/templates/new/", [], None),
        ],
        "imports": [
            (f"{store}/imports/", w.on("import_file_name"), None),
            (f"{store}/imports/{w.import_pk}/", w.on("import_file_name"), None),
        ],
        "evidence": [(f"/cases/{pickup}/", w.on("evidence_name"), None)]
        + [(f"/cases/evidence/{pk}/custody/", [], None) for pk in w.evidence_pks],
        "appeals": [
            ("/cases/appeals/", [], None),
            (f"/cases/appeals/{w.appeal_pk}/", w.on("appeal_override"), None),
            (f"/cases/appeals/new/?ids={pickup}", [], None),
        ],
        "approvals and claims": [
            ("/cases/approvals/", w.on("compensation_reason.1"), None),
            ("/cases/claims/", [], None),
        ],
        "admin": [
            (f"/admin/{path}/", [], None)
            for path in (
                "cases/case",
                "cases/caseevent",
                "cases/messagetemplate",
                "cases/evidence",
                "cases/appeal",
                "cases/custodyentry",
                "cases/buyermessage",
                "cases/storefrontevent",
                "cases/compensation",
                "cases/claim",
                "cases/healththreshold",
                "tracking/sku",
                "tracking/livesession",
                "tracking/order",
                "tracking/shipment",
                "tracking/trackingevent",
                "tracking/trackingconnection",
                "tracking/webhookdelivery",
                "portal/store",
                "portal/membership",
            )
        ]
        + [
            (f"/admin/tracking/order/{w.order_pks[0]}/change/", [], None),
            (f"/admin/cases/evidence/{w.evidence_pks[0]}/change/", [], None),
            (f"/admin/cases/case/{first}/change/", [], None),
            (f"/admin/portal/store/{w.store_pk}/change/", [], None),
        ],
    }


FAMILIES = [
    "queue", "case page", "parcel page", "complaints", "reports", "war room", "store pages", "template library",
    "imports", "evidence", "appeals", "approvals and claims", "admin",
]  # fmt: skip


@pytest.mark.parametrize("family", FAMILIES)
def test_hostile_text_shows_as_text_and_never_runs(browser_page, world, family):
    page, watch = browser_page
    problems = []
    for url, shows, then in _pages(world)[family]:
        problems += _check(page, watch, url, shows=shows, then=then)
    assert not problems, "\n".join(problems)


def test_the_world_spreads_the_whole_corpus(world):
    """Every storable payload was written somewhere a page shows (the NUL ones are refused at the door)."""
    written = {p.id for p in world.fields.values()}
    assert written == {p.id for p in STORABLE}
    assert len(STORABLE) >= 100
