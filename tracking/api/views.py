"""The storefront's writes and reads of SKUs, stock, live sessions and orders. Thin: decode the body into the
service's input struct, call the service, answer with the object as stored."""

from __future__ import annotations

import msgspec
from django.http import HttpResponse
from django.utils.module_loading import import_string
from rest_framework.request import Request

from portal.api.bodies import body, field_path, json_response
from portal.api.problems import validation_error
from portal.api.schema import IDEMPOTENCY_PARAMETER, POST, WRITE, endpoint, path_param
from portal.api.views import StoreAPIView
from tracking.api.structs import (
    AddressOut,
    AllocationOut,
    BulkOut,
    BulkResultOut,
    BuyerOut,
    CaseRef,
    CheckpointOut,
    ComponentOut,
    FieldErrorOut,
    LineOut,
    LiveSessionOut,
    OrderOut,
    OrdersBulkIn,
    RawBulkIn,
    ShipmentOut,
    SkuOut,
    StockOut,
)
from tracking.models import SKU, LiveSession, Order
from tracking.selectors import (
    live_session_allocations,
    live_session_get_for_store,
    order_get_for_store,
    order_parcels,
    sku_components,
    sku_get_for_store,
)
from tracking.storefront import (
    LiveSessionIn,
    OrderIn,
    OrderPatch,
    SkuIn,
    StockIn,
    StorefrontDataError,
    live_session_put,
    order_patch,
    orders_upsert,
    sku_put,
    stock_put,
)

# An order's open cases come from `cases`, which tracking never imports: by dotted path, like the tasks.
OPEN_CASES_FOR_ORDERS = "cases.selectors.open_cases_for_orders"
KEY_MAX = 64

CODE = path_param("code", "The SKU's code in the store.")
EXTERNAL_ID = path_param("external_id", "The storefront's id of the live session.")
ORDER_ID = path_param("platform_order_id", "The platform's order id.")

ORDER_EXAMPLE = {
    "buyer": {"name": "Nur Aisyah", "platform_id": "tt-7700123", "phone": "+60123456789", "language": "ms"},
    "address": {"country": "MY", "province": "Selangor", "city": "Petaling Jaya", "street": "12 Jalan SS2/55",
                "postal_code": "47300"},
    "placed_at": "2026-11-11T20:05:00+08:00",
    "ship_by": "2026-11-13T20:05:00+08:00",
    "live_session": "live-1111",
    "amount": "119.80",
    "currency": "MYR",
    "lines": [{"sku": "GLOW-SERUM-30", "quantity": 2, "unit_price": "59.90", "lot": "L2411"}],
    "shipments": [{"carrier": "jtexpress-my", "tracking_number": "630012345678",
                   "booked_at": "2026-11-12T09:00:00+08:00"}],
}  # fmt: skip


def _key(value: str, name: str) -> str:
    """A natural key from the path: what the body's codes allow (1 to 64 characters, no edge spaces)."""
    if not value or len(value) > KEY_MAX or value != value.strip():
        raise validation_error([(name, f"1 to {KEY_MAX} characters, without leading or trailing spaces.")])
    return value


def _refused(exc: StorefrontDataError):
    return validation_error(exc.errors)


def _status(result: str) -> int:
    return 201 if result == "created" else 200


# --- SKUs and stock --------------------------------------------------------------------------------


def _sku_out(sku: SKU) -> SkuOut:
    level = getattr(sku, "stock", None)
    stock = None
    if level is not None:
        stock = StockOut(
            on_hand=level.on_hand, allocated=level.allocated, available=level.available,
            restock_eta=level.restock_eta, updated_at=level.updated_at,
        )  # fmt: skip
    return SkuOut(
        code=sku.code, name=sku.name, unit_price=f"{sku.unit_price:.2f}", is_combo=sku.is_combo,
        components=[ComponentOut(sku=code, quantity=quantity) for code, quantity in sku_components(sku)],
        stock=stock,
    )  # fmt: skip


