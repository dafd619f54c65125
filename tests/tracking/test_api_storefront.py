"""The storefront pushes SKUs, stock, live sessions and orders through the API: idempotent upserts, bulk,
refusals that name the field and write nothing, and what the rules make of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cases.engine import exceptions_sweep
from cases.models import Case
from cases.orders import orders_due_evaluate
from portal.tasks import _woken
from tests.api import Api, fields, order_body, problem
from tests.factories import make_store
from tracking.models import SKU, LiveSession, LiveSessionAllocation, Order, OrderLine, Shipment, StockLevel


@pytest.fixture
def api(store):
    api = Api(store)
    assert api.put("skus/SKU-1", {"name": "Glow Serum 30 ml", "unit_price": "59.90"}).status_code == 201
    return api


def _counts() -> tuple[int, int, int]:
    return Order.objects.count(), OrderLine.objects.count(), Shipment.objects.count()


# --- SKUs and stock ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_sku_is_created_then_unchanged_then_updated(api):
    sku = {"name": "Glow Serum 30 ml", "unit_price": "59.90"}
    assert api.put("skus/SKU-1", sku).status_code == 200
    response = api.put("skus/SKU-1", {**sku, "unit_price": "49.90"})
    assert response.status_code == 200
    assert response.json()["unit_price"] == "49.90"
    assert SKU.objects.get(code="SKU-1").unit_price == SKU.objects.get().unit_price
    assert api.get("skus/SKU-1").json()["name"] == "Glow Serum 30 ml"


@pytest.mark.django_db
def test_a_combo_names_plain_skus_of_the_store(api):
    api.put("skus/SKU-2", {"name": "Toner", "unit_price": "29.90"})
    combo = {
        "name": "Glow set",
        "unit_price": "79.90",
        "components": [{"sku": "SKU-1"}, {"sku": "SKU-2", "quantity": 2}],
    }
    response = api.put("skus/SET-1", combo)
    assert response.status_code == 201
    assert response.json()["components"] == [{"sku": "SKU-1", "quantity": 1}, {"sku": "SKU-2", "quantity": 2}]
    assert response.json()["is_combo"] is True

    nested = api.put("skus/SET-2", {"name": "x", "unit_price": "1.00", "components": [{"sku": "SET-1"}]})
    assert fields(nested) == {"components[0].sku": "SET-1 is a combo itself; list its components instead."}
    unknown = api.put("skus/SET-3", {"name": "x", "unit_price": "1.00", "components": [{"sku": "NOPE"}]})
    assert "components[0].sku" in fields(unknown)
    itself = api.put("skus/SET-1", {**combo, "components": [{"sku": "SET-1"}]})
    assert "components[0].sku" in fields(itself)
    assert not SKU.objects.filter(code__in=["SET-2", "SET-3"]).exists()
    assert SKU.objects.get(code="SET-1").component_links.count() == 2


@pytest.mark.django_db
def test_stock_is_set_and_a_missing_sku_is_a_404(api):
    response = api.put("skus/SKU-1/stock", {"on_hand": 120, "restock_eta": "2026-12-20"})
    assert response.status_code == 201
    assert response.json() | {"updated_at": None} == {
        "on_hand": 120, "allocated": 0, "available": 120, "restock_eta": "2026-12-20", "updated_at": None,
    }  # fmt: skip
    assert api.put("skus/SKU-1/stock", {"on_hand": 120, "restock_eta": "2026-12-20"}).status_code == 200
    response = api.put("skus/SKU-1/stock", {"on_hand": 90, "allocated": 40})
    assert (response.json()["available"], response.json()["restock_eta"]) == (50, None)
    assert api.put("skus/SKU-1/stock", {"on_hand": 80}).json()["allocated"] == 40  # omitted: kept
    assert api.put("skus/NOPE/stock", {"on_hand": 1}).status_code == 404
    assert "on_hand" in fields(api.put("skus/SKU-1/stock", {"on_hand": -5}))
    assert StockLevel.objects.get().on_hand == 80


@pytest.mark.django_db
def test_a_stock_change_wakes_the_stock_rules(api, django_capture_on_commit_callbacks):
    _woken.clear()
    with django_capture_on_commit_callbacks(execute=True):
        api.put("skus/SKU-1/stock", {"on_hand": 3})
    assert "cases.tasks.evaluate_stores" in _woken


@pytest.mark.django_db
def test_a_live_session_is_upserted_with_its_allocations(api):
    api.put("skus/SKU-2", {"name": "Toner", "unit_price": "29.90"})
    body = {"title": "11.11 Live", "host": "Mei", "started_at": "2026-11-11T20:00:00+08:00",
            "allocations": [{"sku": "SKU-1", "quantity": 100}, {"sku": "SKU-2", "quantity": 50}]}  # fmt: skip
    assert api.put("live-sessions/live-1111", body).status_code == 201
    assert api.put("live-sessions/live-1111", body).status_code == 200
    response = api.put(
        "live-sessions/live-1111", {**body, "allocations": [{"sku": "SKU-1", "quantity": 120}]}
    )
    assert response.json()["allocations"] == [{"sku": "SKU-1", "quantity": 120}]
    assert LiveSessionAllocation.objects.get().quantity == 120
    ends_first = api.put("live-sessions/live-2", {**body, "ended_at": "2026-11-11T19:00:00+08:00"})
    assert "ended_at" in fields(ends_first)
    twice = api.put("live-sessions/live-3", {**body, "allocations": [{"sku": "SKU-1", "quantity": 1}] * 2})
    assert "allocations[1].sku" in fields(twice)
    assert LiveSession.objects.count() == 1


# --- orders ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_order_is_created_then_unchanged_then_updated(api, store):
    body = order_body(shipments=[{"carrier": "jtexpress-my", "tracking_number": "630012345678",
                                  "booked_at": "2026-11-12T09:00:00+08:00"}])  # fmt: skip
    created = api.put("orders/580001", body)
    assert created.status_code == 201
    order = created.json()
    assert (order["platform_order_id"], order["amount"], order["currency"]) == ("580001", "59.90", "MYR")
    assert order["lines"] == [
        {"sku": "SKU-1", "name": "Glow Serum 30 ml", "lot": "", "quantity": 1, "unit_price": "59.90"}
    ]
    assert order["shipments"][0]["tracking_number"] == "630012345678"
    assert order["shipments"][0]["status"] == "Pending"
    assert _counts() == (1, 1, 1)
    marked = Order.objects.get().rules_due_at
    assert marked is not None

    Order.objects.update(rules_due_at=None)
    again = api.put("orders/580001", body)
    assert again.status_code == 200
    assert again.json()["updated_at"] == order["updated_at"]
    assert Order.objects.get().rules_due_at is None  # unchanged: nothing for the rules

    changed = api.put(
        "orders/580001", {**body, "lines": [{"sku": "SKU-1", "quantity": 3, "unit_price": "59.90"}]}
    )
    assert changed.status_code == 200
    assert changed.json()["lines"][0]["quantity"] == 3
    assert _counts() == (1, 1, 1)
    assert Order.objects.get().rules_due_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lines": [{"sku": "NOPE", "quantity": 1, "unit_price": "1.00"}]}, "lines[0].sku"),
        ({"lines": [{"sku": "SKU-1", "quantity": -2, "unit_price": "1.00"}]}, "lines[0].quantity"),
        ({"lines": [{"sku": "SKU-1", "quantity": "two", "unit_price": "1.00"}]}, "lines[0].quantity"),
        ({"lines": []}, "lines"),
        ({"ship_by": "2026-11-10T20:05:00+08:00"}, "ship_by"),
        ({"placed_at": "2026-11-11T20:05:00"}, "placed_at"),
        ({"currency": "SGD"}, "currency"),
        ({"amount": "12.345"}, "amount"),
        ({"amount": 59.9}, "amount"),
        ({"live_session": "no-such-live"}, "live_session"),
        ({"buyer": {"name": "A", "email": "not-an-address"}}, "buyer.email"),
        ({"address": {"country": "Malaysia"}}, "address.country"),
        ({"shipments": [{"carrier": "jt express", "tracking_number": "1"}]}, "shipments[0].carrier"),
        ({"platform_order_id": "580999"}, "platform_order_id"),
        ({"status": "lost"}, "status"),
    ],
)
def test_a_bad_order_is_a_400_naming_the_field_and_writes_nothing(api, change, field):
    response = api.put("orders/580001", order_body(**change))
    assert response.status_code == 400
    assert field in fields(response), fields(response)
    assert _counts() == (0, 0, 0)


@pytest.mark.django_db
def test_a_parcel_of_another_order_is_refused(api):
    parcel = {"carrier": "jtexpress-my", "tracking_number": "630000000001"}
    assert api.put("orders/A", order_body(shipments=[parcel])).status_code == 201
    response = api.put("orders/B", order_body(shipments=[parcel]))
    assert "shipments[0].tracking_number" in fields(response)
    assert not Order.objects.filter(platform_order_id="B").exists()


@pytest.mark.django_db
def test_a_resent_order_adds_new_parcels_and_keeps_known_ones(api):
    first = {"carrier": "jtexpress-my", "tracking_number": "630000000001"}
    api.put("orders/A", order_body(shipments=[first]))
    reship = {
        "carrier": "ninjavan-my",
        "tracking_number": "NVMY000000002",
        "booked_at": "2026-11-14T10:00:00+08:00",
    }
    response = api.put("orders/A", order_body(shipments=[reship]))  # the first parcel left out
    assert [s["tracking_number"] for s in response.json()["shipments"]] == ["630000000001", "NVMY000000002"]
    booked = api.put("orders/A", order_body(shipments=[{**first, "booked_at": "2026-11-12T09:00:00+08:00"}]))
    assert booked.json()["shipments"][0]["booked_at"] == "2026-11-12T01:00:00Z"


@pytest.mark.django_db
def test_an_order_held_by_review_stays_held_when_the_storefront_resends_it(api):
    api.put("orders/A", order_body())
    Order.objects.update(status="on_hold")
    assert api.put("orders/A", order_body()).json()["status"] == "on_hold"
    assert api.patch("orders/A", {"status": "awaiting_shipment"}).json()["status"] == "on_hold"
    assert api.put("orders/A", order_body(status="cancelled")).json()["status"] == "cancelled"


@pytest.mark.django_db
def test_patch_changes_status_and_corrects_the_address(api):
    api.put("orders/A", order_body())
    Order.objects.update(rules_due_at=None)
    response = api.patch("orders/A", {"address": {"street": "14 Jalan SS2/55", "postal_code": "47301"}})
    assert response.status_code == 200
    assert response.json()["address"]["street"] == "14 Jalan SS2/55"
    assert response.json()["address"]["city"] == "Petaling Jaya"  # omitted: kept
    assert api.patch("orders/A", {"status": "cancelled"}).json()["status"] == "cancelled"
    assert Order.objects.get().rules_due_at is not None
    assert "status" in fields(api.patch("orders/A", {"status": "on_hold"}))
    assert "address.country" in fields(api.patch("orders/A", {"address": {"country": "SG"}}))
    assert api.patch("orders/NOPE", {"status": "cancelled"}).status_code == 404


@pytest.mark.django_db
def test_reading_an_order_gives_its_parcels_and_open_cases(api, store):
    parcel = {"carrier": "jtexpress-my", "tracking_number": "630000000001",
              "booked_at": (timezone.now() - timedelta(hours=25)).isoformat()}  # fmt: skip
    api.put("orders/A", order_body(shipments=[parcel]))
    # A parcel first heard of past its deadline waits for its history: judged once the grace period is over.
    exceptions_sweep(now=timezone.now() + timedelta(minutes=31))
    order = api.get("orders/A").json()
    assert [case["type"] for case in order["open_cases"]] == ["pickup_overdue"]
    assert order["open_cases"][0]["priority"] in ("normal", "high", "urgent")
    assert api.get("orders/NOPE").status_code == 404


@pytest.mark.django_db
def test_a_parcel_booked_25_hours_ago_through_the_api_gets_its_pickup_case(api, store):
    booked = timezone.now() - timedelta(hours=25)
    api.put("orders/A", order_body(shipments=[{"carrier": "jtexpress-my", "tracking_number": "630000000001",
                                               "booked_at": booked.isoformat()}]))  # fmt: skip
    exceptions_sweep()
    assert not Case.objects.exists()  # heard of past its deadline: it waits for its history first
    exceptions_sweep(now=timezone.now() + timedelta(minutes=31))  # no tracking event within the grace period
    cases = api.get("cases", type="pickup_overdue").json()["results"]
    assert [(c["order_id"], c["tracking_number"]) for c in cases] == [("A", "630000000001")]


# --- bulk --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bulk_writes_the_valid_orders_and_names_what_refused_the_others(api):
    orders = [order_body(f"B{n}") for n in range(3)]
    orders.insert(1, order_body("BAD", lines=[{"sku": "NOPE", "quantity": 1, "unit_price": "1.00"}]))
    orders.append({"platform_order_id": "SHAPE", "buyer": "nobody"})
    orders.append(order_body("B0"))  # twice in one request
    response = api.post("orders/bulk", {"orders": orders})
    assert response.status_code == 200
    result = response.json()
    assert (result["created"], result["updated"], result["unchanged"], result["refused"]) == (3, 0, 0, 3)
    by_index = {r["index"]: r for r in result["results"]}
    assert [by_index[i]["result"] for i in range(6)] == [
        "created",
        "error",
        "created",
        "created",
        "error",
        "error",
    ]
    assert by_index[1]["errors"][0]["field"] == "lines[0].sku"
    assert (by_index[4]["platform_order_id"], by_index[4]["errors"][0]["field"]) == ("SHAPE", "buyer")
    assert by_index[5]["errors"][0]["field"] == "platform_order_id"
    assert set(Order.objects.values_list("platform_order_id", flat=True)) == {"B0", "B1", "B2"}

    again = api.post("orders/bulk", {"orders": [order_body("B0"), order_body("B1", amount="1.00")]}).json()
    assert [r["result"] for r in again["results"]] == ["unchanged", "updated"]


@pytest.mark.django_db
def test_bulk_takes_at_most_1000_orders(api):
    response = api.post("orders/bulk", {"orders": [order_body(f"B{n}") for n in range(1001)]})
    assert response.status_code == 400
    assert "orders" in fields(response)
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_ten_thousand_orders_in_one_bulk_call_are_refused_whole(api):
    response = api.post("orders/bulk", {"orders": [order_body(f"B{n}") for n in range(10_000)]})
    assert response.status_code in (400, 413)
    problem(response)
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_bulk_runs_a_fixed_number_of_queries_however_many_orders(api, django_assert_max_num_queries):
    def bulk(prefix: str, n: int) -> None:
        orders = [
            order_body(
                f"{prefix}{i}",
                shipments=[{"carrier": "jtexpress-my", "tracking_number": f"{prefix}63{i:08d}"}],
            )
            for i in range(n)
        ]
        assert api.post("orders/bulk", {"orders": orders}).json()["created"] == n

    with django_assert_max_num_queries(20):
        bulk("S", 10)
    with django_assert_max_num_queries(20):
        bulk("L", 200)


@pytest.mark.django_db
def test_a_replayed_bulk_writes_nothing_new(api):
    body = {"orders": [order_body(f"B{n}") for n in range(5)]}
    first = api.post("orders/bulk", body, headers={"Idempotency-Key": "live-burst-1"})
    again = api.post("orders/bulk", body, headers={"Idempotency-Key": "live-burst-1"})
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert _counts() == (5, 5, 0)


# --- what the rules make of it ------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_oversold_livestream_through_the_api_alone(store):
    """100 units allocated to the live, 120 orders in two bulk calls: the latest 20 are oversold."""
    api = Api(store)
    api.put("skus/GLOW-30", {"name": "Glow Serum 30 ml", "unit_price": "59.90"})
    api.put("skus/GLOW-30/stock", {"on_hand": 100, "allocated": 100})
    api.put("live-sessions/live-1111", {"title": "11.11 Mega Glow Live", "host": "Mei",
                                        "started_at": "2026-11-11T20:00:00+08:00",
                                        "allocations": [{"sku": "GLOW-30", "quantity": 100}]})  # fmt: skip
    start = timezone.now() - timedelta(hours=2)

    def order(n: int) -> dict:
        placed = start + timedelta(seconds=n)
        return order_body(
            f"LIVE{n:04d}", sku="GLOW-30", live_session="live-1111", placed_at=placed.isoformat(),
            ship_by=(placed + timedelta(days=2)).isoformat(),
            address={"country": "MY", "city": "Kuala Lumpur", "street": f"{n} Jalan Ampang", "district": "KLCC"},
        )  # fmt: skip

    assert api.post("orders/bulk", {"orders": [order(n) for n in range(60)]}).json()["created"] == 60
    assert api.post("orders/bulk", {"orders": [order(n) for n in range(60, 120)]}).json()["created"] == 60
    orders_due_evaluate()
    assert not Order.objects.filter(rules_due_at__isnull=False).exists()

    oversold = []
    after = None
    while True:
        page = api.get("cases", type="oversold", limit=7, **({"after": after} if after else {})).json()
        oversold += page["results"]
        after = page["next_cursor"]
        if after is None:
            break
    assert sorted(case["order_id"] for case in oversold) == [f"LIVE{n:04d}" for n in range(100, 120)]
    assert Case.objects.filter(type="oversold").count() == 20
    orders_due_evaluate()  # nothing due: nothing changes
    assert Case.objects.filter(type="oversold").count() == 20


@pytest.mark.django_db
def test_orders_changed_while_the_rules_ran_stay_due(store):
    api = Api(store)
    api.put("skus/SKU-1", {"name": "Glow", "unit_price": "59.90"})
    api.put("orders/A", order_body())
    read = Order.objects.values_list("pk", "rules_due_at").get()
    Order.objects.update(rules_due_at=read[1] + timedelta(seconds=1))  # a change after the rules read it
    from tracking.storefront import orders_due_clear

    assert orders_due_clear(claimed=[read]) == 0
    assert Order.objects.get().rules_due_at is not None


@pytest.mark.django_db
def test_another_stores_skus_are_unknown_here(api):
    other = Api(make_store(code="other"))
    other.put("skus/ONLY-THERE", {"name": "x", "unit_price": "1.00"})
    response = api.put("orders/A", order_body(sku="ONLY-THERE"))
    assert "lines[0].sku" in fields(response)
    assert api.get("skus/ONLY-THERE").status_code == 404
