"""One store full of hostile text (tests/xss_corpus.py), written the way it arrives in production wherever
that is practical: the storefront API for SKUs, live sessions, orders, notes, buyer replies, complaints,
compensation results and webhook endpoints; a signed AfterShip push for the carrier's checkpoints; the
portal's own forms for the appeal export; the services for what only an agent types in a form (templates,
evidence, compensation reasons, imports).

`build_world()` returns the ids of what it made and, by field, the payload it put there, so a page's test
can say which hostile texts it must show as text."""

from __future__ import annotations

import hashlib
import io
import json
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

from django.contrib.auth import get_user_model
from django.test import Client

from cases.appeals import appeal_create, appeal_scenarios_ensure
from cases.compensation import Proposal, compensation_propose
from cases.evidence import evidence_add
from cases.message_defaults import default_templates_ensure
from cases.messages import message_send, template_save
from cases.models import AppealScenario, Compensation, Complaint, MessageTemplate
from cases.reporting.models import HealthThreshold
from cases.reporting.review import live_review_write
from cases.services import case_raise
from portal.services import api_key_create
from tests.api import Api
from tests.browser.conftest import PASSWORD
from tests.evidence_files import jpeg
from tests.factories import make_membership, make_store, make_user
from tests.xss_corpus import STORABLE, Payload
from tracking.imports.service import import_upload
from tracking.models import LiveSession, Order, Shipment, TrackingConnection, TrackingEvent
from tracking.providers._parsing import hmac_sha256_base64
from tracking.tasks import process_deliveries

FIXTURE = "aftership_tracking_update.json"
SECRET = "xss-aftership-secret-0123456789"
STORE_CODE = "xss-shop"
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class World:
    store_pk: int = 0
    case_pks: list[int] = field(default_factory=list)
    order_pks: list[int] = field(default_factory=list)
    shipment_pk: int = 0  # the parcel AfterShip pushed checkpoints for
    other_shipment_pk: int = 0  # the one 17TRACK pushed for
    live_session_pk: int = 0
    other_live_session_pk: int = 0
    template_pk: int = 0
    import_pk: int = 0
    evidence_pks: list[int] = field(default_factory=list)
    appeal_pk: int = 0
    compensation_pks: list[int] = field(default_factory=list)
    webhook_endpoint_pk: int = 0
    complaint_pks: list[int] = field(default_factory=list)
    fields: dict[str, Payload] = field(default_factory=dict)  # "buyer_name.0": the payload written there
    complaint_pages: list[tuple[str, Payload]] = field(default_factory=list)  # where each complaint shows
    packet: bytes = b""  # the appeal packet the export answered with

    def on(self, *names: str) -> list[Payload]:
        """The payloads written to these fields (a name without `.n` takes all its numbered ones)."""
        found = []
        for name in names:
            found += [p for key, p in self.fields.items() if key == name or key.startswith(name + ".")]
        return found


class Dealer:
    """Hands out the corpus one payload at a time, to fields with their own limits (length, characters a
    URL path cannot carry), each payload once before any is used twice."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.unused = list(STORABLE)
        self.counts: dict[str, int] = {}

    def deal(
        self, name: str, *, max_length: int = 5000, path_safe: bool = False, code: bool = False, fits=None
    ) -> Payload:
        def ok(p: Payload) -> bool:
            text = p.text
            return (
                len(text) <= max_length
                and (text == text.strip() or not code)
                and (not path_safe or ("/" not in text and "\\" not in text and "%" not in text and "?" not in text and "#" not in text))
                and (not code or not any(c in text for c in "\n\r\u2028\u2029\x85"))
                and (fits is None or fits(text))
            )  # fmt: skip

        chosen = next((p for p in self.unused if ok(p)), None) or next(p for p in STORABLE if ok(p))
        if chosen in self.unused:
            self.unused.remove(chosen)
        n = self.counts.get(name, 0)
        self.counts[name] = n + 1
        self.world.fields[f"{name}.{n}"] = chosen
        return chosen

    def rest(self, name: str, count: int) -> list[Payload]:
        """Up to `count` of the payloads not used yet (for the long free-text fields)."""
        taken = [self.deal(name) for _ in range(min(count, len(self.unused)))]
        return taken


def _aftership_push(tracking_number: str, checkpoints: list[tuple[str, str]]) -> tuple[bytes, dict[str, str]]:
    """AfterShip's documented webhook body (the fixture) for one parcel, its checkpoints' message and
    location replaced; signed as AfterShip signs it."""
    from tests.tracking.providers.conftest import fixture_json

    document = fixture_json(FIXTURE)
    document["event_id"] = str(uuid.uuid4())
    msg = document["msg"]
    msg.update(tracking_number=tracking_number, slug="jtexpress", tag="InTransit", subtag="InTransit_003")
    template = msg["checkpoints"][1]
    start = NOW - timedelta(hours=len(checkpoints) + 2)
    msg["checkpoints"] = [
        {**template, "checkpoint_time": (start + timedelta(hours=i)).isoformat(), "message": text,
         "location": location, "city": location[:40], "hash": None}
        for i, (text, location) in enumerate(checkpoints)
    ]  # fmt: skip
    body = json.dumps(document).encode()
    return body, {"aftership-hmac-sha256": hmac_sha256_base64(SECRET, body)}


def _seventeentrack_push(
    tracking_number: str, checkpoints: list[tuple[str, str]]
) -> tuple[bytes, dict[str, str]]:
    """17TRACK's TRACKING_UPDATED push (the fixture) for one parcel, newest event first as 17TRACK lists
    them, with the events' description and location replaced; signed as 17TRACK signs it."""
    from tests.tracking.providers.conftest import fixture_json

    document = fixture_json("seventeentrack_tracking_updated.json")
    data = document["data"]
    data["number"] = tracking_number
    template = data["track_info"]["tracking"]["providers"][0]["events"][-1]
    start = NOW - timedelta(hours=len(checkpoints) + 2)
    events = [
        {**template, "time_iso": (start + timedelta(hours=i)).isoformat(), "time_utc": (start + timedelta(hours=i)).isoformat(),
         "description": text, "location": location, "sub_status": "InTransit_Arrival", "stage": None}
        for i, (text, location) in enumerate(checkpoints)
    ][::-1]  # fmt: skip
    data["track_info"]["tracking"]["providers"][0]["events"] = events
    data["track_info"]["latest_event"] = events[0]
    data["track_info"]["latest_status"] = {
        "status": "InTransit",
        "sub_status": "InTransit_Arrival",
        "sub_status_descr": None,
    }
    body = json.dumps(document).encode()
    return body, {"sign": hashlib.sha256(body + b"/" + SECRET.encode()).hexdigest()}


