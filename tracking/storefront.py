"""Writes from the storefront (the REST API; Seller Center imports later): SKUs, stock, live sessions and
orders, each upserted by its natural key, so a storefront may send the same thing again and again.

The input records are msgspec structs: the API decodes request bodies straight into them (shape, types and
ranges checked there), and these services check what needs the store's data (known SKUs and live sessions,
the store's currency, a parcel that belongs to another order). A refused record writes nothing.

What a write sets off runs after commit, in the worker, by dotted path (tracking never imports cases):
- an order created or changed is marked `rules_due_at`, and the stock and review rules evaluate due orders
  (`cases.tasks.evaluate_orders`); the mark is the durable work, the wake-up only makes it prompt;
- a new parcel is due for the parcel rules at once (`Shipment.next_check_at` defaults to now) and is seen by
  the registration step, like a parcel made anywhere else;
- stock, allocations and combo recipes wake the store-wide stock rules, as the admin does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.db import rows_insert
from portal.models import Store
from portal.tasks import wake
from tracking.choices import OrderStatus, Tag
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
from tracking.tasks import ORDER_RULES_TASK, REGISTER_TASK, RULES_TASK, STOCK_RULES_TASK

BULK_MAX = 1000
LINES_MAX = 200
SHIPMENTS_MAX = 20
# A placed_at further ahead than this is a clock or format mistake, not an order.
FUTURE_SLACK = timedelta(days=1)
# Times outside these are typing mistakes (and some, such as an offset of -20:12, no database stores).
TIME_MIN, TIME_MAX = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
_RETRIES = 3

Money = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9]{1,10}(\.[0-9]{1,2})?$",
        description='A decimal string in the store\'s currency, e.g. "59.90".',
        examples=["59.90"],
    ),
]
Time = Annotated[
    datetime, msgspec.Meta(tz=True, description="ISO 8601 with an offset, e.g. 2026-11-11T20:05:00+08:00.")
]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]


def _text(max_length: int, description: str = "") -> type:
    return Annotated[str, msgspec.Meta(max_length=max_length, description=description)]


class ComponentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    sku: Code
    quantity: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1


class SkuIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A SKU. With components it is a combo pack, whose stock is its components'."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    unit_price: Money
    components: Annotated[list[ComponentIn], msgspec.Meta(max_length=50)] = []


class StockIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A SKU's stock. `allocated` is the part of on_hand set aside for live sessions; omitted, it is kept."""

    on_hand: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]
    allocated: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)] | None = None
    restock_eta: date | None = None


class AllocationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    sku: Code
    quantity: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]


class LiveSessionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A livestream and the stock set aside for it (allocations replace the ones stored)."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    host: _text(120) = ""
    started_at: Time
    ended_at: Time | None = None
    allocations: Annotated[list[AllocationIn], msgspec.Meta(max_length=500)] = []


class BuyerIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    platform_id: _text(64, "The buyer's id on the platform: where storefront messages go.") = ""
    email: _text(254) = ""
    phone: _text(32) = ""
    language: Annotated[
        str,
        msgspec.Meta(
            max_length=10,
            pattern=r"^([A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*)?$",
            description="The buyer's language for messages (en, zh-hans, ms, th, vi, id ...).",
        ),
    ] = ""


class AddressIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166 code, e.g. MY.")]
    province: _text(80) = ""
    city: _text(80) = ""
    district: _text(80) = ""
    street: _text(255) = ""
    postal_code: _text(16) = ""


class LineIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    sku: Annotated[Code, msgspec.Meta(description="A SKU code of the store (PUT /skus/{code} first).")]
    name: _text(200, "The name as sold; empty: the SKU's name.") = ""
    lot: _text(64, "Batch or lot, for quality incidents.") = ""
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    unit_price: Money


class ShipmentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    carrier: Annotated[
        str,
        msgspec.Meta(
            min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
            description="The carrier's code, e.g. jtexpress-my, ninjavan-my, zto.",
        ),
    ]  # fmt: skip
    tracking_number: Annotated[
        str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
    ]
    booked_at: Time | None = None
    label_created_at: Time | None = None


InputStatus = Literal["awaiting_shipment", "shipped", "delivered", "cancelled"]


class OrderIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An order as the platform has it now. Lines replace the stored ones; shipments are added (or their
    booking times updated): a parcel, once known, keeps its tracking history."""

    platform_order_id: Code | None = None
    buyer: BuyerIn
    address: AddressIn
    placed_at: Time
    ship_by: Annotated[Time, msgspec.Meta(description="The platform's dispatch deadline.")]
    live_session: Code | None = None
    amount: Money
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", description="The store's currency.")]
    status: InputStatus = "awaiting_shipment"
    payment_flagged: bool = False
    lines: Annotated[list[LineIn], msgspec.Meta(min_length=1, max_length=LINES_MAX)]
    shipments: Annotated[list[ShipmentIn], msgspec.Meta(max_length=SHIPMENTS_MAX)] = []


class AddressPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    province: _text(80) | msgspec.UnsetType = msgspec.UNSET
    city: _text(80) | msgspec.UnsetType = msgspec.UNSET
    district: _text(80) | msgspec.UnsetType = msgspec.UNSET
    street: _text(255) | msgspec.UnsetType = msgspec.UNSET
    postal_code: _text(16) | msgspec.UnsetType = msgspec.UNSET


class OrderPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A status change (cancelled, shipped, delivered) or an address correction; what is omitted is kept."""

    status: InputStatus | msgspec.UnsetType = msgspec.UNSET
    address: AddressPatch | msgspec.UnsetType = msgspec.UNSET
    phone: _text(32) | msgspec.UnsetType = msgspec.UNSET


class StorefrontDataError(Exception):
    """Refused input: (field, message) pairs naming what is wrong. Nothing was written."""

    def __init__(self, errors: Sequence[tuple[str, str]], *, platform_order_id: str = ""):
        super().__init__("; ".join(f"{f}: {m}" if f else m for f, m in errors))
        self.errors = list(errors)
        self.platform_order_id = platform_order_id


Result = Literal["created", "updated", "unchanged"]


def times_errors(times: Mapping[str, datetime | None]) -> list[tuple[str, str]]:
    """The (field, message) of each given time outside 2000 to 2100 (judged in UTC)."""
    errors = []
    for name, value in times.items():
        if value is None:
            continue
        try:
            inside = TIME_MIN <= value.astimezone(UTC) < TIME_MAX
        except OverflowError:
            inside = False
        if not inside:
            errors.append((name, "A time between the years 2000 and 2100, with its offset."))
    return errors


def utc(value: datetime | None) -> datetime | None:
    """A checked time (times_errors) in UTC: what is stored, whatever offset it came with."""
    return value.astimezone(UTC) if value is not None else None


# --- SKUs, stock, live sessions --------------------------------------------------------------------


def sku_put(*, store: Store, code: str, data: SkuIn) -> tuple[SKU, Result]:
    """Create or update the store's SKU `code`: name, unit price, and the combo recipe (components replace
    the stored ones; each must be a plain SKU of the store). A recipe change wakes the stock rules."""
    components = _components_resolve(store, code=code, parts=data.components)
    price = Decimal(data.unit_price)
    with transaction.atomic():
        sku, result = _locked_get_or_create(
            SKU, {"store": store, "code": code}, name=data.name, unit_price=price
        )
        if (sku.name, sku.unit_price, sku.is_combo) != (data.name, price, bool(components)):
            sku.name, sku.unit_price, sku.is_combo = data.name, price, bool(components)
            sku.save(update_fields=["name", "unit_price", "is_combo"])
            result = result if result == "created" else "updated"
        stored = dict(SKUComponent.objects.filter(combo=sku).values_list("component_id", "quantity"))
        wanted = {component.pk: quantity for component, quantity in components}
        if stored != wanted:
            SKUComponent.objects.filter(combo=sku).delete()
            SKUComponent.objects.bulk_create(
                SKUComponent(combo=sku, component_id=pk, quantity=quantity) for pk, quantity in wanted.items()
            )
            result = result if result == "created" else "updated"
            wake(STOCK_RULES_TASK)
    return sku, result


def _locked_get_or_create(model, key: dict, **fields) -> tuple:
    """The row of `model` with the natural `key`, locked (select_for_update) in the caller's transaction, or a
    new one made with `fields`: (row, "created" or "unchanged"). A concurrent request making the same row
    first wins the insert; this one then locks and returns theirs."""
    row = model.objects.select_for_update().filter(**key).first()
    if row is not None:
        return row, "unchanged"
    try:
        with transaction.atomic():
            return model.objects.create(**key, **fields), "created"
    except IntegrityError:
        return model.objects.select_for_update().get(**key), "unchanged"


