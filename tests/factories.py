"""Small factories that build valid rows through the real models and services."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from cases.services import case_raise
from portal.models import Membership, Store
from tracking.models import Order, Shipment

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
    defaults.update(fields)
    return Shipment.objects.create(store_id=order.store_id, order=order, carrier=carrier, **defaults)


def make_case(*, store: Store, type: str = "stalled_in_transit", **fields):
    order = make_order(store=store)
    shipment = make_shipment(order=order)
    case, _ = case_raise(type=type, order=order, shipment=shipment, summary="Parcel stalled at hub", **fields)
    return case
