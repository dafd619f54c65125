from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cases.choices import CaseEventKind, CaseStatus
from cases.message_defaults import default_templates_ensure
from cases.messages import message_send
from cases.models import BuyerMessage, Case, CaseEvent, MessageTemplate
from cases.review import order_review_evaluate
from cases.selectors import queue_counts_for_user
from cases.services import case_raise
from cases.workflow import case_claim, case_note_add
from tests.factories import (
    add_line,
    make_case,
    make_live_session,
    make_membership,
    make_order,
    make_sku,
    make_user,
)
from tracking.models import Order, Shipment

HX = {"HX-Request": "true"}


@pytest.fixture
def supervisor_client(store):
    user = make_user("sam")
    make_membership(user=user, store=store, role="supervisor")
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def _events(case: Case) -> list[str]:
    return list(CaseEvent.objects.filter(case=case).order_by("pk").values_list("kind", flat=True))


def _ids(body: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'data-case-id="(\d+)"', body)}


# --- queues ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_named_queues_hold_mine_unassigned_and_breaching_cases(agent_client, store):
    mine = make_case(store=store)
    case_claim(case=mine, actor=agent_client.agent)
    unassigned = make_case(store=store)
    breaching = make_case(store=store)
    Case.objects.filter(pk=breaching.pk).update(due_at=timezone.now() + timedelta(minutes=30))
    paused = make_case(store=store)
    Case.objects.filter(pk=paused.pk).update(
        due_at=timezone.now() - timedelta(hours=1), sla_paused_at=timezone.now()
    )
    url = reverse("cases:list")

    assert _ids(agent_client.get(url, {"queue": "mine"}).content.decode()) == {mine.pk}
    assert _ids(agent_client.get(url, {"queue": "unassigned"}).content.decode()) == {
        unassigned.pk,
        breaching.pk,
        paused.pk,
    }
    assert _ids(agent_client.get(url, {"queue": "breaching"}).content.decode()) == {breaching.pk}