def _components_resolve(store: Store, *, code: str, parts: Sequence[ComponentIn]) -> list[tuple[SKU, int]]:
    errors: list[tuple[str, str]] = []
    codes = [part.sku for part in parts]
    known = {sku.code: sku for sku in SKU.objects.filter(store=store, code__in=codes)}
    seen: set[str] = set()
    out = []
    for index, part in enumerate(parts):
        name = f"components[{index}].sku"
        sku = known.get(part.sku)
        if part.sku == code:
            errors.append((name, "A combo cannot contain itself."))
        elif part.sku in seen:
            errors.append((name, f"{part.sku} is listed twice; give one line with the total quantity."))
        elif sku is None:
            errors.append((name, f"No SKU {part.sku} in this store: PUT /skus/{part.sku} first."))
        elif sku.is_combo:
            errors.append((name, f"{part.sku} is a combo itself; list its components instead."))
        else:
            out.append((sku, part.quantity))
        seen.add(part.sku)
    if errors:
        raise StorefrontDataError(errors)
    return out


def stock_put(*, sku: SKU, data: StockIn) -> tuple[StockLevel, Result]:
    """Set the SKU's stock: on hand, restock ETA (null: none known) and, when given, the part allocated to
    live sessions. A combo holds no stock of its own. Any change wakes the stock rules (oversold, out of
    stock)."""
    if sku.is_combo:
        raise StorefrontDataError(
            [("", f"{sku.code} is a combo pack: its stock is its components'. Set theirs.")]
        )
    with transaction.atomic():
        level = StockLevel.objects.select_for_update().filter(sku=sku).first()
        result: Result = "updated"
        if level is None:
            level, result = StockLevel(sku=sku), "created"
        allocated = level.allocated if data.allocated is None else data.allocated
        if result == "updated" and (level.on_hand, level.allocated, level.restock_eta) == (
            data.on_hand,
            allocated,
            data.restock_eta,
        ):
            return level, "unchanged"
        level.on_hand, level.allocated, level.restock_eta = data.on_hand, allocated, data.restock_eta
        level.save()
        wake(STOCK_RULES_TASK)
    return level, result


def live_session_put(*, store: Store, external_id: str, data: LiveSessionIn) -> tuple[LiveSession, Result]:
    """Create or update the store's live session `external_id`; its allocations replace the stored ones.
    A change of allocations wakes the stock rules."""
    errors = times_errors({"started_at": data.started_at, "ended_at": data.ended_at})
    if data.ended_at is not None and data.ended_at < data.started_at:
        errors.append(("ended_at", "A live session ends after it starts."))
    codes = [allocation.sku for allocation in data.allocations]
    known = dict(SKU.objects.filter(store=store, code__in=codes).values_list("code", "pk"))
    wanted: dict[int, int] = {}
    for index, allocation in enumerate(data.allocations):
        pk = known.get(allocation.sku)
        if pk is None:
            errors.append((f"allocations[{index}].sku", f"No SKU {allocation.sku} in this store."))
        elif pk in wanted:
            errors.append((f"allocations[{index}].sku", f"{allocation.sku} is allocated twice."))
        else:
            wanted[pk] = allocation.quantity
    if errors:
        raise StorefrontDataError(errors)
    fields = {
        "title": data.title,
        "host": data.host,
        "started_at": utc(data.started_at),
        "ended_at": utc(data.ended_at),
    }
    with transaction.atomic():
        session, result = _locked_get_or_create(
            LiveSession, {"store": store, "external_id": external_id}, **fields
        )
        if any(getattr(session, name) != value for name, value in fields.items()):
            for name, value in fields.items():
                setattr(session, name, value)
            session.save(update_fields=list(fields))
            result = result if result == "created" else "updated"
        stored = dict(
            LiveSessionAllocation.objects.filter(live_session=session).values_list("sku_id", "quantity")
        )
        if stored != wanted:
            LiveSessionAllocation.objects.filter(live_session=session).exclude(
                sku_id__in=list(wanted)
            ).delete()
            for pk, quantity in wanted.items():
                if stored.get(pk) != quantity:
                    LiveSessionAllocation.objects.update_or_create(
                        live_session=session, sku_id=pk, defaults={"quantity": quantity}
                    )
            result = result if result == "created" else "updated"
            wake(STOCK_RULES_TASK)
    return session, result


