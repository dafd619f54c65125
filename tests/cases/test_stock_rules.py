from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from cases.models import Case, CaseEvent
from cases.stock import stock_evaluate
from tests.concurrency import at_once
from tests.factories import add_line, make_live_session, make_order, make_sku, make_store
from tracking.models import LiveSessionAllocation, Order, OrderLine, StockLevel

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # the live starts
NOW = T0 + timedelta(hours=1)
TODAY = date(2026, 11, 20)  # in the store's time zone (UTC+8) at NOW


def _orders(store, count, *, sku, quantity=1, session=None, start=T0, shuffle=False, **fields):
    """`count` orders one second apart, created in shuffled order when asked so ids do not follow time."""
    offsets = list(range(count))
    if shuffle:
        random.Random(7).shuffle(offsets)
    created = {}
    for offset in offsets:
        order = make_order(
            store=store, placed_at=start + timedelta(seconds=offset), live_session=session, **fields
        )
        add_line(order=order, sku=sku, quantity=quantity)
        created[offset] = order
    return [created[offset] for offset in range(count)]  # oldest first


def _open(type="oversold"):
    return Case.objects.filter(type=type, status="new")


def _open_order_ids(type="oversold"):
    return set(_open(type).values_list("order_id", flat=True))


@pytest.mark.django_db
def test_120_orders_against_100_allocated_raise_exactly_20_cases_on_the_latest_20(store):
    sku = make_sku(store=store, code="LIP-03", on_hand=100, allocated=100)
    session = make_live_session(store=store, allocations={sku: 100}, started_at=T0)
    orders = _orders(store, 120, sku=sku, session=session, shuffle=True)

    result = stock_evaluate(store=store, live_session_ids=[session.pk], now=NOW)

    assert result.raised == 20
    assert Case.objects.count() == 20
    assert _open_order_ids() == {order.pk for order in orders[100:]}
    case = Case.objects.get(order=orders[100])
    assert case.shipment is None
    assert case.opened_at == NOW
    assert case.facts["units_short"] == 1
    assert case.facts["skus_short"] == [
        {
            "sku_id": sku.pk, "sku_code": "LIP-03", "sku_name": sku.name, "units_ordered": 1, "units_short": 1,
            "source": "live_session", "live_session_id": session.pk, "allocation": 100, "restock_eta": None,
        }
    ]  # fmt: skip
    assert case.facts["suggested_path"] == "refund_coupon"  # no restock date, nothing to swap to


@pytest.mark.django_db
def test_regular_orders_draw_on_stock_on_hand_less_what_live_sessions_hold(store):
    sku = make_sku(store=store, on_hand=130, allocated=30)
    orders = _orders(store, 120, sku=sku, shuffle=True)
    shipped = _orders(store, 5, sku=sku, start=T0 + timedelta(hours=-1), status="shipped")
    cancelled = _orders(store, 5, sku=sku, start=T0 + timedelta(minutes=30), status="cancelled")

    stock_evaluate(store=store, now=NOW)

    assert _open_order_ids() == {order.pk for order in orders[100:]}
    assert not Case.objects.filter(order__in=shipped + cancelled).exists()
    assert Case.objects.get(order=orders[100]).facts["skus_short"][0]["source"] == "stock"


@pytest.mark.django_db
def test_orders_placed_at_the_same_moment_are_served_in_id_order(store):
    sku = make_sku(store=store, on_hand=2)
    first, second, third = (make_order(store=store, placed_at=T0) for _ in range(3))
    for order in (first, second, third):
        add_line(order=order, sku=sku)

    stock_evaluate(store=store, now=NOW)

    assert _open_order_ids() == {third.pk}


@pytest.mark.django_db
def test_a_combo_pack_draws_its_components_and_the_order_short_of_one_is_oversold(store):
    serum = make_sku(store=store, code="SERUM", on_hand=10)
    cleanser = make_sku(store=store, code="CLEANSER", on_hand=100)
    glow_set = make_sku(store=store, code="GLOW-SET", components={serum: 2, cleanser: 1})
    single = make_order(store=store, placed_at=T0)
    add_line(order=single, sku=serum, quantity=1)  # serum: 1 of 10
    sets = _orders(
        store, 3, sku=glow_set, quantity=2, start=T0 + timedelta(minutes=1)
    )  # 4 serums each: 5, 9, 13

    result = stock_evaluate(store=store, sku_ids=[serum.pk], now=NOW)

    assert result.raised == 1
    case = Case.objects.get()
    assert case.order_id == sets[2].pk
    assert [(s["sku_code"], s["units_ordered"], s["units_short"]) for s in case.facts["skus_short"]] == [
        ("SERUM", 4, 3)
    ]


