"""What the storefront API answers about SKUs, live sessions and orders (the request bodies are the
service's own input structs, tracking.storefront)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec

from tracking.storefront import BULK_MAX, OrderIn


class ComponentOut(msgspec.Struct):
    sku: str
    quantity: int


class StockOut(msgspec.Struct):
    on_hand: int
    allocated: int
    available: int
    restock_eta: date | None
    updated_at: datetime


class SkuOut(msgspec.Struct):
    """A SKU of the store, with its stock when it is stock-managed here."""

    code: str
    name: str
    unit_price: str
    is_combo: bool
    components: list[ComponentOut]
    stock: StockOut | None


class AllocationOut(msgspec.Struct):
    sku: str
    quantity: int


class LiveSessionOut(msgspec.Struct):
    external_id: str
    title: str
    host: str
    started_at: datetime
    ended_at: datetime | None
    allocations: list[AllocationOut]


class BuyerOut(msgspec.Struct):
    name: str
    platform_id: str
    email: str
    phone: str
    language: str


class AddressOut(msgspec.Struct):
    country: str
    province: str
    city: str
    district: str
    street: str
    postal_code: str


class LineOut(msgspec.Struct):
    sku: str
    name: str
    lot: str
    quantity: int
    unit_price: str


class CheckpointOut(msgspec.Struct):
    at: datetime
    tag: str
    subtag: str
    text: str
    location: str


class ShipmentOut(msgspec.Struct):
    """A parcel and where it is: status and substatus in AfterShip's taxonomy, its latest checkpoint."""

    carrier: str
    tracking_number: str
    status: str
    substatus: str
    booked_at: datetime | None
    label_created_at: datetime | None
    accepted_at: datetime | None
    last_event_at: datetime | None
    delivered_at: datetime | None
    expected_delivery: date | None
    last_checkpoint: CheckpointOut | None


class CaseRef(msgspec.Struct):
    id: int
    type: str
    status: str
    priority: str
    opened_at: datetime


class OrderOut(msgspec.Struct):
    """An order as Afterdesk has it: the storefront's data, its parcels' tracking and its open cases."""

    platform_order_id: str
    status: str
    buyer: BuyerOut
    address: AddressOut
    placed_at: datetime
    ship_by: datetime
    live_session: str | None
    amount: str
    currency: str
    payment_flagged: bool
    lines: list[LineOut]
    shipments: list[ShipmentOut]
    open_cases: list[CaseRef]
    created_at: datetime
    updated_at: datetime


class OrdersBulkIn(msgspec.Struct, forbid_unknown_fields=True):
    """Up to 1,000 orders, each as PUT /orders/{platform_order_id} takes it, with its platform_order_id."""

    orders: Annotated[list[OrderIn], msgspec.Meta(min_length=1, max_length=BULK_MAX)]


class RawBulkIn(msgspec.Struct, forbid_unknown_fields=True):
    """OrdersBulkIn with each order left undecoded: one order's error must not refuse the others."""

    orders: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=BULK_MAX)]


class FieldErrorOut(msgspec.Struct):
    field: str
    detail: str


class BulkResultOut(msgspec.Struct):
    index: int
    platform_order_id: str
    result: str
    errors: list[FieldErrorOut]


class BulkOut(msgspec.Struct):
    """One result per order sent, in order: created, updated, unchanged, or error with what refused it."""

    created: int
    updated: int
    unchanged: int
    refused: int
    results: list[BulkResultOut]