# --- orders ------------------------------------------------------------------------------------------

_ORDER_FIELDS = (
    "buyer_name", "buyer_platform_id", "buyer_email", "buyer_phone", "buyer_language", "country", "province",
    "city", "district", "street", "postal_code", "placed_at", "ship_by", "live_session_id", "amount",
    "currency", "status", "payment_flagged",
)  # fmt: skip


@dataclass
class OrderOutcome:
    """What happened to one order of a request: its result, or the errors that refused it."""

    index: int
    platform_order_id: str
    result: Result | Literal["error"] = "error"
    errors: list[tuple[str, str]] = field(default_factory=list)
    order_id: int | None = None


@dataclass
class _Plan:
    """One valid order, resolved against the store's data: what to write for it."""

    outcome: OrderOutcome
    values: dict
    lines: list[tuple]  # (sku_id, sku_code, sku_name, lot, quantity, unit_price)
    shipments: list[ShipmentIn]


def orders_upsert(
    *,
    store: Store,
    orders: Sequence[OrderIn | StorefrontDataError],
    now: datetime | None = None,
    dry_run: bool = False,
    planned_skus: Collection[str] = (),
    source_import_id: int | None = None,
    new_parcels_poll_at: datetime | None = None,
) -> list[OrderOutcome]:
    """Create or update many orders of the store, set-based: a fixed number of statements per call, however
    many orders (reads of the orders, lines, parcels, SKUs and live sessions it names; one INSERT or UPDATE
    per table). One outcome per input, in order: created, updated, unchanged, or the errors that refused it
    (an input may already be a StorefrontDataError, e.g. a body that did not decode). Valid orders are
    written even when others are refused; all of them in one transaction. Idempotent: the same orders
    again are `unchanged` and write nothing.

    Lines replace the stored ones when they differ; shipments are matched by carrier and tracking number
    and added, or their booking times updated (a time left out is kept). An order our review holds stays
    on hold when the storefront still says awaiting shipment. A concurrent request creating the same order
    makes this one retry, and its orders then count as updated or unchanged.

    `dry_run`: the outcomes only, nothing written (an import's preview); `planned_skus` are codes the caller
    will create before the real run, taken as known. `source_import_id`: the Seller Center import that
    creates the new orders (tracking.models.OrderImport); `new_parcels_poll_at`: when the new parcels are first
    polled, if not at once (an import puts its parcels ahead of the queue)."""
    now = now or timezone.now()
    extra = _Extra(
        dry_run=dry_run, planned_skus=frozenset(planned_skus), source_import_id=source_import_id,
        new_parcels_poll_at=new_parcels_poll_at,
    )  # fmt: skip
    for attempt in range(_RETRIES):
        try:
            with transaction.atomic():
                return _orders_upsert(store, orders, now, extra)
        except IntegrityError:
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class _Extra:
    dry_run: bool = False
    planned_skus: frozenset[str] = frozenset()
    source_import_id: int | None = None
    new_parcels_poll_at: datetime | None = None