@pytest.mark.django_db
def test_a_combo_pack_allocated_to_a_live_session_draws_packs_from_that_allocation(store):
    serum = make_sku(store=store, code="SERUM", on_hand=0)
    glow_set = make_sku(store=store, code="GLOW-SET", components={serum: 1})
    session = make_live_session(store=store, allocations={glow_set: 2}, started_at=T0)
    orders = _orders(store, 3, sku=glow_set, session=session)

    stock_evaluate(store=store, live_session_ids=[session.pk], now=NOW)

    case = Case.objects.get()
    assert case.order_id == orders[2].pk
    assert case.facts["skus_short"][0]["sku_code"] == "GLOW-SET"


@pytest.mark.django_db
def test_running_it_again_raises_and_writes_nothing(store):
    sku = make_sku(store=store, on_hand=100, allocated=100)
    session = make_live_session(store=store, allocations={sku: 100}, started_at=T0)
    _orders(store, 120, sku=sku, session=session)
    stock_evaluate(store=store, live_session_ids=[session.pk], now=NOW)
    events = CaseEvent.objects.count()

    again = stock_evaluate(store=store, live_session_ids=[session.pk], now=NOW + timedelta(minutes=5))
    whole_store = stock_evaluate(store=store, now=NOW + timedelta(minutes=10))

    assert (again.raised, again.updated, again.resolved) == (0, 0, 0)
    assert (whole_store.raised, whole_store.updated, whole_store.resolved) == (0, 0, 0)
    assert Case.objects.count() == 20
    assert CaseEvent.objects.count() == events


@pytest.mark.django_db
def test_a_bigger_allocation_clears_the_cases_of_the_orders_it_now_covers(store):
    sku = make_sku(store=store, on_hand=120, allocated=100)
    session = make_live_session(store=store, allocations={sku: 100}, started_at=T0)
    orders = _orders(store, 120, sku=sku, session=session)
    stock_evaluate(store=store, live_session_ids=[session.pk], now=NOW)

    LiveSessionAllocation.objects.filter(live_session=session, sku=sku).update(quantity=110)
    result = stock_evaluate(store=store, sku_ids=[sku.pk], now=NOW + timedelta(hours=1))

    assert result.resolved == 10
    assert _open_order_ids() == {order.pk for order in orders[110:]}
    cleared = Case.objects.get(order=orders[100])
    assert (cleared.status, cleared.resolution) == ("resolved", "condition_cleared")
    assert list(cleared.events.values_list("kind", flat=True)) == ["raised", "condition_cleared", "resolved"]


@pytest.mark.django_db
def test_a_restock_clears_the_cases_and_a_case_an_agent_took_is_flagged_instead(store, agent):
    sku = make_sku(store=store, on_hand=3)
    orders = _orders(store, 5, sku=sku)
    stock_evaluate(store=store, now=NOW)
    taken = Case.objects.get(order=orders[4])
    Case.objects.filter(pk=taken.pk).update(status="in_progress", assignee=agent)

    StockLevel.objects.filter(sku=sku).update(on_hand=10)
    stock_evaluate(store=store, sku_ids=[sku.pk], now=NOW + timedelta(days=1))

    assert Case.objects.get(order=orders[3]).status == "resolved"
    taken.refresh_from_db()
    assert (taken.status, taken.needs_attention) == ("in_progress", True)


@pytest.mark.django_db
def test_a_cancelled_earlier_order_frees_its_units_for_the_next_one(store):
    sku = make_sku(store=store, on_hand=2)
    orders = _orders(store, 3, sku=sku)
    stock_evaluate(store=store, now=NOW)
    assert _open_order_ids() == {orders[2].pk}

    Order.objects.filter(pk=orders[0].pk).update(status="cancelled")
    stock_evaluate(store=store, sku_ids=[sku.pk], now=NOW + timedelta(hours=1))

    assert not _open().exists()


@pytest.mark.django_db
def test_shipped_orders_of_a_live_session_used_their_share_of_its_allocation(store):
    sku = make_sku(store=store, on_hand=50, allocated=2)
    session = make_live_session(store=store, allocations={sku: 10}, started_at=T0)
    _orders(store, 8, sku=sku, session=session, status="shipped")
    pending = _orders(store, 4, sku=sku, session=session, start=T0 + timedelta(minutes=5))

    stock_evaluate(store=store, live_session_ids=[session.pk], now=NOW)

    assert _open_order_ids() == {pending[2].pk, pending[3].pk}
    assert Case.objects.get(order=pending[2]).facts["skus_short"][0]["allocation"] == 10


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("days", "path"), [(3, "wait"), (7, "wait"), (10, "agent_choice"), (15, "agent_choice"), (20, "refund")]
)
def test_out_of_stock_with_a_restock_date_suggests_a_path_by_how_far_it_is(store, days, path):
    eta = TODAY + timedelta(days=days)
    sku = make_sku(store=store, on_hand=4, allocated=4, restock_eta=eta)
    (order,) = _orders(store, 1, sku=sku)

    stock_evaluate(store=store, now=NOW)

    case = Case.objects.get()
    assert (case.order_id, case.type) == (order.pk, "out_of_stock")
    assert case.facts["restock_eta"] == eta.isoformat()
    assert case.facts["days_to_restock"] == days
    assert case.facts["suggested_path"] == path