class SkuView(StoreAPIView):
    @endpoint(
        summary="Read a SKU",
        operation_id="sku_get",
        tags=["catalogue"],
        parameters=[CODE],
        responses={200: (SkuOut, "The SKU, with its stock.")},
        errors=(400, 404, 401, 429),
    )
    def get(self, request: Request, code: str) -> HttpResponse:
        return json_response(_sku_out(sku_get_for_store(self.store, _key(code, "code"))))

    @endpoint(
        summary="Create or update a SKU",
        operation_id="sku_put",
        description="Idempotent by the code. With `components` the SKU is a combo pack: its stock is its "
        "components' (each a plain SKU of the store); the list replaces the stored recipe.",
        tags=["catalogue"],
        parameters=[CODE],
        request=SkuIn,
        request_example={"name": "Glow Serum 30 ml", "unit_price": "59.90"},
        responses={201: (SkuOut, "Created."), 200: (SkuOut, "Updated, or unchanged.")},
        errors=WRITE,
    )
    def put(self, request: Request, code: str) -> HttpResponse:
        data = body(request, SkuIn)
        try:
            sku, result = sku_put(store=self.store, code=_key(code, "code"), data=data)
        except StorefrontDataError as exc:
            raise _refused(exc) from None
        return json_response(_sku_out(sku_get_for_store(self.store, sku.code)), status=_status(result))


class StockView(StoreAPIView):
    @endpoint(
        summary="Set a SKU's stock",
        operation_id="sku_stock_put",
        description="On hand, the restock ETA (null: none known) and, when given, the part allocated to live "
        "sessions. Wakes the oversold and out-of-stock rules.",
        tags=["catalogue"],
        parameters=[CODE],
        request=StockIn,
        request_example={"on_hand": 120, "restock_eta": "2026-11-20"},
        responses={
            201: (StockOut, "The SKU's first stock figures."),
            200: (StockOut, "Updated, or unchanged."),
        },
        errors=(*WRITE, 404),
    )
    def put(self, request: Request, code: str) -> HttpResponse:
        data = body(request, StockIn)
        sku = sku_get_for_store(self.store, _key(code, "code"))
        try:
            level, result = stock_put(sku=sku, data=data)
        except StorefrontDataError as exc:
            raise _refused(exc) from None
        level.refresh_from_db()
        out = StockOut(
            on_hand=level.on_hand, allocated=level.allocated, available=level.available,
            restock_eta=level.restock_eta, updated_at=level.updated_at,
        )  # fmt: skip
        return json_response(out, status=_status(result))


# --- live sessions -----------------------------------------------------------------------------------


def _session_out(session: LiveSession) -> LiveSessionOut:
    return LiveSessionOut(
        external_id=session.external_id, title=session.title, host=session.host,
        started_at=session.started_at, ended_at=session.ended_at,
        allocations=[AllocationOut(sku=code, quantity=q) for code, q in live_session_allocations(session)],
    )  # fmt: skip


class LiveSessionView(StoreAPIView):
    @endpoint(
        summary="Read a live session",
        operation_id="live_session_get",
        tags=["catalogue"],
        parameters=[EXTERNAL_ID],
        responses={200: (LiveSessionOut, "The live session and its allocations.")},
        errors=(400, 404, 401, 429),
    )
    def get(self, request: Request, external_id: str) -> HttpResponse:
        return json_response(
            _session_out(live_session_get_for_store(self.store, _key(external_id, "external_id")))
        )

    @endpoint(
        summary="Create or update a live session",
        operation_id="live_session_put",
        description="Idempotent by the storefront's id. `allocations` (the stock set aside for the live, per "
        "SKU) replace the stored ones; orders beyond them become oversold cases, latest orders first.",
        tags=["catalogue"],
        parameters=[EXTERNAL_ID],
        request=LiveSessionIn,
        request_example={
            "title": "11.11 Mega Glow Live",
            "host": "Mei",
            "started_at": "2026-11-11T20:00:00+08:00",
            "allocations": [{"sku": "GLOW-SERUM-30", "quantity": 100}],
        },
        responses={201: (LiveSessionOut, "Created."), 200: (LiveSessionOut, "Updated, or unchanged.")},
        errors=WRITE,
    )
    def put(self, request: Request, external_id: str) -> HttpResponse:
        data = body(request, LiveSessionIn)
        try:
            session, result = live_session_put(
                store=self.store, external_id=_key(external_id, "external_id"), data=data
            )
        except StorefrontDataError as exc:
            raise _refused(exc) from None
        return json_response(_session_out(session), status=_status(result))


