"""Hostile text where it leaves Afterdesk other than as a page: buyer messages filled from a template, the
CSV exports a supervisor opens in a spreadsheet, the appeal packet a platform reviewer opens; and the doors
that refuse what no database should hold (NUL) or what disguises a file (a right-to-left override).

The browser side (every page, in Chromium) is tests/browser/test_xss_browser.py; the corpus is
tests/xss_corpus.py."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from cases.appeals import appeal_create, appeal_scenarios_ensure
from cases.compensation import Proposal, compensation_propose
from cases.evidence import evidence_add
from cases.messages import template_fill, template_render
from cases.models import AppealScenario, CaseEvent, Claim, Evidence, MessageTemplate
from cases.services import case_raise
from cases.workflow import case_note_add
from tests.api import Api, order_body, problem
from tests.evidence_files import jpeg
from tests.factories import make_membership, make_order, make_shipment, make_user
from tests.xss_corpus import BY_ID, FORMULAS, PAYLOADS
from tracking.models import Order, TrackingEvent

pytestmark = pytest.mark.django_db

TEMPLATE_SYNTAX = [p.text for p in PAYLOADS if p.family == "template"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def boss(store):
    user = make_user("sue")
    make_membership(user=user, store=store, role="supervisor")
    return user


def _case(store, *, type="lost", **order_fields):
    order = make_order(store=store, **order_fields)
    shipment = make_shipment(order=order, booked_at=order.placed_at + timedelta(hours=1), accepted_at=None)
    return case_raise(type=type, order=order, shipment=shipment, summary="x")[0]


def _rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def _assert_inert(rows: list[list[str]]) -> None:
    """No cell a spreadsheet would read as a formula."""
    live = [cell for row in rows for cell in row if cell.startswith(FORMULA_START)]
    assert not live, live


# --- buyer messages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", TEMPLATE_SYNTAX)
def test_a_placeholder_value_is_put_in_as_written_never_rendered_as_a_template(hostile):
    filled = template_fill(
        "Hi {buyer_name}, from {store_name}.", {"buyer_name": hostile, "store_name": hostile}
    )
    assert filled == f"Hi {hostile}, from {hostile}."


def test_a_buyer_named_in_template_syntax_gets_a_message_with_that_name(store, boss):
    name = "{{7*7}}{% debug %}{buyer_name}${alert('x041')}"
    store.name = "{{ settings.SECRET_KEY }}{% load log %}"
    store.save(update_fields=["name"])
    case = _case(store, type="stalled_in_transit", buyer_name=name)
    template = MessageTemplate.objects.create(
        store=store, case_type="stalled_in_transit", language="en", channel="email", name="t",
        subject="Order {order_id}", body="Hi {buyer_name}, {{literal}} from {store_name}",
    )  # fmt: skip

    rendered = template_render(template=template, case=case)

    assert rendered.body == f"Hi {name}, {{literal}} from {store.name}"
    assert "49" not in rendered.body and "SECRET" in rendered.body  # nothing evaluated, nothing looked up


def test_the_message_preview_shows_a_hostile_buyer_name_escaped(client, store, boss):
    name = BY_ID["x011"].text  # <img src=x onerror=alert('x011')>
    case = _case(store, type="stalled_in_transit", buyer_name=name)
    template = MessageTemplate.objects.create(
        store=store, case_type="stalled_in_transit", language="en", channel="storefront", name="t",
        body="Hi {buyer_name}",
    )  # fmt: skip
    client.force_login(boss)

    page = client.get(
        reverse("cases:message_preview", args=[case.pk]), {"template": template.pk}
    ).content.decode()

    assert "Hi &lt;img src=x onerror=alert(&#x27;x011&#x27;)&gt;" in page
    assert "<img src=x" not in page


# --- CSV exports ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("formula", FORMULAS)
def test_the_ledger_and_claims_exports_neutralise_formulas(client, store, boss, formula):
    case = _case(store, platform_order_id=formula.strip() or "580000000001")
    compensation_propose(
        case=case, actor=boss, idempotency_key="f",
        proposal=Proposal(kind="reship", amount=Decimal("15.00"), reason=formula, note=formula),
    )  # fmt: skip
    client.force_login(boss)
    client.post(
        reverse("cases:resolve", args=[case.pk]), {"resolution": "reshipped", "fault_party": "carrier"}
    )
    claim = Claim.objects.get(case=case)
    client.post(reverse("cases:claim_move", args=[claim.pk]), {"to_status": "submitted", "reference": "=1+1"})

    ledger = _rows(client.get(reverse("cases:ledger_export")).content)
    claims = _rows(client.get(reverse("cases:claims_export")).content)

    _assert_inert(ledger)
    _assert_inert(claims)
    assert ledger[1][-1] == "'" + formula.strip()  # the reason (trimmed when proposed), behind an apostrophe
    assert claims[1][1] == (
        ("'" + case.order.platform_order_id) if formula.strip() else case.order.platform_order_id
    )


# --- the appeal packet ------------------------------------------------------------------------------------


def test_the_appeal_packet_keeps_hostile_text_as_data(client, store, boss):
    store.name = BY_ID["x001"].text
    store.save(update_fields=["name"])
    case = _case(store, type="pickup_overdue", buyer_name=BY_ID["x016"].text, buyer_phone="+60123456789")
    TrackingEvent.objects.create(
        shipment=case.shipment, checkpoint_at=case.order.placed_at + timedelta(hours=2), tag="InfoReceived",
        raw_code="=1+1", raw_text=FORMULAS[0], location=BY_ID["x021"].text, source="push", dedupe_key="e1",
        received_at=case.order.placed_at + timedelta(hours=2),
    )  # fmt: skip
    case_note_add(case=case, actor=boss, text=FORMULAS[1])
    evil_name = BY_ID["x011"].text + ".jpg"  # <img src=x onerror=alert('x011')>.jpg
    evidence_add(
        case=case, upload=io.BytesIO(jpeg()), name=evil_name, kind="booking_confirmation", actor=boss
    )
    appeal_scenarios_ensure()
    scenario = AppealScenario.objects.filter(platform=store.platform).order_by("pk").first()
    appeal = appeal_create(store=store, scenario=scenario, cases=[case], actor=boss)
    client.force_login(boss)

    response = client.post(
        reverse("cases:appeal_export", args=[appeal.pk]), {"override_reason": BY_ID["x065"].text}
    )

    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        names = archive.namelist()
        packet = {name: archive.read(name) for name in names}
    # The file's name in the ZIP is made by Afterdesk, never the uploader's: no markup, no path.
    assert all(name.isascii() and ".." not in name and "<" not in name for name in names), names
    manifest = json.loads(packet["manifest.json"])
    assert manifest["store"]["name"] == store.name
    assert [f["original_name"] for f in manifest["files"]] == [evil_name]
    for name in (n for n in names if n.endswith(".csv")):
        _assert_inert(_rows(packet[name]))
    tracking = _rows(packet["system/tracking.csv"])
    assert tracking[1][6:9] == ["'=1+1", "'" + FORMULAS[0], BY_ID["x021"].text]
    # The summary draws text: no link, script or action a PDF reader would follow or run.
    summary = packet["summary.pdf"]
    assert summary.startswith(b"%PDF")
    for action in (b"/JavaScript", b"/JS", b"/URI", b"/Launch", b"/OpenAction", b"/AA", b"/Annot"):
        assert action not in summary, action


# --- the doors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if not p.storable], ids=lambda p: p.id)
def test_the_api_refuses_text_with_nul_and_writes_nothing(store, payload):
    api = Api(store)
    body = order_body(buyer={"name": payload.text, "platform_id": "tt-1", "phone": "", "language": "en"})

    response = api.put("orders/580000000777", body)

    assert response.status_code == 400
    assert "NUL" in problem(response)["detail"] + json.dumps(problem(response).get("errors", []))
    assert not Order.objects.exists()


def test_a_note_with_nul_is_refused_by_the_form(client, store, boss):
    case = _case(store)
    client.force_login(boss)
    before = CaseEvent.objects.filter(case=case).count()

    response = client.post(reverse("cases:note", args=[case.pk]), {"text": BY_ID["x113"].text + "\x00"})

    assert response.status_code == 400
    assert CaseEvent.objects.filter(case=case).count() == before


def test_an_evidence_file_named_with_a_right_to_left_override_is_refused(client, store, boss):
    case = _case(store, type="pickup_overdue")
    client.force_login(boss)
    upload = io.BytesIO(jpeg())
    upload.name = "invoice\u202egpj.exe"  # shows as invoiceexe.jpg

    response = client.post(
        reverse("cases:evidence_upload", args=[case.pk]), {"file": upload, "kind": "cctv_still"},
        headers={"X-Requested-With": "XMLHttpRequest"},  # as the page's drop zone sends it
    )  # fmt: skip

    assert response.status_code == 400
    assert "invisible" in response.content.decode()
    assert not Evidence.objects.exists()


@pytest.mark.parametrize(
    ("source", "linked"),
    [
        ("javascript:alert('x031')", False),
        (" JaVaScRiPt:alert('x032')", False),
        ("data:text/html,<b>x</b>", False),
        ("https://seller.tiktokglobalshop.com/university/essay?knowledge_id=1", True),
    ],
)
def test_a_threshold_source_is_linked_only_when_it_is_a_web_address(client, store, boss, source, linked):
    from cases.reporting.models import HealthThreshold

    HealthThreshold.objects.create(
        store=store,
        platform=store.platform,
        metric="late_dispatch",
        penalty_percent=Decimal("4"),
        source=source,
    )  # written past the admin form's URL check, as a data fix or the shell would
    client.force_login(boss)

    page = client.get(reverse("reports:health_store", args=[store.code])).content.decode()

    hrefs = [part.split('"', 1)[0] for part in page.split('href="')[1:]]
    assert (source.strip() in hrefs) is linked
    assert not [href for href in hrefs if href.strip().lower().startswith(("javascript:", "data:"))]
    assert source.strip()[:12] in page  # shown as text either way
