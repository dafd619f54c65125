"""Small factories that build valid rows through the real models and services."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from cases.services import case_raise
from portal.models import Membership, Store
from tracking.models import (
    SKU,
    LiveSession,
    LiveSessionAllocation,
    Order,
    OrderLine,
    Shipment,
    SKUComponent,
    StockLevel,
)

_seq = itertools.count(1)


def make_store(*, code: str, name: str = "Test Shop", platform: str = "tiktok_shop") -> Store:
    return Store.objects.create(
        code=code, name=name, platform=platform, region="MY", currency="MYR", timezone="Asia/Kuala_Lumpur"
    )


def make_user(username: str, *, password: str = "pw-for-tests-123"):
    return get_user_model().objects.create_user(username=username, password=password)


def make_membership(*, user, store: Store, role: str = "agent") -> Membership:
    return Membership.objects.create(user=user, store=store, role=role)


def make_order(*, store: Store, placed_at: datetime | None = None, amount: str = "59.90", **fields) -> Order:
    n = next(_seq)
    placed_at = placed_at or timezone.now() - timedelta(days=1)
    defaults = {
        "platform_order_id": f"580{n:09d}",
        "buyer_name": f"Buyer {n}",
        "country": store.region,
        "province": "Selangor",
        "city": "Petaling Jaya",
        "district": "SS2",
        "street": f"{n} Jalan SS2/55",
        "placed_at": placed_at,
        "ship_by": placed_at + timedelta(hours=48),
        "amount": Decimal(amount),
        "currency": store.currency,
    }
    defaults.update(fields)
    return Order.objects.create(store=store, **defaults)


def make_shipment(*, order: Order, carrier: str = "jtexpress-my", **fields) -> Shipment:
    n = next(_seq)
    defaults = {"tracking_number": f"JT50{n:011d}", "booked_at": order.placed_at + timedelta(hours=2)}
    known_since = fields.pop("created_at", None)
    defaults.update(fields)
    shipment = Shipment.objects.create(store_id=order.store_id, order=order, carrier=carrier, **defaults)
    # We knew of the parcel when it was booked (as a storefront that reports as it ships), unless told when:
    # a parcel first heard of after its deadlines waits for its history (cases.rules.parcel_evaluate).
    known_since = known_since or shipment.booked_at or order.placed_at
    Shipment.objects.filter(pk=shipment.pk).update(created_at=known_since)
    shipment.created_at = known_since
    return shipment


def make_case(*, store: Store, type: str = "stalled_in_transit", **fields):
    order = make_order(store=store)
    shipment = make_shipment(order=order)
    case, _ = case_raise(type=type, order=order, shipment=shipment, summary="Parcel stalled at hub", **fields)
    return case


def make_sku(
    *,
    store: Store,
    code: str | None = None,
    name: str = "",
    unit_price: str = "29.90",
    on_hand: int | None = None,
    allocated: int = 0,
    restock_eta: date | None = None,
    components: Mapping[SKU, int] | None = None,
) -> SKU:
    """A SKU; with `on_hand` it gets a StockLevel, with `components` ({SKU: quantity}) it is a combo pack."""
    n = next(_seq)
    code = code or f"SKU-{n:05d}"
    sku = SKU.objects.create(
        store=store, code=code, name=name or f"Item {code}", unit_price=Decimal(unit_price),
        is_combo=bool(components),
    )  # fmt: skip
    for component, quantity in (components or {}).items():
        SKUComponent.objects.create(combo=sku, component=component, quantity=quantity)
    if on_hand is not None:
        StockLevel.objects.create(sku=sku, on_hand=on_hand, allocated=allocated, restock_eta=restock_eta)
    return sku


def make_live_session(
    *, store: Store, allocations: Mapping[SKU, int] | None = None, started_at: datetime | None = None
) -> LiveSession:
    """A live session with its stock allocations ({SKU: units})."""
    n = next(_seq)
    started_at = started_at or timezone.now() - timedelta(days=1)
    session = LiveSession.objects.create(
        store=store,
        title=f"Live {n}",
        host="Host",
        started_at=started_at,
        ended_at=started_at + timedelta(hours=2),
    )
    for sku, quantity in (allocations or {}).items():
        LiveSessionAllocation.objects.create(live_session=session, sku=sku, quantity=quantity)
    return session


def add_line(*, order: Order, sku: SKU, quantity: int = 1, lot: str = "") -> OrderLine:
    return OrderLine.objects.create(
        order=order, sku=sku, sku_code=sku.code, sku_name=sku.name, lot=lot, quantity=quantity,
        unit_price=sku.unit_price,
    )  # fmt: skip