def _file_name_ok(text: str) -> bool:
    """What evidence takes as a file name: no path, no control or invisible characters (RTL overrides)."""
    return (
        "/" not in text
        and "\\" not in text
        and not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)
    )


def _ok(response, what: str) -> None:
    assert response.status_code < 300, f"{what}: {response.status_code} {response.content[:500]!r}"


def build_world() -> World:
    world = World()
    dealer = Dealer(world)
    deal = dealer.deal

    store = make_store(code=STORE_CODE, name=deal("store_name", max_length=100).text)
    world.store_pk = store.pk
    boss = make_user("xss-boss", password=PASSWORD)
    get_user_model().objects.filter(pk=boss.pk).update(is_staff=True, is_superuser=True)
    make_membership(user=boss, store=store, role="admin")
    agent = make_user("xss-agent", password=PASSWORD)
    make_membership(user=agent, store=store, role="agent")
    api = Api(store)
    api_key_create(store=store, name=deal("api_key_name", max_length=100).text)

    # The catalogue and the livestream, through the storefront API.
    sku_codes = []
    for _ in range(3):
        code = deal("sku_code", max_length=64, path_safe=True, code=True).text
        sku_codes.append(code)
        path = f"skus/{quote(code, safe='')}"
        _ok(api.put(path, {"name": deal("sku_name", max_length=200).text, "unit_price": "29.90"}), "sku")
        _ok(api.put(f"{path}/stock", {"on_hand": 2, "allocated": 2}), "stock")
    live_id = deal("live_session_id", max_length=64, path_safe=True, code=True).text
    _ok(
        api.put(
            f"live-sessions/{quote(live_id, safe='')}",
            {"title": deal("live_title", max_length=200).text, "host": deal("live_host", max_length=120).text,
             "started_at": (NOW - timedelta(hours=3)).isoformat(), "ended_at": (NOW - timedelta(hours=1)).isoformat(),
             "allocations": [{"sku": code, "quantity": 2} for code in sku_codes]},
        ),
        "live session",
    )  # fmt: skip

    other_id = deal("live_session_id", max_length=64, path_safe=True, code=True).text
    _ok(
        api.put(
            f"live-sessions/{quote(other_id, safe='')}",
            {"title": deal("live_title", max_length=200).text, "host": deal("live_host", max_length=120).text,
             "started_at": (NOW - timedelta(days=2)).isoformat(), "ended_at": (NOW - timedelta(days=2, hours=-2)).isoformat()},
        ),
        "live session",
    )  # fmt: skip

    # Orders: the buyer's name, phone and address, the line's name and lot, the order id itself.
    orders = []
    for i in range(6):
        placed = NOW - timedelta(hours=2, minutes=i)
        orders.append({
            "platform_order_id": deal("order_id", max_length=64, code=True).text,
            "buyer": {"name": deal("buyer_name", max_length=120).text, "phone": deal("buyer_phone", max_length=32).text,
                      "email": "", "platform_id": f"tt-{i}", "language": "en"},
            "address": {"country": "MY", "province": deal("province", max_length=80).text,
                        "city": deal("city", max_length=80).text, "district": deal("district", max_length=80).text,
                        "street": deal("street", max_length=255).text, "postal_code": "47300"},
            "placed_at": placed.isoformat(), "ship_by": (placed + timedelta(hours=48)).isoformat(),
            "amount": "59.90", "currency": "MYR", "live_session": live_id,
            "lines": [{"sku": sku_codes[i % 3], "name": deal("line_name", max_length=200).text,
                       "lot": deal("line_lot", max_length=64).text, "quantity": 1, "unit_price": "59.90"}],
            "shipments": [{"carrier": "jtexpress", "tracking_number": f"JTX{i:012d}",
                           "booked_at": (placed + timedelta(minutes=30)).isoformat()}],
        })  # fmt: skip
    response = api.post("orders/bulk", {"orders": orders}, headers={"Idempotency-Key": "xss-orders"})
    _ok(response, "orders")
    assert all(r["result"] in ("created", "updated") for r in response.json()["results"]), response.json()
    order_rows = list(Order.objects.filter(store=store).order_by("placed_at"))
    world.order_pks = [o.pk for o in order_rows]

    # The carrier's checkpoints, pushed by AfterShip to the webhook and processed by the worker's step.
    first = Shipment.objects.get(order=order_rows[-1])  # the earliest placed
    world.shipment_pk = first.pk
    connection = TrackingConnection.objects.create(store=store, provider="aftership", webhook_secret=SECRET)
    checkpoints = [
        (deal("checkpoint_text", max_length=500).text, deal("checkpoint_location", max_length=120).text)
        for _ in range(6)
    ]
    body, headers = _aftership_push(first.tracking_number, checkpoints)
    _ok(
        Client().post(connection.webhook_path, data=body, content_type="application/json", headers=headers),
        "push",
    )
    second = Shipment.objects.get(order=order_rows[-2])
    world.other_shipment_pk = second.pk
    seventeen = TrackingConnection.objects.create(
        store=store, provider="17track", webhook_secret=SECRET, credentials={"api_key": SECRET}
    )
    checkpoints = [
        (deal("checkpoint_text", max_length=500).text, deal("checkpoint_location", max_length=120).text)
        for _ in range(4)
    ]
    body, headers = _seventeentrack_push(second.tracking_number, checkpoints)
    _ok(
        Client().post(seventeen.webhook_path, data=body, content_type="application/json", headers=headers),
        "push",
    )
    process_deliveries()
    pushed = {p.text for key, p in world.fields.items() if key.startswith("checkpoint_text.")}
    assert TrackingEvent.objects.filter(shipment__in=[first, second], raw_text__in=pushed).count() == 10

    # Cases on the orders (the rules would raise them as the deadlines pass; the test does not wait).
    types = ["stalled_in_transit", "pickup_overdue", "damaged", "lost", "delivery_failed", "address_issue"]
    cases = []
    for order, type_ in zip(order_rows[::-1], types, strict=True):
        shipment = Shipment.objects.get(order=order)
        case, _ = case_raise(
            type=type_, order=order, shipment=shipment, summary=deal("case_summary", max_length=255).text
        )
        cases.append(case)
    world.case_pks = [c.pk for c in cases]

    # What the storefront says about a case: notes, buyer replies, complaints.
    for case in cases[:3]:
        _ok(api.post(f"cases/{case.pk}/notes", {"text": deal("note").text}), "note")
        _ok(api.post(f"cases/{case.pk}/buyer-replies", {"text": deal("buyer_reply").text}), "buyer reply")
    for order in order_rows[:3]:
        response = api.post(
            "complaints", {"order_id": order.platform_order_id, "text": deal("complaint").text}
        )
        _ok(response, "complaint")
        world.complaint_pks.append(response.json()["id"])
    response = api.post(
        "webhook-endpoints",
        {
            "url": "https://hooks.example/afterdesk",
            "description": deal("endpoint_description", max_length=200).text,
        },
    )
    _ok(response, "endpoint")
    world.webhook_endpoint_pk = response.json()["id"]

    # Compensation: one the storefront could not execute (its reason shows on the case), one waiting for a
    # supervisor (an agent's proposal above the agent's limit), with the agent's reason and note.
    damaged = cases[2]
    done, _ = compensation_propose(
        case=damaged, actor=boss, idempotency_key="xss-c1",
        proposal=Proposal(kind="coupon", amount=Decimal("5.00"), reason=deal("compensation_reason").text,
                          note=deal("compensation_note").text),
    )  # fmt: skip
    _ok(api.post(f"compensations/{done.pk}/result", {"status": "failed", "reason": deal("compensation_failure", max_length=2000).text}), "result")  # fmt: skip
    waiting, _ = compensation_propose(
        case=cases[3], actor=agent, idempotency_key="xss-c2",
        proposal=Proposal(kind="full_refund", reason=deal("compensation_reason").text,
                          note=deal("compensation_note").text),
    )  # fmt: skip
    world.compensation_pks = [done.pk, waiting.pk]

    # Message templates (their text is a template: braces doubled to be literal) and the defaults.
    default_templates_ensure()
    for case_type in ("stalled_in_transit", "lost"):
        text = deal("template_body").text
        template = template_save(
            actor=boss,
            data={"store": store, "case_type": case_type, "language": "en", "channel": "email",
                  "name": deal("template_name", max_length=120).text,
                  "subject": "Re {order_id} " + deal("template_subject", max_length=150).text.replace("{", "{{").replace("}", "}}"),
                  "body": "Hi {buyer_name}, " + text.replace("{", "{{").replace("}", "}}") + " {latest_checkpoint}"},
        )  # fmt: skip
        world.template_pk = world.template_pk or template.pk

    # A message sent to the first case's buyer with the hostile template: its snapshot shows on the case.
    message_send(
        case=cases[0],
        template=MessageTemplate.objects.get(pk=world.template_pk),
        actor=boss,
        channel="storefront",
    )

    # Evidence: the file's name and description are the agent's (or the API client's) words.
    pickup = cases[1]
    for i in range(3):
        name = deal("evidence_name", max_length=180, fits=_file_name_ok).text + ".jpg"
        evidence = evidence_add(
            case=pickup, upload=io.BytesIO(jpeg(size=(32, 24))), name=name, kind="booking_confirmation" if i == 0 else "cctv_still",
            actor=boss, description=deal("evidence_description").text, captured_at=NOW - timedelta(hours=1),
        )  # fmt: skip
        world.evidence_pks.append(evidence.pk)

    # An appeal, exported incomplete by a supervisor with a reason, through the portal's own form.
    appeal_scenarios_ensure()
    scenario = AppealScenario.objects.filter(platform=store.platform).order_by("pk").first()
    appeal = appeal_create(store=store, scenario=scenario, cases=[pickup], actor=boss)
    world.appeal_pk = appeal.pk
    portal = Client()
    portal.force_login(boss)
    response = portal.post(
        f"/cases/appeals/{appeal.pk}/export/",
        {"override_reason": deal("appeal_override", max_length=2000).text},
    )
    _ok(response, "appeal export")
    world.packet = b"".join(response.streaming_content) if response.streaming else response.content

    # An import whose file name and cells are hostile (refused rows show their cells).
    rows = ["order_id,buyer,phone,address,sku,qty"]
    for _ in range(3):
        cells = [
            deal("import_cell", max_length=200, fits=lambda t: "\n" not in t and "\r" not in t).text
            for _ in range(3)
        ]
        rows.append(",".join(['"' + c.replace('"', '""') + '"' for c in cells]) + ",,x")
    imp = import_upload(
        store=store, actor=boss, file_name=deal("import_file_name", max_length=150, fits=_file_name_ok).text + ".csv",
        data="\n".join(rows).encode(),
    )  # fmt: skip
    world.import_pk = imp.pk

    # A threshold whose source link someone set to a script (the admin form refuses it; a data fix may not).
    HealthThreshold.objects.create(
        store=store, platform=store.platform, metric="late_dispatch", window_days=7, penalty_percent=Decimal("4"),
        source=deal("threshold_source", fits=lambda t: t.lower().startswith("javascript:")).text,
    )  # fmt: skip

    # What is left of the corpus goes into the long free-text fields that several pages show.
    for payload_case in cases:
        for payload in dealer.rest("note", -(-len(dealer.unused) // len(cases))):
            _ok(api.post(f"cases/{payload_case.pk}/notes", {"text": payload.text}), "note")
    assert not dealer.unused, [p.id for p in dealer.unused]
    world.live_session_pk = Order.objects.get(pk=world.order_pks[0]).live_session_id
    world.other_live_session_pk = LiveSession.objects.get(store=store, external_id=other_id).pk
    for session in LiveSession.objects.filter(store=store):  # the post-live reviews (the 48 h task's work)
        live_review_write(session=session, now=NOW)
    # A complaint the classifier was sure of joined a case (its text is on the case's timeline); one it was
    # not sure of waits in triage.
    for complaint in Complaint.objects.filter(pk__in=world.complaint_pks):
        page = f"/cases/{complaint.case_id}/" if complaint.case_id else "/cases/triage/"
        world.complaint_pages.append((page, next(p for p in STORABLE if p.text == complaint.text)))
    assert MessageTemplate.objects.filter(store=store).count() == 2
    assert Compensation.objects.filter(store=store).count() == 2
    return world