@pytest.mark.django_db
def test_no_stock_and_no_restock_date_is_oversold_with_refund_plus_coupon(store):
    make_sku(store=store, code="OTHER", unit_price="99.00", on_hand=0)
    sku = make_sku(store=store, on_hand=0)
    _orders(store, 1, sku=sku)

    stock_evaluate(store=store, now=NOW)

    case = Case.objects.get()
    assert case.type == "oversold"
    assert case.facts["suggested_path"] == "refund_coupon"
    assert [o["available"] for o in case.facts["options"]] == [False, False, True]


@pytest.mark.django_db
@pytest.mark.parametrize(("days", "path"), [(5, "wait"), (10, "swap"), (None, "swap"), (30, "refund_coupon")])
def test_oversold_suggests_wait_swap_or_refund_and_names_the_swap(store, days, path):
    sku = make_sku(store=store, code="LIP-03", unit_price="9.90", on_hand=5, allocated=5)
    sku.stock.restock_eta = TODAY + timedelta(days=days) if days is not None else None
    sku.stock.save()
    make_sku(store=store, code="LIP-04", unit_price="12.90", on_hand=40)
    make_sku(store=store, code="SERUM", unit_price="89.90", on_hand=40)
    make_sku(store=store, code="MASK", unit_price="11.90", on_hand=0)
    session = make_live_session(store=store, allocations={sku: 1}, started_at=T0)
    orders = _orders(store, 2, sku=sku, session=session)

    stock_evaluate(store=store, live_session_ids=[session.pk], now=NOW)

    case = Case.objects.get()
    assert case.order_id == orders[1].pk
    assert case.facts["suggested_path"] == path
    wait, swap, refund = case.facts["options"]
    assert (wait["key"], wait["path"], wait["available"]) == ("A", "wait", days is not None)
    assert [s["sku_code"] for s in swap["swap_for"]["LIP-03"]] == ["LIP-04", "SERUM"]  # closest price first
    assert (refund["key"], refund["path"]) == ("C", "refund_coupon")


@pytest.mark.django_db
def test_live_orders_within_their_allocation_are_not_out_of_stock_when_regular_stock_is_gone(store):
    eta = TODAY + timedelta(days=3)
    sku = make_sku(store=store, on_hand=10, allocated=10, restock_eta=eta)
    session = make_live_session(store=store, allocations={sku: 10}, started_at=T0)
    _orders(store, 10, sku=sku, session=session)
    (regular,) = _orders(store, 1, sku=sku, start=T0 + timedelta(hours=-2))

    stock_evaluate(store=store, now=NOW)

    assert list(Case.objects.values_list("order_id", "type")) == [(regular.pk, "out_of_stock")]


@pytest.mark.django_db
def test_an_order_never_has_both_an_oversold_and_an_out_of_stock_case(store):
    sku = make_sku(store=store, on_hand=5)
    orders = _orders(store, 6, sku=sku)
    stock_evaluate(store=store, now=NOW)
    assert _open_order_ids("oversold") == {orders[5].pk}

    StockLevel.objects.filter(sku=sku).update(on_hand=0, restock_eta=TODAY + timedelta(days=4))
    stock_evaluate(store=store, sku_ids=[sku.pk], now=NOW + timedelta(hours=1))

    assert _open_order_ids("out_of_stock") == {order.pk for order in orders[:5]}
    assert _open_order_ids("oversold") == {orders[5].pk}
    assert Case.objects.filter(order=orders[5]).count() == 1
    assert Case.objects.get(order=orders[5]).facts["suggested_path"] == "wait"


@pytest.mark.django_db
def test_out_of_stock_clears_when_the_restock_arrives(store):
    sku = make_sku(store=store, on_hand=0, restock_eta=TODAY + timedelta(days=2))
    _orders(store, 3, sku=sku)
    stock_evaluate(store=store, now=NOW)
    assert _open("out_of_stock").count() == 3

    StockLevel.objects.filter(sku=sku).update(on_hand=20, restock_eta=None)
    result = stock_evaluate(store=store, sku_ids=[sku.pk], now=NOW + timedelta(days=2))

    assert result.resolved == 3
    assert not Case.objects.filter(status="new").exists()