def _orders_upsert(
    store: Store, orders: Sequence[OrderIn | StorefrontDataError], now: datetime, extra: _Extra
) -> list[OrderOutcome]:
    outcomes: list[OrderOutcome] = []
    valid: list[tuple[OrderOutcome, OrderIn]] = []
    seen: Counter[str] = Counter()
    for index, order in enumerate(orders):
        if isinstance(order, StorefrontDataError):
            outcomes.append(
                OrderOutcome(index=index, platform_order_id=order.platform_order_id, errors=order.errors)
            )
            continue
        outcome = OrderOutcome(index=index, platform_order_id=order.platform_order_id or "")
        outcomes.append(outcome)
        outcome.errors = _order_errors(store, order, now)
        seen[outcome.platform_order_id] += 1
        if seen[outcome.platform_order_id] > 1:
            outcome.errors.append(
                ("platform_order_id", "This order is already in the request; send it once.")
            )
        if not outcome.errors:
            valid.append((outcome, order))
    if not valid:
        return outcomes

    skus = dict(
        SKU.objects.filter(
            store=store, code__in={line.sku for _, o in valid for line in o.lines}
        ).values_list("code", "pk")
    )
    sku_names = dict(SKU.objects.filter(pk__in=skus.values()).values_list("pk", "name"))
    for index, code in enumerate(sorted(extra.planned_skus - skus.keys()), start=1):
        skus[code] = -index  # made by the caller before the real run: known for the dry run
        sku_names[-index] = code
    sessions = dict(
        LiveSession.objects.filter(
            store=store, external_id__in={o.live_session for _, o in valid if o.live_session}
        ).values_list("external_id", "pk")
    )
    ids = [outcome.platform_order_id for outcome, _ in valid]
    existing = {
        order.platform_order_id: order
        for order in Order.objects.filter(store=store, platform_order_id__in=ids)
    }
    stored_lines: dict[int, list[tuple]] = {}
    for row in (
        OrderLine.objects.filter(order__in=list(existing.values()))
        .order_by("order_id", "pk")
        .values_list("order_id", "sku_id", "sku_code", "sku_name", "lot", "quantity", "unit_price")
    ):
        stored_lines.setdefault(row[0], []).append(row[1:])
    numbers = {s.tracking_number for _, o in valid for s in o.shipments}
    parcels = {
        (parcel.carrier, parcel.tracking_number): parcel
        for parcel in Shipment.objects.filter(store=store, tracking_number__in=numbers)
    }

    plans: list[_Plan] = []
    claimed: dict[tuple[str, str], str] = {}  # parcel -> the order of this request that names it
    for outcome, order in valid:
        plan = _plan(store, outcome, order, skus=skus, sku_names=sku_names, sessions=sessions)
        current = existing.get(outcome.platform_order_id)
        for index, shipment in enumerate(plan.shipments):
            key = (shipment.carrier, shipment.tracking_number)
            parcel = parcels.get(key)
            other = claimed.setdefault(key, outcome.platform_order_id)
            if parcel is not None and (current is None or parcel.order_id != current.pk):
                outcome.errors.append(
                    (f"shipments[{index}].tracking_number", f"{shipment.tracking_number} ({shipment.carrier}) "
                     "is a parcel of another order of this store.")
                )  # fmt: skip
            elif other != outcome.platform_order_id:
                outcome.errors.append(
                    (f"shipments[{index}].tracking_number", f"{shipment.tracking_number} is also a parcel of "
                     f"order {other} in this request.")
                )  # fmt: skip
        if not outcome.errors:
            plans.append(plan)

    new_orders: list[_Plan] = []
    changed_orders: list[Order] = []
    lines_replaced: list[_Plan] = []
    new_parcels: list[tuple[int, ShipmentIn]] = []
    changed_parcels: list[Shipment] = []
    for plan in plans:
        current = existing.get(plan.outcome.platform_order_id)
        if current is None:
            new_orders.append(plan)
            plan.outcome.result = "created"
            lines_replaced.append(plan)
            continue
        plan.outcome.order_id = current.pk
        if current.status == OrderStatus.ON_HOLD and plan.values["status"] == OrderStatus.AWAITING_SHIPMENT:
            plan.values["status"] = OrderStatus.ON_HOLD  # our review's hold stands until a reviewer decides
        changed = [name for name, value in plan.values.items() if getattr(current, name) != value]
        lines_differ = stored_lines.get(current.pk, []) != plan.lines
        if changed or lines_differ:
            for name in changed:
                setattr(current, name, plan.values[name])
            current.rules_due_at, current.updated_at = now, now
            changed_orders.append(current)
            plan.outcome.result = "updated"
        else:
            plan.outcome.result = "unchanged"
        if lines_differ:
            lines_replaced.append(plan)
        for shipment in plan.shipments:
            parcel = parcels.get((shipment.carrier, shipment.tracking_number))
            if parcel is None:
                new_parcels.append((current.pk, shipment))
                plan.outcome.result = "updated"
            elif _parcel_times_apply(parcel, shipment, now):
                changed_parcels.append(parcel)
                plan.outcome.result = "updated"

    if extra.dry_run:
        return outcomes
    if new_orders:
        columns = (
            "store",
            "platform_order_id",
            *new_orders[0].values,
            "rules_due_at",
            "created_at",
            "updated_at",
            *(("source_import",) if extra.source_import_id else ()),
        )
        tail = (extra.source_import_id,) if extra.source_import_id else ()
        rows = [
            (store.pk, p.outcome.platform_order_id, *p.values.values(), now, now, now, *tail)
            for p in new_orders
        ]
        by_id = dict(rows_insert(Order, columns, rows, returning=("platform_order_id", "id")))
        for plan in new_orders:
            plan.outcome.order_id = by_id[plan.outcome.platform_order_id]
            new_parcels += [(plan.outcome.order_id, shipment) for shipment in plan.shipments]
    if changed_orders:
        Order.objects.bulk_update(
            changed_orders, [*_ORDER_FIELDS, "rules_due_at", "updated_at"], batch_size=500
        )
        cancelled = [order.pk for order in changed_orders if order.status == OrderStatus.CANCELLED]
        if cancelled:  # their parcels are looked at again: the rules drop a cancelled order's parcels
            Shipment.objects.filter(order_id__in=cancelled).update(next_check_at=now)
            wake(RULES_TASK)
    replaced_existing = [plan.outcome.order_id for plan in lines_replaced if plan.outcome.result != "created"]
    if replaced_existing:
        OrderLine.objects.filter(order_id__in=replaced_existing).delete()
    if lines_replaced:
        rows_insert(
            OrderLine, ("order", "sku", "sku_code", "sku_name", "lot", "quantity", "unit_price"),
            [(plan.outcome.order_id, *line) for plan in lines_replaced for line in plan.lines],
        )  # fmt: skip
    if new_parcels:
        rows_insert(
            Shipment,
            _PARCEL_COLUMNS,
            [_parcel_row(store, order_id, s, now, extra.new_parcels_poll_at) for order_id, s in new_parcels],
        )
    if changed_parcels:
        Shipment.objects.bulk_update(
            changed_parcels, ["booked_at", "label_created_at", "next_check_at"], batch_size=500
        )
    if new_orders or changed_orders:
        wake(ORDER_RULES_TASK)
    if new_parcels or changed_parcels:
        wake(RULES_TASK)
    if new_parcels:
        wake(REGISTER_TASK)
    return outcomes


