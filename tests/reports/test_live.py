"""The live war room: its figures against a hand-built session whose every number is known, the moment a SKU
is oversold, scoping (another store's session is a 404, an agent is refused), the polling boards, and a
fixed number of queries whatever the session's size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from cases.models import Case
from cases.reporting.live import war_room
from cases.services import case_raise
from tests.factories import add_line, make_membership, make_order, make_shipment, make_sku, make_user
from tracking.models import SKU, LiveSession, LiveSessionAllocation, Order

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
START = NOW - timedelta(hours=30)  # 14:00 in Kuala Lumpur, the day before


@dataclass
class Built:
    session: LiveSession
    orders: dict[str, Order]
    cases: dict[str, Case]


def build_session(store, *, start: datetime = START) -> Built:
    """The hand-built session (every figure below follows from it):

    - SERUM: 100 on hand, 10 of them allocated to the session; 12 orders of 1 (3 at minute 0, 5 at minute 1,
      4 at minute 5) and one cancelled at minute 2: 12 units against 10, so 2 over.
    - MASK: 3 on hand, no allocation; 2 orders of 2 at minute 5, not shipped: 4 units against 3, so 1 over.
    - 14 orders (and 1 cancelled) of 10.00 each: 140.00.
    - p1 (s1, Flash): booked +1 h, first scan +3 h (2 h after booking, in time).
      p2 (s2, J&T, ship-by +24 h): booked +1 h, first scan +27 h: 26 h after booking, after its ship-by.
      p3 (s3, J&T): booked +2 h, never scanned: over 24 h waiting from +26 h.
      p4 (s4, Flash): never booked, first scan +5 h: 4 h 59 min after the order was placed, in time.
      s5 ship-by +10 h, never shipped: late from +10 h.
    - Cases: pickup overdue on p2 (resolved) and p3 (new), damaged on p1 (in progress), oversold on s11 and
      s12 (new; s12's buyer chose a refund).
    """
    # A second session of the store (the comparison) sells the same SKUs.
    serum = SKU.objects.filter(store=store, code="SERUM").first() or make_sku(
        store=store, code="SERUM", name="Glow serum", on_hand=100, allocated=10
    )
    mask = SKU.objects.filter(store=store, code="MASK").first() or make_sku(
        store=store, code="MASK", name="Clay mask", on_hand=3
    )
    session = LiveSession.objects.create(
        store=store, title="Payday live", host="Mei", started_at=start, ended_at=start + timedelta(hours=2)
    )
    LiveSessionAllocation.objects.create(live_session=session, sku=serum, quantity=10)
    orders: dict[str, Order] = {}
    minutes = [0, 0, 0, 1, 1, 1, 1, 1, 5, 5, 5, 5]
    for n, minute in enumerate(minutes, start=1):
        placed = start + timedelta(minutes=minute)
        ship_by = placed + timedelta(hours={2: 24, 5: 10}.get(n, 48))
        orders[f"s{n}"] = make_order(
            store=store, live_session=session, placed_at=placed, ship_by=ship_by, amount="10.00"
        )
        add_line(order=orders[f"s{n}"], sku=serum)
    for n in (1, 2):
        orders[f"m{n}"] = make_order(
            store=store, live_session=session, placed_at=start + timedelta(minutes=5), amount="10.00"
        )
        add_line(order=orders[f"m{n}"], sku=mask, quantity=2)
    orders["cancelled"] = make_order(
        store=store, live_session=session, placed_at=start + timedelta(minutes=2), amount="10.00",
        ship_by=start + timedelta(hours=5), status="cancelled",
    )  # fmt: skip
    add_line(order=orders["cancelled"], sku=serum)

    hour = timedelta(hours=1)
    p1 = make_shipment(
        order=orders["s1"], carrier="flash-express", booked_at=start + hour, accepted_at=start + 3 * hour
    )
    p2 = make_shipment(
        order=orders["s2"], carrier="jtexpress-my", booked_at=start + hour, accepted_at=start + 27 * hour
    )
    p3 = make_shipment(order=orders["s3"], carrier="jtexpress-my", booked_at=start + 2 * hour)
    make_shipment(order=orders["s4"], carrier="flash-express", booked_at=None, accepted_at=start + 5 * hour)
    Order.objects.filter(pk__in=[orders[k].pk for k in ("s1", "s2", "s4")]).update(status="shipped")

    cases = {
        "pickup_p2": case_raise(
            type="pickup_overdue", order=orders["s2"], shipment=p2, now=start + 25 * hour
        )[0],
        "pickup_p3": case_raise(
            type="pickup_overdue", order=orders["s3"], shipment=p3, now=start + 26 * hour
        )[0],
        "damaged_p1": case_raise(type="damaged", order=orders["s1"], shipment=p1, now=start + 20 * hour)[0],
        "oversold_s11": case_raise(type="oversold", order=orders["s11"], now=start + 10 * hour)[0],
        "oversold_s12": case_raise(type="oversold", order=orders["s12"], now=start + 10 * hour)[0],
    }
    Case.objects.filter(pk=cases["pickup_p2"].pk).update(status="resolved")
    Case.objects.filter(pk=cases["damaged_p1"].pk).update(status="in_progress")
    Case.objects.filter(pk=cases["oversold_s12"].pk).update(buyer_choice="refund")
    return Built(session=session, orders=orders, cases=cases)


@pytest.fixture
def supervisor_client(client, store):
    user = make_user("sam")
    make_membership(user=user, store=store, role="supervisor")
    client.force_login(user)
    return client


# --- the figures ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_board_of_a_finished_session_matches_the_hand_count(store):
    built = build_session(store)
    session = LiveSession.objects.select_related("store").get(pk=built.session.pk)

    room = war_room(session, now=NOW)

    assert not room.live
    assert (room.orders, room.cancelled, room.amount) == (14, 1, Decimal("140.00"))
    # The whole session, minute by minute (14:00 to 16:00 local, the minutes without orders too).
    assert room.step_minutes == 1
    assert len(room.points) == 121
    assert [p.orders for p in room.points[:7]] == [3, 5, 0, 0, 0, 6, 0]
    assert room.points[-1].cumulative == 14
    assert room.peak == 6
    assert room.points[0].at == START

    skus = {sku.code: sku for sku in room.skus}
    assert (skus["SERUM"].allocation, skus["SERUM"].units, skus["SERUM"].over) == (10, 12, 2)
    assert (skus["SERUM"].on_hand, skus["SERUM"].available) == (100, 90)
    assert (skus["MASK"].allocation, skus["MASK"].units, skus["MASK"].unshipped, skus["MASK"].over) == (
        None,
        4,
        4,
        1,
    )
    assert room.units_over == 3
    assert [sku.code for sku in room.skus] == ["SERUM", "MASK"]  # the worst first

    d = room.dispatch
    assert (d.orders, d.orders_booked, d.not_booked, d.parcels) == (14, 3, 11, 4)
    assert (d.scanned, d.scanned_in_time, d.waiting_over, d.late_scanned, d.late_unshipped) == (3, 2, 1, 1, 1)

    assert [(r.type, r.count, r.open) for r in room.logistics] == [
        ("pickup_overdue", 2, 1),
        ("damaged", 1, 1),
    ]
    assert [(r.type, rate) for r, rate in room.logistics_rates] == [
        ("pickup_overdue", 50.0),
        ("damaged", 25.0),
    ]
    statuses = [value for value, _ in room.statuses]
    after_sales = {r.type: dict(zip(statuses, r.by_status, strict=True)) for r in room.after_sales}
    assert [r.type for r in room.after_sales] == ["oversold", "pickup_overdue", "damaged"]
    assert after_sales["oversold"]["new"] == 2
    assert (after_sales["pickup_overdue"]["new"], after_sales["pickup_overdue"]["resolved"]) == (1, 1)
    assert after_sales["damaged"]["in_progress"] == 1
    assert room.oversold_cases == 2
    assert room.cases_open == 4


@pytest.mark.django_db
def test_while_live_the_orders_board_shows_the_last_hour_only(store):
    sku = make_sku(store=store, code="LIP", on_hand=50)
    session = LiveSession.objects.create(
        store=store, title="Now", host="Mei", started_at=NOW - timedelta(minutes=90)
    )
    LiveSessionAllocation.objects.create(live_session=session, sku=sku, quantity=40)
    for minutes_ago in (80, 61, 59, 10, 10, 0):
        add_line(
            order=make_order(
                store=store, live_session=session, placed_at=NOW - timedelta(minutes=minutes_ago)
            ),
            sku=sku,
        )

    room = war_room(LiveSession.objects.select_related("store").get(pk=session.pk), now=NOW)

    assert room.live
    assert len(room.points) == 61  # 11:00 to 12:00
    assert room.points[0].at == NOW - timedelta(minutes=60)
    assert sum(p.orders for p in room.points) == 4
    assert room.points[1].orders == 1 and room.points[50].orders == 2 and room.points[60].orders == 1
    assert room.orders == 6  # the tiles count the whole session


@pytest.mark.django_db
def test_a_sku_is_flagged_oversold_the_moment_its_orders_pass_the_allocation(supervisor_client, store):
    sku = make_sku(store=store, code="FLASH", name="Flash deal", on_hand=10)
    session = LiveSession.objects.create(
        store=store, title="Flash", host="Mei", started_at=NOW - timedelta(minutes=30)
    )
    LiveSessionAllocation.objects.create(live_session=session, sku=sku, quantity=2)
    url = reverse("reports:war_room_boards", args=[session.pk])

    for n in range(2):
        add_line(
            order=make_order(store=store, live_session=session, placed_at=NOW - timedelta(minutes=5 - n)),
            sku=sku,
        )
    body = supervisor_client.get(url).content.decode()
    assert 'id="oversold-alert"' not in body
    assert war_room(session).skus[0].over == 0

    add_line(
        order=make_order(store=store, live_session=session, placed_at=NOW - timedelta(minutes=1)), sku=sku
    )
    body = supervisor_client.get(url).content.decode()
    assert 'id="oversold-alert"' in body
    assert "FLASH Flash deal: 1 units past the allocation of 2" in body
    assert war_room(session).skus[0].over == 1


@pytest.mark.django_db
def test_a_combo_pack_the_session_did_not_allocate_draws_on_its_components(store):
    lip = make_sku(store=store, code="LIP", on_hand=10)
    pack = make_sku(store=store, code="DUO", components={lip: 2})
    session = LiveSession.objects.create(
        store=store, title="Duo", host="Mei", started_at=NOW - timedelta(hours=3)
    )
    LiveSessionAllocation.objects.create(live_session=session, sku=lip, quantity=5)
    add_line(
        order=make_order(store=store, live_session=session, placed_at=NOW - timedelta(hours=2)),
        sku=pack,
        quantity=2,
    )
    add_line(order=make_order(store=store, live_session=session, placed_at=NOW - timedelta(hours=2)), sku=lip)

    room = war_room(LiveSession.objects.select_related("store").get(pk=session.pk), now=NOW)

    assert [(s.code, s.units, s.over) for s in room.skus] == [("LIP", 5, 0)]


# --- the pages -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_war_room_shows_the_boards_and_polls_every_20_seconds_while_the_tab_is_visible(
    supervisor_client, store
):
    built = build_session(store)

    response = supervisor_client.get(reverse("reports:war_room", args=[built.session.pk]))

    assert response.status_code == 200
    body = response.content.decode()
    assert 'hx-trigger="poll" data-poll="20" data-poll-on-show' in body
    assert f'hx-get="{reverse("reports:war_room_boards", args=[built.session.pk])}"' in body
    assert 'data-chart="line"' in body and "portal/charts.js" in body
    assert 'data-sku="SERUM" class="oversold"' in body
    assert 'class="topbar"' in body  # the normal page keeps the navigation


@pytest.mark.django_db
def test_the_wall_screen_hides_the_navigation_and_keeps_its_mode_when_polling(supervisor_client, store):
    built = build_session(store)

    body = supervisor_client.get(
        reverse("reports:war_room", args=[built.session.pk]) + "?wall=1"
    ).content.decode()

    assert '<body class="wall"' in body
    assert f'hx-get="{reverse("reports:war_room_boards", args=[built.session.pk])}?wall=1"' in body


@pytest.mark.django_db
def test_the_boards_endpoint_answers_the_partial_alone(supervisor_client, store):
    built = build_session(store)

    body = supervisor_client.get(reverse("reports:war_room_boards", args=[built.session.pk])).content.decode()

    assert body.lstrip().startswith('<section id="war-room-boards"')
    assert "<html" not in body


@pytest.mark.django_db
def test_another_stores_session_is_a_404_on_every_page(supervisor_client, store, other_store):
    foreign = build_session(other_store)
    pk = foreign.session.pk

    for name in ("war_room", "war_room_boards", "live_review", "live_review_pdf"):
        assert supervisor_client.get(reverse(f"reports:{name}", args=[pk])).status_code == 404, name
    body = supervisor_client.get(reverse("reports:live_list")).content.decode()
    assert "Payday live" not in body


@pytest.mark.django_db
def test_agents_are_refused_the_war_room_and_the_list(agent_client, store):
    built = build_session(store)

    assert agent_client.get(reverse("reports:war_room", args=[built.session.pk])).status_code == 403
    assert agent_client.get(reverse("reports:war_room_boards", args=[built.session.pk])).status_code == 403
    assert agent_client.get(reverse("reports:live_list")).status_code == 403


@pytest.mark.django_db
def test_the_list_shows_the_users_sessions_newest_first_with_their_links(supervisor_client, store):
    older = build_session(store, start=START - timedelta(days=7))
    newer = LiveSession.objects.create(
        store=store, title="Tonight", host="Mei", started_at=NOW - timedelta(hours=1)
    )

    body = supervisor_client.get(reverse("reports:live_list")).content.decode()

    assert body.index(f'data-session="{newer.pk}"') < body.index(f'data-session="{older.session.pk}"')
    assert reverse("reports:war_room", args=[newer.pk]) in body
    assert reverse("reports:live_review", args=[older.session.pk]) in body


@pytest.mark.django_db
def test_login_is_required(client, store):
    built = build_session(store)

    response = client.get(reverse("reports:war_room", args=[built.session.pk]))

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- bounded reads -------------------------------------------------------------------------------------


def _grow(store, session, sku, orders: int) -> None:
    for n in range(orders):
        order = make_order(store=store, live_session=session, placed_at=NOW - timedelta(minutes=n % 50))
        add_line(order=order, sku=sku)
        if n % 3 == 0:
            shipment = make_shipment(order=order, booked_at=order.placed_at + timedelta(minutes=5))
            if n % 2 == 0:
                case_raise(type="pickup_overdue", order=order, shipment=shipment)


@pytest.mark.django_db
def test_the_war_room_takes_the_same_queries_for_10_and_100_orders(
    supervisor_client, store, django_assert_num_queries
):
    sku = make_sku(store=store, code="BIG", on_hand=500)
    small = LiveSession.objects.create(
        store=store, title="Small", host="Mei", started_at=NOW - timedelta(hours=1)
    )
    large = LiveSession.objects.create(
        store=store, title="Large", host="Mei", started_at=NOW - timedelta(hours=1)
    )
    for session in (small, large):
        LiveSessionAllocation.objects.create(live_session=session, sku=sku, quantity=60)
    _grow(store, small, sku, 10)
    _grow(store, large, sku, 100)

    # session, auth user, membership (+ the session's own row) and the war room's eight
    with django_assert_num_queries(12):
        supervisor_client.get(reverse("reports:war_room_boards", args=[small.pk]))
    with django_assert_num_queries(12):
        supervisor_client.get(reverse("reports:war_room_boards", args=[large.pk]))
    with django_assert_num_queries(12):
        supervisor_client.get(reverse("reports:war_room", args=[large.pk]))


@pytest.mark.django_db
def test_another_store_with_a_bigger_live_never_shows_in_the_figures(store, other_store):
    mine = build_session(store)
    theirs = build_session(other_store)
    assert mine.session.pk != theirs.session.pk

    room = war_room(LiveSession.objects.select_related("store").get(pk=mine.session.pk), now=NOW)

    assert room.orders == 14 and room.dispatch.parcels == 4 and room.cases_open == 4