@pytest.mark.django_db
def test_an_order_whose_stock_case_an_agent_resolved_is_not_raised_again(store):
    sku = make_sku(store=store, on_hand=1)
    orders = _orders(store, 2, sku=sku)
    stock_evaluate(store=store, now=NOW)
    Case.objects.filter(order=orders[1]).update(status="resolved", resolution="buyer_waited", resolved_at=NOW)

    result = stock_evaluate(store=store, now=NOW + timedelta(hours=1))

    assert result.raised == 0
    assert Case.objects.filter(order=orders[1]).count() == 1


@pytest.mark.django_db
def test_another_stores_orders_are_neither_evaluated_nor_counted(store, other_store):
    sku = make_sku(store=store, on_hand=1)
    other_sku = make_sku(store=other_store, on_hand=0)
    _orders(other_store, 3, sku=other_sku)
    _orders(store, 1, sku=sku)

    result = stock_evaluate(store=store, now=NOW)

    assert (result.evaluated, result.raised) == (1, 0)
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_a_live_session_of_2000_orders_is_read_in_a_bounded_number_of_queries(
    store, django_assert_max_num_queries
):
    sku = make_sku(store=store, on_hand=2000, allocated=1990)
    combo_part = make_sku(store=store, on_hand=5000)
    combo = make_sku(store=store, components={sku: 1, combo_part: 2})
    session = make_live_session(store=store, allocations={sku: 1990}, started_at=T0)
    order = make_order(store=store, placed_at=T0)
    fields = {f.attname: getattr(order, f.attname) for f in Order._meta.concrete_fields if f.attname != "id"}
    Order.objects.bulk_create(
        Order(**{**fields, "platform_order_id": f"LIVE{i:05d}", "placed_at": T0 + timedelta(seconds=i),
                 "live_session_id": session.pk})
        for i in range(1999)
    )  # fmt: skip
    Order.objects.filter(pk=order.pk).update(live_session=session)
    OrderLine.objects.bulk_create(
        OrderLine(order_id=pk, sku=sku if pk % 2 else combo, sku_code="X", sku_name="X", quantity=1,
                  unit_price=1)
        for pk in Order.objects.filter(live_session=session).values_list("pk", flat=True)
    )  # fmt: skip

    # Reads are bounded; each raised case costs its writes plus the proactive-message lookups (3).
    with django_assert_max_num_queries(17 + 10 * 11):
        first = stock_evaluate(store=store, live_session_ids=[session.pk], now=NOW)
    with django_assert_max_num_queries(17):
        again = stock_evaluate(store=store, live_session_ids=[session.pk], now=NOW)

    assert (first.evaluated, first.raised) == (2000, 10)
    assert (again.raised, again.updated) == (0, 0)


@pytest.mark.django_db
def test_shipping_orders_within_the_allocation_leaves_the_oversold_cases_alone(store):
    sku = make_sku(store=store, on_hand=100, allocated=100)
    session = make_live_session(store=store, allocations={sku: 100}, started_at=T0)
    orders = _orders(store, 120, sku=sku, session=session)
    stock_evaluate(store=store, live_session_ids=[session.pk], now=NOW)
    events = CaseEvent.objects.count()

    Order.objects.filter(pk__in=[order.pk for order in orders[:40]]).update(status="shipped")
    StockLevel.objects.filter(sku=sku).update(on_hand=60, allocated=60)
    result = stock_evaluate(store=store, sku_ids=[sku.pk], now=NOW + timedelta(hours=1))

    assert (result.raised, result.updated, result.resolved) == (0, 0, 0)
    assert _open_order_ids() == {order.pk for order in orders[100:]}
    assert CaseEvent.objects.count() == events


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrency needs PostgreSQL")
def test_racing_evaluations_of_one_store_raise_and_clear_each_case_once():
    store = make_store(code="race-stock")
    sku = make_sku(store=store, on_hand=100, allocated=100)
    session = make_live_session(store=store, allocations={sku: 100}, started_at=T0)
    _orders(store, 120, sku=sku, session=session)

    def race(moment: datetime) -> None:
        def evaluate() -> None:
            stock_evaluate(store=store, sku_ids=[sku.pk], now=moment)

        at_once(*[evaluate] * 4)

    race(NOW)
    assert Case.objects.count() == 20
    assert CaseEvent.objects.filter(kind="raised").count() == 20

    LiveSessionAllocation.objects.filter(live_session=session).update(quantity=120)
    race(NOW + timedelta(hours=1))
    assert Case.objects.filter(status="resolved").count() == 20
    assert CaseEvent.objects.filter(kind="condition_cleared").count() == 20