# --- orders ------------------------------------------------------------------------------------------


def _order_out(order: Order) -> OrderOut:
    open_cases = import_string(OPEN_CASES_FOR_ORDERS)([order.pk]).get(order.pk, [])
    shipments = []
    for parcel, latest in order_parcels(order):
        checkpoint = None
        if latest is not None:
            checkpoint = CheckpointOut(
                at=latest.checkpoint_at, tag=latest.tag, subtag=latest.subtag, text=latest.raw_text,
                location=latest.location,
            )  # fmt: skip
        shipments.append(
            ShipmentOut(
                carrier=parcel.carrier, tracking_number=parcel.tracking_number, status=parcel.status,
                substatus=parcel.substatus, booked_at=parcel.booked_at, label_created_at=parcel.label_created_at,
                accepted_at=parcel.accepted_at, last_event_at=parcel.last_event_at,
                delivered_at=parcel.delivered_at, expected_delivery=parcel.expected_delivery,
                last_checkpoint=checkpoint,
            )
        )  # fmt: skip
    return OrderOut(
        platform_order_id=order.platform_order_id,
        status=order.status,
        buyer=BuyerOut(
            name=order.buyer_name, platform_id=order.buyer_platform_id, email=order.buyer_email,
            phone=order.buyer_phone, language=order.buyer_language,
        ),
        address=AddressOut(
            country=order.country, province=order.province, city=order.city, district=order.district,
            street=order.street, postal_code=order.postal_code,
        ),
        placed_at=order.placed_at,
        ship_by=order.ship_by,
        live_session=order.live_session.external_id or None if order.live_session_id else None,
        amount=f"{order.amount:.2f}",
        currency=order.currency,
        payment_flagged=order.payment_flagged,
        lines=[
            LineOut(sku=line.sku_code, name=line.sku_name, lot=line.lot, quantity=line.quantity,
                    unit_price=f"{line.unit_price:.2f}")
            for line in order.lines.order_by("pk")
        ],
        shipments=shipments,
        open_cases=[CaseRef(**case) for case in open_cases],
        created_at=order.created_at,
        updated_at=order.updated_at,
    )  # fmt: skip