def _order_errors(store: Store, order: OrderIn, now: datetime) -> list[tuple[str, str]]:
    errors = times_errors({
        "placed_at": order.placed_at, "ship_by": order.ship_by,
        **{f"shipments[{i}].booked_at": s.booked_at for i, s in enumerate(order.shipments)},
        **{f"shipments[{i}].label_created_at": s.label_created_at for i, s in enumerate(order.shipments)},
    })  # fmt: skip
    if errors:
        return errors
    if not order.platform_order_id:
        errors.append(("platform_order_id", "Required: the platform's order id."))
    if order.ship_by < order.placed_at:
        errors.append(("ship_by", "The dispatch deadline cannot be before the order was placed."))
    if order.placed_at > now + FUTURE_SLACK:
        errors.append(
            ("placed_at", "In the future: send the time the buyer placed the order, with its offset.")
        )
    if order.currency != store.currency:
        errors.append(("currency", f"This store sells in {store.currency}, not {order.currency}."))
    if order.buyer.email:
        try:
            validate_email(order.buyer.email)
        except ValidationError:
            errors.append(("buyer.email", "Not an email address."))
    seen: set[tuple[str, str]] = set()
    for index, shipment in enumerate(order.shipments):
        key = (shipment.carrier.lower(), shipment.tracking_number)
        if key in seen:
            errors.append((f"shipments[{index}]", f"{shipment.tracking_number} is listed twice."))
        seen.add(key)
    return errors


def _plan(
    store: Store,
    outcome: OrderOutcome,
    order: OrderIn,
    *,
    skus: dict[str, int],
    sku_names: dict[int, str],
    sessions: dict[str, int],
) -> _Plan:
    session_id = None
    if order.live_session:
        session_id = sessions.get(order.live_session)
        if session_id is None:
            outcome.errors.append(
                (
                    "live_session",
                    f"No live session {order.live_session}: PUT /live-sessions/{order.live_session} first.",
                )
            )
    lines = []
    for index, line in enumerate(order.lines):
        sku_id = skus.get(line.sku)
        if sku_id is None:
            outcome.errors.append(
                (f"lines[{index}].sku", f"No SKU {line.sku} in this store: PUT /skus/{line.sku} first.")
            )
            continue
        lines.append(
            (
                sku_id,
                line.sku,
                line.name or sku_names[sku_id],
                line.lot,
                line.quantity,
                Decimal(line.unit_price),
            )
        )
    buyer, address = order.buyer, order.address
    values = {
        "buyer_name": buyer.name, "buyer_platform_id": buyer.platform_id, "buyer_email": buyer.email,
        "buyer_phone": buyer.phone, "buyer_language": buyer.language.lower(), "country": address.country,
        "province": address.province, "city": address.city, "district": address.district,
        "street": address.street, "postal_code": address.postal_code, "placed_at": utc(order.placed_at),
        "ship_by": utc(order.ship_by), "live_session_id": session_id, "amount": Decimal(order.amount),
        "currency": order.currency, "status": order.status, "payment_flagged": order.payment_flagged,
    }  # fmt: skip
    shipments = [
        msgspec.structs.replace(
            shipment, carrier=shipment.carrier.lower(), booked_at=utc(shipment.booked_at),
            label_created_at=utc(shipment.label_created_at),
        )
        for shipment in order.shipments
    ]  # fmt: skip
    return _Plan(outcome=outcome, values=values, lines=lines, shipments=shipments)