@pytest.mark.django_db
def test_a_queue_row_shows_sla_and_age_in_the_stores_time_zone_with_links_and_states(agent_client, store):
    now = timezone.now()
    overdue = make_case(store=store)
    Case.objects.filter(pk=overdue.pk).update(
        due_at=datetime(2026, 11, 20, 1, 30, tzinfo=UTC), opened_at=now - timedelta(days=2, hours=3)
    )
    paused = make_case(store=store)
    Case.objects.filter(pk=paused.pk).update(due_at=now - timedelta(hours=1), sla_paused_at=now)
    upcoming = make_case(store=store)
    Case.objects.filter(pk=upcoming.pk).update(due_at=now + timedelta(hours=3, minutes=5))

    body = agent_client.get(reverse("cases:list")).content.decode()
    rows = {
        int(pk): row
        for pk, row in re.findall(r'<tr class="case-row" data-case-id="(\d+)"(.*?)</tr>', body, re.S)
    }

    late = rows[overdue.pk]
    # 01:30 UTC is 09:30 in Kuala Lumpur (UTC+8), the store's zone.
    assert '<time datetime="2026-11-20T09:30:00+08:00" title="2026-11-20 09:30 +08" class="overdue">' in late
    assert "ago" in late and "2\xa0days, 3\xa0hours" in late
    assert f'data-href="{reverse("cases:detail", args=[overdue.pk])}"' in late
    assert f'href="{reverse("tracking:shipment", args=[overdue.shipment_id])}"' in late
    assert f'aria-label="Select case #{overdue.pk}"' in late
    assert "paused" in rows[paused.pk] and 'class="overdue"' not in rows[paused.pk]
    assert "3\xa0hours from now" in rows[upcoming.pk] and 'class="overdue"' not in rows[upcoming.pk]

    body = agent_client.get(reverse("cases:list"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert f'aria-label="选择工单 #{overdue.pk}"' in body
    assert "已暂停" in body and "物流轨迹" in body and "小时" in body


@pytest.mark.django_db
def test_the_case_page_gives_the_parcels_expected_delivery_until_it_is_delivered(agent_client, store):
    case = make_case(store=store)
    url = reverse("cases:detail", args=[case.pk])
    assert "data-expected-delivery" not in agent_client.get(url).content.decode()  # the carrier gave none

    Shipment.objects.filter(pk=case.shipment_id).update(expected_delivery=date(2026, 11, 24))
    expected = agent_client.get(url).content.decode()
    Shipment.objects.filter(pk=case.shipment_id).update(delivered_at=datetime(2026, 11, 23, 4, 0, tzinfo=UTC))
    delivered = agent_client.get(url).content.decode()

    assert re.search(r"data-expected-delivery>Expected delivery: 2026-11-24<", expected)
    assert "data-expected-delivery" not in delivered
    assert "Delivered: 2026-11-23 12:00" in delivered  # 04:00 UTC in the store's Kuala Lumpur


@pytest.mark.django_db
def test_an_order_review_case_page_says_resolving_releases_the_held_order(agent_client, store):
    order = make_order(store=store, street="", district="")
    order_review_evaluate(store=store, order_ids=[order.pk])
    case = Case.objects.get(order=order, type="order_review")
    url = reverse("cases:detail", args=[case.pk])

    body = agent_client.get(url).content.decode()
    assert "The order is held from shipping. Resolving releases it" in body
    assert 'class="badge order-on_hold"' in body

    response = agent_client.post(
        reverse("cases:resolve", args=[case.pk]), {"resolution": "no_action"}, headers=HX
    )
    assert response.status_code == 200
    assert "Order status: Awaiting shipment." in response.content.decode()
    order.refresh_from_db()
    assert order.status == "awaiting_shipment"


@pytest.mark.django_db
def test_the_queue_filters_by_priority_carrier_live_session_sku_and_age(agent_client, store):
    sku = make_sku(store=store, code="LIP-01")
    live = make_live_session(store=store)
    target = make_case(store=store, priority=30)
    other = make_case(store=store)
    add_line(order=target.order, sku=sku)
    target.order.live_session = live
    target.order.save(update_fields=["live_session"])
    target.shipment.carrier = "ninjavan-my"
    target.shipment.save(update_fields=["carrier"])
    Case.objects.filter(pk=target.pk).update(opened_at=timezone.now() - timedelta(hours=30))
    url = reverse("cases:list")

    for params in (
        {"priority": 30},
        {"carrier": "NinjaVan-MY"},
        {"live": live.pk},
        {"sku": "lip-01"},
        {"older_than": 24},
    ):
        ids = _ids(agent_client.get(url, params).content.decode())
        assert ids == {target.pk}, params
    assert other.pk in _ids(agent_client.get(url).content.decode())


@pytest.mark.django_db
def test_another_stores_live_session_is_refused_as_a_filter(agent_client, other_store):
    live = make_live_session(store=other_store)

    response = agent_client.get(reverse("cases:list"), {"live": live.pk})

    assert response.status_code == 400


@pytest.mark.django_db
def test_queue_counts_come_from_one_query_and_only_count_the_users_stores(agent_client, store, other_store):
    mine = make_case(store=store, type="lost")
    case_claim(case=mine, actor=agent_client.agent)
    make_case(store=store, type="stalled_in_transit")
    make_case(store=other_store, type="stalled_in_transit")

    with CaptureQueriesContext(connection) as ctx:
        counts = queue_counts_for_user(agent_client.agent)

    assert len(ctx.captured_queries) == 1
    assert counts["mine"] == 1
    assert counts["unassigned"] == 1
    assert counts["open"] == 2
    assert counts["types"]["stalled_in_transit"] == 1
    assert counts["types"]["lost"] == 1


@pytest.mark.django_db
def test_the_counts_partial_shows_every_queue(agent_client, store):
    make_case(store=store, type="stalled_in_transit")

    response = agent_client.get(reverse("cases:counts"), {"in_queue": "1"}, headers=HX)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<nav id="queue-nav"')
    # Kept current while the tab is in view: new cases raised by carrier updates show in the counts.
    assert 'hx-trigger="cases-changed from:body, queue-stale from:body, poll" data-poll="60"' in body
    assert re.search(
        r'data-queue="type-stalled_in_transit"[^>]*>Stalled in transit<span class="count">1</span>', body
    )


@pytest.mark.django_db
def test_the_queue_page_costs_the_same_queries_for_10_and_100_cases(supervisor_client, store):
    default_templates_ensure()

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = supervisor_client.get(reverse("cases:list"), {"type": "stalled_in_transit"})
        assert response.status_code == 200
        return len(ctx.captured_queries)

    for _ in range(10):
        make_case(store=store)
    with_10 = queries()
    for _ in range(90):
        make_case(store=store)
    with_100 = queries()

    assert with_10 == with_100
    assert with_100 <= 9


# Every kind of view the filter bar makes (issue 28): each reads its page in a fixed number of queries.
QUEUE_VIEWS = {
    "all statuses": {"status": "all"},
    "resolved": {"status": "resolved"},
    "a carrier": {"status": "all", "carrier": "jtexpress-my"},
    "urgent, older than an hour": {"status": "all", "priority": "40", "older_than": "1"},
    "a SKU": {"status": "all", "sku": "GLOW-1"},
    "a live session": {"status": "all", "live": "LIVE"},
    "an agent's history": {"status": "all", "assignee": "AGENT"},
    "search: buyer name": {"status": "all", "q": "Buyer"},
    "a deep page": {"status": "all", "after": "AFTER"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("view", QUEUE_VIEWS)
def test_every_queue_view_costs_the_same_queries_for_10_and_100_cases(supervisor_client, store, view):
    default_templates_ensure()
    sku = make_sku(store=store, code="GLOW-1")
    session = make_live_session(store=store)
    agent = make_user("queue-agent")
    make_membership(user=agent, store=store, role="agent")

    def add(count: int) -> None:
        for i in range(count):
            case = make_case(store=store, priority=40)
            add_line(order=case.order, sku=sku)
            Order.objects.filter(pk=case.order_id).update(live_session=session)
            Case.objects.filter(pk=case.pk).update(
                assignee=agent, opened_at=timezone.now() - timedelta(hours=2),
                status="resolved" if i % 2 else "in_progress",
            )  # fmt: skip

    def queries() -> int:
        params = dict(QUEUE_VIEWS[view])
        values = {"LIVE": str(session.pk), "AGENT": str(agent.pk),
                  "AFTER": str(Case.objects.order_by("due_at", "pk").values_list("pk", flat=True)[5])}  # fmt: skip
        params = {key: values.get(value, value) for key, value in params.items()}
        with CaptureQueriesContext(connection) as ctx:
            response = supervisor_client.get(reverse("cases:list"), params)
        assert response.status_code == 200
        assert 'class="case-row"' in response.content.decode()
        return len(ctx.captured_queries)

    add(10)
    with_10 = queries()
    add(90)
    with_100 = queries()

    assert with_10 == with_100
    assert with_100 <= 13  # a SKU looks itself up and counts its lines; a search also finds parcels


# --- bulk -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bulk_claim_claims_the_users_cases_and_ignores_other_stores_ids(agent_client, store, other_store):
    mine = [make_case(store=store) for _ in range(3)]
    theirs = make_case(store=other_store)

    response = agent_client.post(
        reverse("cases:bulk"), {"action": "claim", "ids": [c.pk for c in mine] + [theirs.pk]}, headers=HX
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Trigger"] == "cases-changed"
    assert body.lstrip().startswith('<section id="case-table"')
    assert 'id="flash" class="flash-area" role="status" aria-live="polite" hx-swap-oob="true"' in body
    assert "Claimed 3 cases." in body
    assert f"1 refused: #{theirs.pk}: No such case." in body
    assert Case.objects.filter(assignee=agent_client.agent).count() == 3
    theirs.refresh_from_db()
    assert theirs.assignee_id is None and _events(theirs) == [CaseEventKind.RAISED]


@pytest.mark.django_db
def test_bulk_keeps_the_queue_filters_of_its_url(agent_client, store):
    stalled = make_case(store=store, type="stalled_in_transit")
    lost = make_case(store=store, type="lost")

    response = agent_client.post(
        reverse("cases:bulk") + "?type=lost", {"action": "claim", "ids": [lost.pk]}, headers=HX
    )

    assert _ids(response.content.decode()) == {lost.pk}
    assert stalled.pk not in _ids(response.content.decode())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [
        {"action": "claim"},
        {"action": "claim", "ids": ["x"]},
        {"action": "fly", "ids": ["1"]},
        {"action": "status", "ids": ["1"]},
        {"action": "send", "ids": ["1"]},
    ],
)
def test_bulk_bad_input_is_a_400_with_a_message_and_writes_nothing(agent_client, store, data):
    case = make_case(store=store)
    data = {**data, "ids": [str(case.pk) if pk == "1" else pk for pk in data.get("ids", [])]}

    response = agent_client.post(reverse("cases:bulk"), data, headers=HX)

    assert response.status_code == 400
    assert "flash-error" in response.content.decode()
    assert _events(case) == [CaseEventKind.RAISED]


@pytest.mark.django_db
def test_bulk_assign_by_an_agent_is_a_403(agent_client, store):
    case = make_case(store=store)

    response = agent_client.post(
        reverse("cases:bulk"),
        {"action": "assign", "ids": [case.pk], "assignee": agent_client.agent.pk},
        headers=HX,
    )

    assert response.status_code == 403
    assert _events(case) == [CaseEventKind.RAISED]


@pytest.mark.django_db
def test_bulk_status_and_send_report_what_happened(supervisor_client, store):
    default_templates_ensure()
    cases = [make_case(store=store) for _ in range(2)]
    template = MessageTemplate.objects.get(
        store__isnull=True, case_type="stalled_in_transit", language="en", channel="storefront"
    )
    ids = [c.pk for c in cases]

    sent = supervisor_client.post(
        reverse("cases:bulk") + "?type=stalled_in_transit", {"action": "send", "ids": ids, "template": template.pk},
        headers=HX,
    )  # fmt: skip
    moved = supervisor_client.post(
        reverse("cases:bulk"), {"action": "status", "ids": ids, "to_status": "waiting_carrier"}, headers=HX
    )

    assert "Queued messages on 2 cases." in sent.content.decode()
    assert BuyerMessage.objects.filter(case__in=cases).count() == 2
    assert "Updated 2 cases." in moved.content.decode()
    assert set(Case.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"waiting_carrier"}


# --- the case page: actions -----------------------------------------------------------------------


@pytest.mark.django_db
def test_claim_answers_with_the_actions_panel_the_timeline_and_the_trigger(agent_client, store):
    case = make_case(store=store)

    response = agent_client.post(reverse("cases:claim", args=[case.pk]), headers=HX)

    body = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Trigger"] == "cases-changed"
    assert body.lstrip().startswith('<div id="case-actions"')
    assert '<section id="case-timeline" class="card" hx-swap-oob="true" hx-get=' in body
    assert f"Case #{case.pk} is yours." in body
    case.refresh_from_db()
    assert case.assignee_id == agent_client.agent.pk and case.status == CaseStatus.IN_PROGRESS


@pytest.mark.django_db
def test_the_status_menu_offers_only_the_allowed_next_statuses(agent_client, store):
    case = make_case(store=store)
    Case.objects.filter(pk=case.pk).update(status=CaseStatus.WAITING_BUYER)

    body = agent_client.get(reverse("cases:detail", args=[case.pk])).content.decode()

    menu = re.search(r'<select name="to_status".*?</select>', body, re.S).group(0)
    offered = set(re.findall(r'<option value="(\w+)">', menu))
    assert offered == {"in_progress", "waiting_carrier", "waiting_platform"}


@pytest.mark.django_db
def test_status_resolve_reopen_and_note_work_in_place(agent_client, store):
    case = make_case(store=store)
    url = lambda name: reverse(f"cases:{name}", args=[case.pk])  # noqa: E731

    assert agent_client.post(url("status"), {"to_status": "waiting_carrier"}, headers=HX).status_code == 200
    assert agent_client.post(url("note"), {"text": "Chased J&T hub"}, headers=HX).status_code == 200
    resolved = agent_client.post(url("resolve"), {"resolution": "delivered", "note": "Arrived"}, headers=HX)
    assert f"Case #{case.pk} resolved: Delivered." in resolved.content.decode()
    assert agent_client.post(url("reopen"), headers=HX).status_code == 200

    case.refresh_from_db()
    assert case.status == CaseStatus.IN_PROGRESS
    assert _events(case)[1:] == ["status_changed", "note", "resolved", "reopened"]
    timeline = agent_client.get(url("timeline"), headers=HX).content.decode()
    assert "Chased J&amp;T hub" in timeline


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("status", {"to_status": "bogus"}, "Select a valid choice"),
        ("status", {"to_status": "closed"}, "cannot become Closed"),
        ("resolve", {}, "This field is required"),
        ("resolve", {"resolution": "made-up"}, "Select a valid choice"),
        ("note", {"text": "   "}, "This field is required"),
        ("note", {"text": "x" * 5001}, "at most 5000"),
        ("reopen", {}, "Only a resolved case is reopened"),
        ("message_send", {"template": "999999"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_a_400_with_the_message_in_the_panel_and_nothing_written(
    agent_client, store, name, data, message
):
    case = make_case(store=store)

    response = agent_client.post(reverse(f"cases:{name}", args=[case.pk]), data, headers=HX)

    body = response.content.decode()
    assert response.status_code == 400
    assert 'class="banner banner-bad" role="alert"' in body
    assert message in body
    assert "HX-Trigger" not in response
    assert _events(case) == [CaseEventKind.RAISED]
    assert not BuyerMessage.objects.filter(case=case).exists()


@pytest.mark.django_db
def test_an_agent_assigning_is_a_403_and_a_supervisor_assigns(agent_client, supervisor_client, store):
    case = make_case(store=store)
    url = reverse("cases:assign", args=[case.pk])

    refused = agent_client.post(url, {"assignee": agent_client.agent.pk}, headers=HX)
    assert refused.status_code == 403
    assert _events(case) == [CaseEventKind.RAISED]

    done = supervisor_client.post(url, {"assignee": agent_client.agent.pk}, headers=HX)
    assert done.status_code == 200
    case.refresh_from_db()
    assert case.assignee_id == agent_client.agent.pk


@pytest.mark.django_db
def test_the_message_preview_fills_the_template_and_warns_about_missing_values(agent_client, store):
    default_templates_ensure()
    case = make_case(store=store)
    template = MessageTemplate.objects.create(
        case_type="stalled_in_transit", language="en", channel="storefront", name="Restock",
        body="Hi {buyer_name}, back in stock {restock_date}.",
    )  # fmt: skip

    response = agent_client.get(
        reverse("cases:message_preview", args=[case.pk]), {"template": template.pk}, headers=HX
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="message-preview"')
    assert f"Hi {case.order.buyer_name}, back in stock —." in body
    assert "<code>restock_date</code>" in body
    assert not BuyerMessage.objects.exists()


@pytest.mark.django_db
def test_a_template_of_another_store_cannot_be_previewed_or_sent(agent_client, store, other_store):
    case = make_case(store=store)
    theirs = MessageTemplate.objects.create(
        store=other_store, case_type="stalled_in_transit", language="en", channel="storefront", name="Theirs",
        body="Hello {buyer_name}",
    )  # fmt: skip

    preview = agent_client.get(
        reverse("cases:message_preview", args=[case.pk]), {"template": theirs.pk}, headers=HX
    )
    send = agent_client.post(
        reverse("cases:message_send", args=[case.pk]), {"template": theirs.pk}, headers=HX
    )

    assert preview.status_code == 400 and send.status_code == 400
    assert not BuyerMessage.objects.exists()


@pytest.mark.django_db
def test_sending_a_message_queues_it_and_shows_it_in_the_timeline(agent_client, store):
    default_templates_ensure()
    case = make_case(store=store)
    template = MessageTemplate.objects.get(
        store__isnull=True, case_type="stalled_in_transit", language="zh-hans", channel="storefront"
    )

    response = agent_client.post(
        reverse("cases:message_send", args=[case.pk]), {"template": template.pk}, headers=HX
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Trigger"] == "cases-changed"
    message = BuyerMessage.objects.get(case=case)
    assert message.created_by == agent_client.agent
    assert "Message queued" in body and "badge msg-queued" in body
    assert f"queued for {case.order.buyer_name}" in body


@pytest.mark.django_db
def test_a_plain_form_post_redirects_back_to_the_case(agent_client, store):
    case = make_case(store=store)

    response = agent_client.post(reverse("cases:claim", args=[case.pk]))

    assert response.status_code == 302
    assert response.url == reverse("cases:detail", args=[case.pk])
    followed = agent_client.get(response.url).content.decode()
    assert f"Case #{case.pk} is yours." in followed


@pytest.mark.django_db
def test_next_case_follows_the_sla_order(agent_client, store):
    first, second = make_case(store=store), make_case(store=store)
    Case.objects.filter(pk=second.pk).update(due_at=first.due_at + timedelta(minutes=1))

    response = agent_client.get(reverse("cases:next", args=[first.pk]))
    last = agent_client.get(reverse("cases:next", args=[second.pk]))

    assert response.url == reverse("cases:detail", args=[second.pk])
    assert last.url == reverse("cases:list")


# --- scoping --------------------------------------------------------------------------------------

CASE_GETS = ["detail", "timeline", "next", "message_preview"]
CASE_POSTS = ["claim", "assign", "status", "resolve", "reopen", "note", "message_send"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", CASE_GETS)
@pytest.mark.parametrize("headers", [{}, HX])
def test_another_stores_case_is_a_404_on_every_page_and_partial(agent_client, other_store, name, headers):
    theirs = make_case(store=other_store)

    response = agent_client.get(
        reverse(f"cases:{name}", args=[theirs.pk]), {"template": "1"}, headers=headers
    )

    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("name", CASE_POSTS)
def test_another_stores_case_is_a_404_on_every_action_and_nothing_is_written(agent_client, other_store, name):
    default_templates_ensure()
    theirs = make_case(store=other_store)
    data = {"to_status": "in_progress", "resolution": "delivered", "text": "hi", "assignee": agent_client.agent.pk,
            "template": MessageTemplate.objects.filter(case_type=theirs.type).first().pk}  # fmt: skip

    response = agent_client.post(reverse(f"cases:{name}", args=[theirs.pk]), data, headers=HX)

    assert response.status_code == 404
    assert _events(theirs) == [CaseEventKind.RAISED]
    assert not BuyerMessage.objects.filter(case=theirs).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["cases:claim", "cases:detail"])
def test_the_workspace_needs_a_login(client, store, name):
    case = make_case(store=store)

    response = (
        client.get(reverse(name, args=[case.pk]))
        if name == "cases:detail"
        else client.post(reverse(name, args=[case.pk]))
    )

    assert response.status_code == 302


# --- query budget ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_case_page_costs_the_same_queries_for_10_and_100_timeline_rows(agent_client, store):
    default_templates_ensure()
    case = make_case(store=store)
    template = MessageTemplate.objects.filter(case_type=case.type, channel="storefront").first()

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = agent_client.get(reverse("cases:detail", args=[case.pk]))
        assert response.status_code == 200
        return len(ctx.captured_queries)

    def add(n: int) -> None:
        for i in range(n):
            case_note_add(case=case, actor=agent_client.agent, text=f"note {i}")
            message_send(case=case, template=template, actor=agent_client.agent)

    add(5)
    with_10 = queries()
    add(45)
    with_100 = queries()

    assert with_10 == with_100
    assert with_100 <= 15  # 3 the compensation panel (its rows, the policy, the claim), 2 the evidence card


@pytest.mark.django_db
def test_a_supervisor_opens_one_agents_queue_through_the_assignee_filter(client, store):
    from cases.models import Case
    from tests.factories import make_case, make_membership, make_user

    boss, alice, bob = make_user("boss"), make_user("alice-q"), make_user("bob-q")
    make_membership(user=boss, store=store, role="supervisor")
    make_membership(user=alice, store=store)
    make_membership(user=bob, store=store)
    alices, bobs = make_case(store=store), make_case(store=store)
    Case.objects.filter(pk=alices.pk).update(assignee=alice)
    Case.objects.filter(pk=bobs.pk).update(assignee=bob)
    client.force_login(boss)

    body = client.get("/cases/", {"assignee": alice.pk}).content.decode()

    assert f'data-case-id="{alices.pk}"' in body
    assert f'data-case-id="{bobs.pk}"' not in body


@pytest.mark.django_db
def test_filtering_by_someone_outside_the_users_stores_is_refused(agent_client, other_store):
    from tests.factories import make_membership, make_user

    stranger = make_user("stranger")
    make_membership(user=stranger, store=other_store)

    response = agent_client.get("/cases/", {"assignee": stranger.pk})

    assert response.status_code == 400


@pytest.mark.django_db
def test_the_counts_partial_warns_when_a_stores_tracking_polling_stopped(agent_client, store, other_store):
    from datetime import UTC, datetime

    from tracking.models import TrackingConnection

    stopped_at = datetime(2026, 12, 2, 1, 30, tzinfo=UTC)
    stopped = TrackingConnection.objects.create(
        store=store, provider="aftership", webhook_secret="s" * 16, pull_enabled=False,
        last_error="PermanentProviderError: aftership: 401 Unauthorized", last_error_at=stopped_at,
    )  # fmt: skip
    TrackingConnection.objects.create(  # polling fine, though it once failed
        store=store,
        provider="17track",
        webhook_secret="s" * 16,
        last_error="timeout",
        last_error_at=stopped_at,
    )
    TrackingConnection.objects.create(  # not this agent's store
        store=other_store, provider="aftership", webhook_secret="s" * 16, pull_enabled=False,
        last_error="PermanentProviderError", last_error_at=stopped_at,
    )  # fmt: skip

    body = agent_client.get(reverse("cases:counts"), {"in_queue": "1"}, headers=HX).content.decode()

    assert re.findall(r'data-tracking-stopped="(\d+)"', body) == [str(stopped.pk)]
    # In the store's time zone (Asia/Kuala_Lumpur); the error itself stays in the admin.
    assert f"{store.code} · AfterShip, since 2026-12-02 09:30, after a provider error" in body
    assert "401" not in body

    TrackingConnection.objects.filter(pk=stopped.pk).update(pull_enabled=True)  # fixed: the warning goes
    body = agent_client.get(reverse("cases:counts"), {"in_queue": "1"}, headers=HX).content.decode()
    assert "data-tracking-stopped" not in body

    # A refused key while registering new parcels (so no pushes come for them) warns the same way.
    TrackingConnection.objects.filter(pk=stopped.pk).update(
        registration_paused_until=timezone.now() + timedelta(hours=1)
    )
    body = agent_client.get(reverse("cases:counts"), {"in_queue": "1"}, headers=HX).content.decode()
    assert re.findall(r'data-tracking-stopped="(\d+)"', body) == [str(stopped.pk)]


@pytest.mark.django_db
def test_the_counts_partial_warns_when_a_push_only_connection_hears_nothing(agent_client, store, other_store):
    from tests.factories import make_order, make_shipment
    from tracking.models import TrackingConnection, TrackingRegistration

    now = timezone.now()

    def push_only(target_store, provider, **fields):
        fields.setdefault("last_registered_at", now - timedelta(hours=1))
        return TrackingConnection.objects.create(
            store=target_store, provider=provider, webhook_secret="s" * 16, pull_enabled=False, **fields
        )

    silent = push_only(store, "kdniao", last_push_at=now - timedelta(hours=30))
    push_only(store, "aftership", last_push_at=now - timedelta(hours=2))  # pushes arrive
    push_only(
        store, "17track", last_push_at=now - timedelta(days=3), last_registered_at=now - timedelta(days=9)
    )
    push_only(other_store, "kdniao", last_push_at=now - timedelta(days=2))  # not this agent's store

    body = agent_client.get(reverse("cases:counts"), {"in_queue": "1"}, headers=HX).content.decode()

    assert re.findall(r'data-tracking-silent="(\d+)"', body) == [str(silent.pk)]
    local = timezone.localtime(silent.last_push_at, ZoneInfo(store.timezone)).strftime("%Y-%m-%d %H:%M")
    assert f"{store.code} · Kdniao: no push since {local}" in body

    # One that never heard a push warns once its first registration is a day old, not before.
    TrackingConnection.objects.filter(pk=silent.pk).update(last_push_at=None)
    registration = TrackingRegistration.objects.create(
        connection=silent, shipment=make_shipment(order=make_order(store=store)), status="registered",
        registered_at=now - timedelta(hours=3), next_attempt_at=None,
    )  # fmt: skip
    body = agent_client.get(reverse("cases:counts"), {"in_queue": "1"}, headers=HX).content.decode()
    assert "data-tracking-silent" not in body
    TrackingRegistration.objects.filter(pk=registration.pk).update(registered_at=now - timedelta(hours=25))
    body = agent_client.get(reverse("cases:counts"), {"in_queue": "1"}, headers=HX).content.decode()
    assert re.findall(r'data-tracking-silent="(\d+)"', body) == [str(silent.pk)]
    assert "no push has ever arrived" in body

    # A connection polling stopped by an error says so once, as stopped.
    TrackingConnection.objects.filter(pk=silent.pk).update(
        last_error="PermanentProviderError", last_error_at=now
    )
    body = agent_client.get(reverse("cases:counts"), {"in_queue": "1"}, headers=HX).content.decode()
    assert "data-tracking-silent" not in body
    assert re.findall(r'data-tracking-stopped="(\d+)"', body) == [str(silent.pk)]


@pytest.mark.django_db
def test_the_counts_partial_warns_when_no_worker_processes_the_stores_pushes(
    agent_client, store, other_store
):
    from tracking.models import TrackingConnection, WebhookDelivery

    now = timezone.now()
    mine = TrackingConnection.objects.create(store=store, provider="aftership", webhook_secret="s" * 16)
    theirs = TrackingConnection.objects.create(
        store=other_store, provider="aftership", webhook_secret="s" * 16
    )

    def pushes(connection, n, *, minutes_ago, status="received"):
        WebhookDelivery.objects.bulk_create(
            WebhookDelivery(connection=connection, body=b"{}", status=status,
                            received_at=now - timedelta(minutes=minutes_ago))
            for _ in range(n)
        )  # fmt: skip

    def counts() -> str:
        return agent_client.get(reverse("cases:counts"), {"in_queue": "1"}, headers=HX).content.decode()

    pushes(mine, 3, minutes_ago=1)  # the worker has a minute to get to them
    pushes(mine, 2, minutes_ago=90, status="processed")
    pushes(theirs, 4, minutes_ago=60)  # another store's backlog is not this agent's
    assert "data-pushes-waiting" not in counts()

    pushes(mine, 1, minutes_ago=12)
    body = counts()
    assert 'data-pushes-waiting="4"' in body
    assert "4 carrier pushes have waited up to 12\xa0minutes to be processed" in body

    pushes(mine, 1_000, minutes_ago=20)
    assert "1000+ carrier pushes have waited up to 20\xa0minutes" in counts()


@pytest.mark.django_db
def test_the_counts_partial_warns_when_a_store_with_parcels_has_no_tracking_at_all(
    agent_client, store, other_store
):
    from tests.factories import make_order, make_shipment
    from tracking.models import TrackingConnection

    def alerts() -> list[str]:
        body = agent_client.get(reverse("cases:counts"), {"in_queue": "1"}, headers=HX).content.decode()
        return re.findall(r'data-tracking-missing="([^"]+)"', body)

    assert alerts() == []  # no parcel yet: a store being set up
    make_shipment(order=make_order(store=store))
    make_shipment(order=make_order(store=other_store))  # not this agent's store

    assert alerts() == [store.code]
    switched_off = TrackingConnection.objects.create(
        store=store, provider="aftership", webhook_secret="s" * 16, is_active=False
    )
    assert alerts() == [store.code]  # a switched-off connection brings nothing either
    TrackingConnection.objects.filter(pk=switched_off.pk).update(is_active=True)
    assert alerts() == []


@pytest.mark.django_db
def test_the_timeline_gives_a_sent_message_in_one_line_its_whole_text_is_under_messages(agent_client, store):
    default_templates_ensure()
    case = make_case(store=store)
    template = MessageTemplate.objects.create(
        case_type="stalled_in_transit", language="en", channel="storefront", name="Long",
        body="Hi {buyer_name}, " + "we are chasing the carrier about your parcel and will write again soon. " * 4,
    )  # fmt: skip
    message = message_send(case=case, template=template, actor=agent_client.agent)

    body = agent_client.get(reverse("cases:detail", args=[case.pk])).content.decode()

    assert body.count(message.body) == 1  # in Messages to the buyer only
    excerpts = re.findall(r'<div class="evtext excerpt">(.*?)</div>', body, re.S)
    assert excerpts and all(len(text) <= 140 and text.endswith("…") for text in excerpts)


@pytest.mark.django_db
def test_the_case_pages_parcel_and_timeline_refresh_themselves_while_in_view(agent_client, store):
    from tracking.services import EventData, events_ingest

    case = make_case(store=store)
    poll = 'hx-trigger="poll" data-poll="60"'
    page = agent_client.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert (
        f'<section id="case-parcel" class="card" hx-get="{reverse("cases:parcel", args=[case.pk])}" {poll}'
        in page
    )
    assert re.search(
        rf'<section id="case-timeline" class="card" hx-get="{reverse("cases:timeline", args=[case.pk])}" {re.escape(poll)}',
        page,
    )

    delivered_at = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    events_ingest(
        shipment=case.shipment,
        events=[EventData(delivered_at, "Delivered", "Delivered_001", "aftership", "DEL", "Delivered to the buyer", "Shah Alam")],
    )  # fmt: skip
    partial = agent_client.get(reverse("cases:parcel", args=[case.pk]), headers=HX).content.decode()

    assert partial.lstrip().startswith('<section id="case-parcel"')
    assert "Delivered to the buyer" in partial
    assert "Delivered: 2026-11-23 12:00" in partial  # store time, Kuala Lumpur


@pytest.mark.django_db
def test_the_parcel_partial_of_another_stores_case_or_of_a_case_without_parcel_is_a_404(
    agent_client, store, other_store
):
    theirs = make_case(store=other_store)
    oversold, _ = case_raise(type="oversold", order=make_order(store=store), summary="Oversold")

    assert agent_client.get(reverse("cases:parcel", args=[theirs.pk]), headers=HX).status_code == 404
    assert agent_client.get(reverse("cases:parcel", args=[oversold.pk]), headers=HX).status_code == 404
