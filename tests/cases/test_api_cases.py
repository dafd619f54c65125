"""The storefront reads cases and events, adds notes, passes on buyer replies and acknowledges events; and
another store's key finds none of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cases.choices import CaseStatus
from cases.messages import messages_deliver
from cases.models import BuyerMessage, Case, CaseEvent, EventDelivery, StorefrontEvent, WebhookEndpoint
from cases.outbox import events_dispatch
from cases.services import case_raise
from cases.workflow import case_transition
from tests.api import Api, api_object_routes, fields, order_body, problem
from tests.factories import make_case, make_membership, make_order, make_shipment, make_store, make_user


@pytest.fixture
def api(store):
    return Api(store)


@pytest.fixture
def supervisor(store):
    user = make_user("sam")
    make_membership(user=user, store=store, role="supervisor")
    return user


# --- reading cases -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cases_are_listed_in_pages_that_new_cases_never_shift(api, store):
    cases = [make_case(store=store) for _ in range(5)]
    first = api.get("cases", limit=2).json()
    assert [c["id"] for c in first["results"]] == [cases[0].pk, cases[1].pk]
    make_case(store=store)  # raised while the client pages
    seen = [c["id"] for c in first["results"]]
    after = first["next_cursor"]
    while after:
        page = api.get("cases", limit=2, after=after).json()
        seen += [c["id"] for c in page["results"]]
        after = page["next_cursor"]
    assert seen == sorted(set(seen)) and len(seen) == 6


@pytest.mark.django_db
def test_cases_are_filtered(api, store):
    stalled = make_case(store=store, type="stalled_in_transit")
    order = make_order(store=store, platform_order_id="580777")
    parcel = make_shipment(order=order, tracking_number="JT0000000777")
    lost, _ = case_raise(type="lost", order=order, shipment=parcel, priority=30)

    def ids(**params):
        return [c["id"] for c in api.get("cases", **params).json()["results"]]

    assert ids(type="lost") == [lost.pk]
    assert ids(order="580777") == [lost.pk]
    assert ids(tracking_number="JT0000000777") == [lost.pk]
    assert ids(priority="high") == [lost.pk]
    assert ids(status="open") == [stalled.pk, lost.pk]
    assert ids(status="resolved") == []
    listed = api.get("cases", type="lost").json()["results"][0]
    assert (listed["order_id"], listed["tracking_number"], listed["priority"]) == (
        "580777",
        "JT0000000777",
        "high",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"type": "nope"}, "type"),
        ({"status": "nope"}, "status"),
        ({"priority": "3"}, "priority"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"after": "not-a-cursor"}, "after"),
        ({"updated_after": "yesterday"}, "updated_after"),
        ({"updated_after": "2026-11-12T08:00:00"}, "updated_after"),
    ],
)
def test_bad_list_parameters_are_a_400_naming_them(api, params, field):
    response = api.get("cases", **params)
    assert response.status_code == 400
    assert field in fields(response)


@pytest.mark.django_db
def test_the_changes_feed_lists_cases_changed_after_a_time(api, store, agent):
    old, changed = make_case(store=store), make_case(store=store)
    since = timezone.now()
    case_transition(case=changed, to_status=CaseStatus.IN_PROGRESS, actor=agent)
    page = api.get("cases", updated_after=since.isoformat()).json()
    assert [c["id"] for c in page["results"]] == [changed.pk]
    assert old.pk not in [c["id"] for c in page["results"]]


@pytest.mark.django_db
def test_a_case_reads_with_its_order_parcel_sla_and_timeline(api, store):
    case = make_case(store=store)
    body = api.get(f"cases/{case.pk}").json()
    assert body["case"]["id"] == case.pk
    assert body["order"]["platform_order_id"] == case.order.platform_order_id
    assert body["parcel"]["tracking_number"] == case.shipment.tracking_number
    assert body["sla"]["due_at"] and body["sla"]["overdue"] is False
    assert [entry["kind"] for entry in body["timeline"]] == ["raised"]
    assert body["timeline"][0]["actor"] == "system"


# --- notes and buyer replies ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_note_lands_on_the_timeline_signed_with_the_key(api, store):
    case = make_case(store=store)
    response = api.post(f"cases/{case.pk}/notes", {"text": "Buyer called: parcel not at home"})
    assert response.status_code == 201
    assert response.json()["actor"] == f"api:{api.key.name}"
    note = CaseEvent.objects.get(case=case, kind="note")
    assert (note.actor, note.data["api_key"]) == (None, api.key.name)
    assert "text" in fields(api.post(f"cases/{case.pk}/notes", {"text": ""}))


@pytest.mark.django_db
def test_a_buyer_reply_stops_the_wait_and_records_the_choice(api, store, agent):
    order = make_order(store=store)
    case, _ = case_raise(type="oversold", order=order, summary="Oversold")
    case_transition(case=case, to_status=CaseStatus.WAITING_BUYER, actor=agent)
    case.refresh_from_db()
    paused_due = case.due_at
    response = api.post(
        f"cases/{case.pk}/buyer-replies", {"text": "ok I'll wait", "option": "wait", "external_id": "m-1"}
    )
    assert response.status_code == 201
    case.refresh_from_db()
    assert (case.status, case.buyer_choice, case.sla_paused_at) == ("in_progress", "wait", None)
    assert case.due_at >= paused_due
    again = api.post(
        f"cases/{case.pk}/buyer-replies", {"text": "ok I'll wait", "option": "wait", "external_id": "m-1"}
    )
    assert again.json()["id"] == response.json()["id"]
    assert CaseEvent.objects.filter(case=case, kind="buyer_replied").count() == 1
    assert api.get(f"cases/{case.pk}").json()["case"]["buyer_choice"] == "wait"


@pytest.mark.django_db
def test_an_option_is_only_for_stock_cases(api, store):
    case = make_case(store=store, type="lost")
    response = api.post(f"cases/{case.pk}/buyer-replies", {"option": "refund"})
    assert "option" in fields(response)
    assert "option" in fields(api.post(f"cases/{case.pk}/buyer-replies", {"option": "later"}))
    assert "text" in fields(api.post(f"cases/{case.pk}/buyer-replies", {}))
    assert not CaseEvent.objects.filter(kind="buyer_replied").exists()


# --- events --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_case_changes_become_events_for_the_storefront(api, store, agent):
    case = make_case(store=store)
    case_transition(case=case, to_status=CaseStatus.IN_PROGRESS, actor=agent)
    case_transition(case=case, to_status=CaseStatus.RESOLVED, actor=agent, resolution="delivered")
    events = api.get("events").json()["results"]
    assert [e["type"] for e in events] == ["case.created", "case.updated", "case.resolved"]
    assert events[-1]["data"]["case"]["status"] == "resolved"
    assert events[-1]["data"]["case"]["resolution"] == "delivered"
    assert all(e["store"] == store.code for e in events)


@pytest.mark.django_db
def test_events_are_pulled_in_order_and_acknowledged(api, store):
    for _ in range(3):
        make_case(store=store)
    page = api.get("events", limit=2).json()
    assert len(page["results"]) == 2 and page["next_cursor"]
    rest = api.get("events", limit=2, after=page["next_cursor"]).json()
    assert len(rest["results"]) == 1 and rest["next_cursor"] is None
    first = page["results"][0]["id"]
    acked = api.post(f"events/{first}/ack", {"status": "delivered"})
    assert acked.json()["status"] == "delivered"
    assert api.post(f"events/{first}/ack", {"status": "delivered"}).status_code == 200  # again: no change
    assert "status" in fields(api.post(f"events/{first}/ack", {"status": "failed", "reason": "x"}))
    assert first not in [e["id"] for e in api.get("events").json()["results"]]
    assert [e["type"] for e in api.get("events", type="case.resolved").json()["results"]] == []


@pytest.mark.django_db
def test_a_buyer_message_the_storefront_could_not_post_is_failed_on_the_case(api, store, agent):
    from cases.messages import message_send
    from cases.models import MessageTemplate

    case = make_case(store=store)
    template = MessageTemplate.objects.create(
        store=store, case_type=case.type, language="en", name="t", body="Hello"
    )
    message = message_send(case=case, template=template, actor=agent)
    messages_deliver(now=timezone.now() + timedelta(minutes=1))
    (event,) = api.get("events", type="message.requested").json()["results"]
    assert event["data"]["message"]["body"] == "Hello"
    assert "reason" in fields(api.post(f"events/{event['id']}/ack", {"status": "failed"}))
    response = api.post(
        f"events/{event['id']}/ack", {"status": "failed", "reason": "Chat closed by the buyer"}
    )
    assert response.json()["failure_reason"] == "Chat closed by the buyer"
    message.refresh_from_db()
    assert (message.status, message.last_error) == ("failed", "Storefront: Chat closed by the buyer")
    shown = CaseEvent.objects.get(case=case, kind="storefront_failed")
    assert shown.message == "Chat closed by the buyer"


# --- another store's key ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_stores_key_gets_404_on_every_object_route(store):
    """Every route that names an object, read and write, with another store's key: 404, and nothing
    written. The table is checked against the URL configuration, so a new object route must be added."""
    mine = Api(store)  # the store listens: its case events are recorded
    case = make_case(store=store)
    mine.put("skus/SKU-1", {"name": "x", "unit_price": "1.00"})
    mine.put("live-sessions/L1", {"title": "x", "started_at": "2026-11-11T20:00:00+08:00"})
    order_id = case.order.platform_order_id
    event = StorefrontEvent.objects.filter(store=store).first()
    endpoint = WebhookEndpoint.objects.create(store=store, url="https://shop.example/h", secret="whsec_x")
    delivery = EventDelivery.objects.create(
        endpoint=endpoint, event=event, retry_until=timezone.now(), created_at=timezone.now()
    )
    from cases.compensation import Proposal, compensation_propose

    compensation, _ = compensation_propose(
        case=case, proposal=Proposal(kind="coupon", amount="1.00"), actor=None, idempotency_key="c-1"
    )
    intruder = Api(make_store(code="intruder"))
    routes = api_object_routes(
        sku="SKU-1", live_session="L1", order_id=order_id, case=case, event=event, endpoint=endpoint,
        delivery=delivery, compensation=compensation,
    )  # fmt: skip
    for method, path, body in routes:
        call = getattr(intruder, method)
        if method == "post":
            response = call(path, body, headers={"Idempotency-Key": f"intruder-{path}"})
        else:
            response = call(path, body) if body is not None else call(path)
        assert response.status_code == 404, (method, path, response.status_code, response.content)
        problem(response)
    from tests.portal.test_api import _api_routes

    # A PUT by natural key names no object of another store: it makes the key's own (codes are per store).
    upserts = [
        ("skus/SKU-1", {"name": "theirs", "unit_price": "2.00"}),
        ("live-sessions/L1", {"title": "theirs", "started_at": "2026-11-11T20:00:00+08:00"}),
        (f"orders/{order_id}", order_body(sku="SKU-1")),
    ]
    for path, body in upserts:
        assert intruder.put(path, body).status_code == 201, path
    assert mine.get("skus/SKU-1").json()["name"] == "x"
    assert mine.get("live-sessions/L1").json()["title"] == "x"
    assert mine.get(f"orders/{order_id}").json()["buyer"]["name"] == case.order.buyer_name
    object_routes = {(p, m) for p, m in _api_routes() if "{" in p}
    covered = {
        ("/api/v1/" + _template(path, order_id, case, event, endpoint, delivery), method)
        for method, path in [*((m, p) for m, p, _ in routes), *(("put", p) for p, _ in upserts)]
    }
    assert object_routes - covered == set()
    # and nothing changed
    assert CaseEvent.objects.filter(kind__in=["note", "buyer_replied"]).count() == 0
    assert WebhookEndpoint.objects.get().is_active
    assert case.order.__class__.objects.get(pk=case.order_id).status == "awaiting_shipment"
    assert StorefrontEvent.objects.get(pk=event.pk).delivered_at is None
    assert Case.objects.filter(store=store).count() == 1
    assert compensation.__class__.objects.get().status == "proposed"
    assert BuyerMessage.objects.count() == 0


def _template(path: str, order_id, case, event, endpoint, delivery) -> str:
    """A concrete path back to its OpenAPI template."""
    parts = []
    for index, part in enumerate(path.split("/")):
        previous = path.split("/")[index - 1] if index else ""
        if part == str(order_id) and previous == "orders":
            parts.append("{platform_order_id}")
        elif previous == "skus":
            parts.append("{code}")
        elif previous == "live-sessions":
            parts.append("{external_id}")
        elif previous in ("cases", "events", "webhook-endpoints", "compensations") and part.isdigit():
            parts.append("{id}")
        elif previous == "deliveries" and part.isdigit():
            parts.append("{delivery_id}")
        else:
            parts.append(part)
    return "/".join(parts)


@pytest.mark.django_db
def test_events_and_cases_of_another_store_are_not_listed(store):
    make_case(store=store)
    intruder = Api(make_store(code="intruder"))
    assert intruder.get("cases").json()["results"] == []
    assert intruder.get("events").json()["results"] == []
    assert intruder.get("webhook-endpoints").json()["results"] == []


@pytest.mark.django_db
def test_dispatch_leaves_events_for_endpoints_made_after_them(store):
    make_case(store=store)
    WebhookEndpoint.objects.create(store=store, url="https://shop.example/h", secret="whsec_x")
    events_dispatch()
    assert not EventDelivery.objects.exists()


@pytest.mark.django_db
def test_case_events_are_recorded_once_the_storefront_can_hear_them(store):
    from cases.engine import exceptions_sweep

    make_case(store=store)  # no API key, no endpoint: nobody would read it
    assert not StorefrontEvent.objects.filter(kind__startswith="case.").exists()
    api = Api(store)
    second = make_case(store=store)
    assert [e["data"]["case"]["id"] for e in api.get("events").json()["results"]] == [second.pk]
    exceptions_sweep()  # the rules read it with their batch's policies
    assert StorefrontEvent.objects.filter(kind="case.created").count() == 1