_PARCEL_COLUMNS = (
    "store", "order", "carrier", "tracking_number", "booked_at", "label_created_at", "status", "substatus",
    "next_check_at", "next_poll_at", "poll_failures", "created_at",
)  # fmt: skip


def _parcel_row(
    store: Store, order_id: int, shipment: ShipmentIn, now: datetime, poll_at: datetime | None = None
) -> tuple:
    """A new parcel as the model's defaults make it: pending, due for the rules and for a poll at once (or at
    `poll_at`)."""
    return (
        store.pk, order_id, shipment.carrier, shipment.tracking_number, shipment.booked_at,
        shipment.label_created_at, Tag.PENDING, "Pending_001", now, poll_at or now, 0, now,
    )  # fmt: skip


def _parcel_times_apply(parcel: Shipment, shipment: ShipmentIn, now: datetime) -> bool:
    changed = False
    for name in ("booked_at", "label_created_at"):
        value = getattr(shipment, name)
        if value is not None and getattr(parcel, name) != value:
            setattr(parcel, name, value)
            changed = True
    if changed:
        parcel.next_check_at = now  # the pickup deadline moved: the rules look again
    return changed


def order_patch(*, order: Order, data: OrderPatch, now: datetime | None = None) -> tuple[Order, Result]:
    """Change an order's status (cancelled, shipped, delivered, awaiting shipment) or correct its address or
    the buyer's phone. Locks the order. A change marks the order for the stock and review rules (a
    cancelled order frees its stock). An order our review holds stays held when told awaiting shipment."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        changes: dict[str, object] = {}
        held = locked.status == OrderStatus.ON_HOLD and data.status == OrderStatus.AWAITING_SHIPMENT
        if data.status is not msgspec.UNSET and data.status != locked.status and not held:
            changes["status"] = data.status
        if data.address is not msgspec.UNSET:
            for name in ("province", "city", "district", "street", "postal_code"):
                value = getattr(data.address, name)
                if value is not msgspec.UNSET and value != getattr(locked, name):
                    changes[name] = value
        if data.phone is not msgspec.UNSET and data.phone != locked.buyer_phone:
            changes["buyer_phone"] = data.phone
        if not changes:
            return locked, "unchanged"
        for name, value in changes.items():
            setattr(locked, name, value)
        locked.rules_due_at = now
        locked.save(update_fields=[*changes, "rules_due_at", "updated_at"])
        wake(ORDER_RULES_TASK)
        if changes.get("status") == OrderStatus.CANCELLED:  # its parcels' cases close: nothing is owed
            Shipment.objects.filter(order=locked).update(next_check_at=now)
            wake(RULES_TASK)
    return locked, "updated"


def orders_due_clear(*, claimed: Sequence[tuple[int, datetime]]) -> int:
    """Clear the rules mark of orders the rules have evaluated: each only if it still has the mark that was
    claimed, so a change made meanwhile stays due. `claimed` is (order id, rules_due_at) as read."""
    by_mark: dict[datetime, list[int]] = {}
    for pk, mark in claimed:
        by_mark.setdefault(mark, []).append(pk)
    cleared = 0
    for mark, pks in by_mark.items():
        for start in range(0, len(pks), 10_000):
            chunk = pks[start : start + 10_000]
            cleared += Order.objects.filter(pk__in=chunk, rules_due_at=mark).update(rules_due_at=None)
    return cleared