class OrderView(StoreAPIView):
    @endpoint(
        summary="Read an order",
        operation_id="order_get",
        description="The order, its parcels (status, substatus and latest checkpoint) and its open cases.",
        tags=["orders"],
        parameters=[ORDER_ID],
        responses={200: (OrderOut, "The order.")},
        errors=(400, 404, 401, 429),
    )
    def get(self, request: Request, platform_order_id: str) -> HttpResponse:
        return json_response(
            _order_out(order_get_for_store(self.store, _key(platform_order_id, "platform_order_id")))
        )

    @endpoint(
        summary="Create or update an order",
        operation_id="order_put",
        description="Idempotent by the platform order id: send the order as the platform has it now, as "
        "often as you like. Lines replace the stored ones; shipments are added, or their booking times "
        "updated (a parcel, once known, keeps its tracking history). A line naming an unknown SKU refuses the "
        "whole order. A new or changed order is evaluated by the stock and review rules within seconds; a new "
        "parcel is registered with the store's tracking providers and watched by the parcel rules.",
        tags=["orders"],
        parameters=[ORDER_ID],
        request=OrderIn,
        request_example=ORDER_EXAMPLE,
        responses={201: (OrderOut, "Created."), 200: (OrderOut, "Updated, or unchanged.")},
        errors=WRITE,
    )
    def put(self, request: Request, platform_order_id: str) -> HttpResponse:
        order_id = _key(platform_order_id, "platform_order_id")
        data = body(request, OrderIn)
        if data.platform_order_id not in (None, order_id):
            raise validation_error(
                [
                    (
                        "platform_order_id",
                        f"The body names order {data.platform_order_id}, the path {order_id}.",
                    )
                ]
            )
        data = msgspec.structs.replace(data, platform_order_id=order_id)
        (outcome,) = orders_upsert(store=self.store, orders=[data])
        if outcome.errors:
            raise validation_error(outcome.errors)
        order = order_get_for_store(self.store, order_id)
        return json_response(_order_out(order), status=_status(outcome.result))

    @endpoint(
        summary="Change an order's status or correct its address",
        operation_id="order_patch",
        description="What is omitted is kept. Cancelling an order frees its stock for the orders after it. An "
        "order held by Afterdesk's review stays held when told `awaiting_shipment`.",
        tags=["orders"],
        parameters=[ORDER_ID],
        request=OrderPatch,
        request_example={"status": "cancelled"},
        responses={200: (OrderOut, "The order as it is now.")},
        errors=(*WRITE, 404),
    )
    def patch(self, request: Request, platform_order_id: str) -> HttpResponse:
        data = body(request, OrderPatch)
        order = order_get_for_store(self.store, _key(platform_order_id, "platform_order_id"))
        order, _ = order_patch(order=order, data=data)
        return json_response(_order_out(order_get_for_store(self.store, order.platform_order_id)))


class OrdersBulkView(StoreAPIView):
    @endpoint(
        summary="Create or update up to 1,000 orders",
        operation_id="orders_bulk",
        description="A livestream's burst in one request. Each order as PUT /orders/{platform_order_id} takes "
        "it, with its `platform_order_id`. One result per order, in order: `created`, `updated`, "
        "`unchanged`, or `error` with the fields that refused it; valid orders are written even when others "
        "are refused.",
        tags=["orders"],
        request=OrdersBulkIn,
        request_example={"orders": [{"platform_order_id": "580001234567", **ORDER_EXAMPLE}]},
        responses={200: (BulkOut, "One result per order.")},
        parameters=[IDEMPOTENCY_PARAMETER],
        errors=POST,
    )
    def post(self, request: Request) -> HttpResponse:
        envelope = body(request, RawBulkIn)
        orders = [_order_decode(raw) for raw in envelope.orders]
        outcomes = orders_upsert(store=self.store, orders=orders)
        results = [
            BulkResultOut(
                index=o.index, platform_order_id=o.platform_order_id, result=o.result,
                errors=[FieldErrorOut(field=f, detail=d) for f, d in o.errors],
            )
            for o in outcomes
        ]  # fmt: skip
        counts = {
            name: sum(1 for o in outcomes if o.result == name) for name in ("created", "updated", "unchanged")
        }
        return json_response(BulkOut(**counts, refused=sum(1 for o in outcomes if o.errors), results=results))


_ORDER = msgspec.json.Decoder(OrderIn)


def _order_decode(raw: msgspec.Raw) -> OrderIn | StorefrontDataError:
    """One order of a bulk, or why it is refused, naming the field (its platform_order_id kept when
    readable, so the result can say which order it was)."""
    try:
        return _ORDER.decode(raw)
    except msgspec.ValidationError as exc:
        errors = [field_path(exc)]
    try:
        order_id = msgspec.json.decode(raw).get("platform_order_id")
    except (msgspec.DecodeError, AttributeError):
        order_id = None
    return StorefrontDataError(errors, platform_order_id=order_id if isinstance(order_id, str) else "")
