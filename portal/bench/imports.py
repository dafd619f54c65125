"""Issue 27's figure: importing a 100,000-row Seller Center export, against the storefront API's bulk upsert.

A TikTok Shop order export (the Seller Center's English columns and its description row, 50,000 orders of
two lines each, month-first 12-hour times in the shop's local time, mostly shipped with one J&T Express
parcel per order) is uploaded and checked (the preview: read, parse, the upsert's dry run), then confirmed
and imported (read again, written a chunk at a time with its resume point, SKUs made, parcels back-filled).
The baseline, in the same run: the same orders as the storefront API's `OrderIn` structs, already decoded,
written with the API's own set-based `orders_upsert` in 1,000-order calls into a store whose SKUs exist.
Both count file rows (order lines). Target: preview + import >= 0.5x the upsert's rows/s. Then the same file
again into the same store: every order unchanged, nothing written.
"""

from __future__ import annotations

import csv
import io
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
from django.test import override_settings
from django.utils import timezone

from portal.bench import BenchContext
from portal.bench.report import Comparison, Measure, Table
from portal.models import Store
from tracking.choices import ImportStatus
from tracking.imports import service
from tracking.models import SKU, Order, OrderImport, OrderLine, Shipment
from tracking.storefront import OrderIn, orders_upsert

ROWS = 100_000
LINES_PER_ORDER = 2
BULK = 1_000  # orders per orders_upsert call, as the API's bulk endpoint takes them
TARGET = 0.5
TZ = "Asia/Kuala_Lumpur"
CARRIER, CARRIER_CODE = "J&T Express", "jtexpress-my"
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"  # TikTok Shop's English export: 11/04/2026 08:05:12 PM
DISPATCH_DAYS = 3  # TikTok Shop's export has no ship-by column: paid + 3 days (formats.TIKTOK_SHOP)

# The TikTok Shop Seller Center's English export columns, in its order (tracking/imports/formats.py).
COLUMNS = [
    "Order ID", "Order Status", "Order Substatus", "Cancelation/Return Type", "Normal or Pre-order", "SKU ID",
    "Seller SKU", "Product Name", "Variation", "Quantity", "Sku Quantity of return", "SKU Unit Original Price",
    "SKU Subtotal Before Discount", "SKU Platform Discount", "SKU Seller Discount", "SKU Subtotal After Discount",
    "Shipping Fee After Discount", "Original Shipping Fee", "Order Amount", "Order Refund Amount",
    "Created Time", "Paid Time", "RTS Time", "Shipped Time", "Delivered Time", "Cancelled Time", "Cancel By",
    "Cancel Reason", "Fulfillment Type", "Warehouse Name", "Tracking ID", "Delivery Option",
    "Shipping Provider Name", "Buyer Message", "Buyer Username", "Recipient", "Phone #", "Zipcode", "Country",
    "Province", "District", "Detail Address", "Additional address information", "Payment Method",
    "Weight(kg)", "Product Category", "Package ID", "Seller Note",
]  # fmt: skip
DESCRIPTION = ["Platform unique order ID.", "Current order status."] + [""] * (len(COLUMNS) - 2)
PRODUCTS = [
    ("RICE-5KG", "Sunwhite Fragrant Rice 5kg", "5kg bag", Decimal("32.90")),
    ("OIL-1L8", "Golden Palm Cooking Oil", "1.8 L bottle", Decimal("18.50")),
    ("OIL-5L", "Golden Palm Cooking Oil", "5 L tin", Decimal("44.00")),
    ("NOODLE-30", "Mee Kari Instant Noodles", "Box of 30", Decimal("27.60")),
    ("SAUCE-SOY", "Kicap Manis Sweet Soy Sauce 640ml", "", Decimal("6.90")),
    ("TEA-100", "BOH Cameron Highlands Tea 100 bags", "", Decimal("14.20")),
    ("GLASS-JAR", "Glass storage jar set", "Set of 3 / clear", Decimal("39.00")),
    ("炒锅-32", "不粘炒锅 32cm", "深灰色", Decimal("89.00")),
]
BUYERS = [
    ("Nur Aisyah binti Ahmad", "aisyah_shop", "Selangor", "Shah Alam", "No. {n}, Jalan Kenari 5, Seksyen 7"),
    ("Tan Wei Ming", "weiming.tan", "Kuala Lumpur", "Cheras", "{n}-1 Jalan Manis 3, Taman Segar"),
    ("Siti Rahmah", "sitirahmah_", "Johor", "Johor Bahru", "{n} Jalan Harmonium 24/3, Taman Desa Tebrau"),
    ("李秀英", "xiuying_li", "Pulau Pinang", "George Town", "{n} Lebuh Chulia"),
    ("Rajesh a/l Kumar", "rajesh_k", "Perak", "Ipoh", "{n} Jalan Sultan Idris Shah"),
    ("Lim Mei Ling", "meiling.lim", "Sabah", "Kota Kinabalu", "Lot {n}, Lorong Api-Api 2, Centre Point"),
]
# Statuses, by share of orders: mostly in transit, a few delivered (the import records their Delivered
# checkpoint), a few still to ship (no parcel yet).
STATUSES = [("Shipped", "shipped", 92), ("Completed", "delivered", 4), ("To ship", "awaiting_shipment", 4)]


@dataclass
class _Order:
    order_id: str
    status: str  # the export's text
    key: str  # the storefront's status
    created: datetime  # naive, the shop's local time
    lines: list[tuple[str, str, str, Decimal, int]]  # code, name, variation, price, quantity
    buyer: tuple[str, str, str, str, str]
    number: int
    tracking: str = ""
    rts: datetime | None = None
    delivered: datetime | None = None

    @property
    def amount(self) -> Decimal:
        return sum((price * qty for _c, _n, _v, price, qty in self.lines), Decimal("0"))


def run(context: BenchContext) -> list[Table]:
    with (
        tempfile.TemporaryDirectory(prefix="afterdesk-bench-imports-") as media,
        override_settings(MEDIA_ROOT=media),
    ):
        return [_imports(context)]


def _store(code: str) -> Store:
    return Store.objects.create(code=code, name=f"Bench {code}", platform="tiktok_shop", region="MY",
                                currency="MYR", timezone=TZ)  # fmt: skip


# --- the export ----------------------------------------------------------------------------------------


def _export_orders(n: int, *, rng: random.Random, now: datetime) -> list[_Order]:
    """`n` orders placed over the last 30 days (local time, to the second), two lines each."""
    weights = [share for _t, _k, share in STATUSES]
    start = now.astimezone(ZoneInfo(TZ)).replace(tzinfo=None, microsecond=0) - timedelta(days=30)
    step = timedelta(days=25) / max(n, 1)
    out = []
    for i in range(n):
        created = start + step * i
        created = created.replace(microsecond=0)
        status, key, _share = rng.choices(STATUSES, weights)[0]
        lines = [(c, name, var, price, rng.randint(1, 3)) for c, name, var, price in rng.sample(PRODUCTS, 2)]
        order = _Order(f"57{7700000000000000 + i * 7919:016d}", status, key, created, lines,
                       rng.choice(BUYERS), number=i)  # fmt: skip
        if key != "awaiting_shipment":
            order.tracking = f"6{60000000000 + i * 13:011d}MY"
            order.rts = created + timedelta(hours=rng.randint(2, 30), minutes=rng.randint(0, 59))
            if key == "delivered":
                order.delivered = order.rts + timedelta(days=rng.randint(2, 5))
        out.append(order)
    return out


def _local(value: datetime | None) -> str:
    return value.strftime(TIME_FORMAT) if value else ""


def _export_csv(orders: list[_Order]) -> bytes:
    """The orders as the Seller Center exports them: UTF-8 with BOM, CRLF, one row per line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerow(DESCRIPTION)
    index = {name: i for i, name in enumerate(COLUMNS)}
    for order in orders:
        name, handle, province, district, street = order.buyer
        for number, (code, product, variation, price, qty) in enumerate(order.lines):
            row = [""] * len(COLUMNS)
            values = {
                "Order ID": order.order_id, "Order Status": order.status, "SKU ID": f"1729{number}",
                "Seller SKU": code, "Product Name": product, "Variation": variation, "Quantity": str(qty),
                "SKU Unit Original Price": f"RM {price:.2f}", "SKU Subtotal Before Discount": f"RM {price * qty:.2f}",
                "SKU Subtotal After Discount": f"RM {price * qty:.2f}", "Order Amount": f"RM {order.amount:.2f}",
                "Created Time": _local(order.created), "Paid Time": _local(order.created + timedelta(minutes=2)),
                "RTS Time": _local(order.rts), "Shipped Time": _local(order.rts),
                "Delivered Time": _local(order.delivered), "Fulfillment Type": "Fulfillment by seller",
                "Tracking ID": order.tracking, "Delivery Option": "Standard shipping",
                "Shipping Provider Name": CARRIER if order.tracking else "",
                "Buyer Username": f"{handle}{order.number}", "Recipient": name, "Phone #": "(+60)1*******89",
                "Zipcode": "40000", "Country": "Malaysia", "Province": province, "District": district,
                "Detail Address": street.format(n=order.number % 997 + 1), "Payment Method": "Online banking",
                "Package ID": f"PKG{order.tracking}" if order.tracking else "",
            }  # fmt: skip
            for column, value in values.items():
                row[index[column]] = value
            writer.writerow(row)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _storefront_orders(orders: list[_Order]) -> list[dict]:
    """The same orders as a storefront sends them to the API (what the import makes of the file)."""
    tz = ZoneInfo(TZ)

    def aware(value: datetime) -> str:
        return value.replace(tzinfo=tz).isoformat()

    out = []
    for order in orders:
        name, handle, province, district, street = order.buyer
        paid = order.created + timedelta(minutes=2)
        out.append({
            "platform_order_id": order.order_id,
            "buyer": {"name": name, "platform_id": f"{handle}{order.number}", "phone": "(+60)1*******89"},
            "address": {"country": "MY", "province": province, "district": district,
                        "street": street.format(n=order.number % 997 + 1), "postal_code": "40000"},
            "placed_at": aware(order.created), "ship_by": aware(paid + timedelta(days=DISPATCH_DAYS)),
            "amount": f"{order.amount:.2f}", "currency": "MYR", "status": order.key,
            "lines": [{"sku": code, "name": " ".join(p for p in (product, variation) if p), "quantity": qty,
                       "unit_price": f"{price:.2f}"} for code, product, variation, price, qty in order.lines],
            "shipments": [{"carrier": CARRIER_CODE, "tracking_number": order.tracking,
                           "booked_at": aware(order.rts) if order.rts else None}] if order.tracking else [],
        })  # fmt: skip
    return out


# --- the measurements ----------------------------------------------------------------------------------


def _written(store: Store) -> tuple[int, int, int]:
    return (
        Order.objects.filter(store=store).count(),
        OrderLine.objects.filter(order__store=store).count(),
        Shipment.objects.filter(store=store).count(),
    )


@dataclass
class _Baseline:
    created: float  # seconds: every order new
    unchanged: float  # seconds: the same orders again, every one unchanged
    decode: float  # seconds to decode the dicts into OrderIn beforehand (not counted)
    written: tuple[int, int, int]


def _baseline(orders: list[_Order], *, now: datetime) -> _Baseline:
    """orders_upsert of the decoded orders, 1,000 at a time, into a store whose SKUs exist; then again."""
    store = _store("bench-imports-api")
    SKU.objects.bulk_create(
        SKU(store=store, code=code, name=f"{product} {variation}".strip(), unit_price=price)
        for code, product, variation, price in PRODUCTS
    )
    dicts = _storefront_orders(orders)
    t0 = time.perf_counter()
    structs = [msgspec.convert(data, OrderIn) for data in dicts]
    decode = time.perf_counter() - t0
    seconds = []
    for expected in ("created", "unchanged"):
        results: Counter[str] = Counter()
        t0 = time.perf_counter()
        for start in range(0, len(structs), BULK):
            results.update(
                o.result for o in orders_upsert(store=store, orders=structs[start : start + BULK], now=now)
            )
        seconds.append(time.perf_counter() - t0)
        if results != {expected: len(orders)}:
            raise RuntimeError(f"the baseline upsert's orders were not all {expected}: {dict(results)}")
    return _Baseline(seconds[0], seconds[1], decode, _written(store))


@dataclass
class _Run:
    preview: float
    imported: float
    imp: OrderImport

    @property
    def total(self) -> float:
        return self.preview + self.imported


def _import(store: Store, data: bytes, *, now: datetime) -> _Run:
    t0 = time.perf_counter()
    imp = service.import_upload(store=store, actor=None, file_name="tiktok-orders.csv", data=data, now=now)
    if imp.status == ImportStatus.CHECKING:  # too large to check in the upload request: the worker's step
        imp = service.import_check(imp, now=now)
    preview = time.perf_counter() - t0
    if imp.status != ImportStatus.READY:
        raise RuntimeError(f"the export was not checked: {imp.status} {imp.error}")
    t0 = time.perf_counter()
    imp = service.import_confirm(imp, actor=None, now=now)
    service.import_run(imp, now=now)
    imported = time.perf_counter() - t0
    imp.refresh_from_db()
    if imp.status != ImportStatus.DONE:
        raise RuntimeError(f"the import did not finish: {imp.status} {imp.error}")
    return _Run(preview, imported, imp)


def _imports(context: BenchContext) -> Table:
    order_count = max(1, context.size(ROWS, minimum=200) // LINES_PER_ORDER)
    rows = order_count * LINES_PER_ORDER
    now = timezone.now()
    orders = _export_orders(order_count, rng=random.Random(27), now=now)
    data = _export_csv(orders)
    parcels = sum(1 for o in orders if o.tracking)
    size = f"{len(data) / 2**20:.1f} MB"
    context.log(f"  export: {rows:,} rows, {order_count:,} orders, {parcels:,} parcels, {size}")

    base = _baseline(orders, now=now)
    context.log(
        f"  orders_upsert: {order_count:,} orders in {base.created:.1f} s ({rows / base.created:,.0f} rows/s, "
        f"{order_count / base.created:,.0f} orders/s); again, unchanged: {base.unchanged:.1f} s "
        f"({rows / base.unchanged:,.0f} rows/s); decoding them beforehand: {base.decode:.1f} s"
    )

    store = _store("bench-imports")
    first = _import(store, data, now=now)
    preview = first.imp.preview
    expected = {"rows": rows, "orders": order_count, "new": order_count, "rows_refused": 0}
    if {key: preview.get(key) for key in expected} != expected:
        raise RuntimeError(f"unexpected preview: {preview}")
    if first.imp.created != order_count or first.imp.rows_refused:
        raise RuntimeError(
            f"the import created {first.imp.created:,} orders of {order_count:,}: {first.imp.error}"
        )
    if _written(store) != base.written:
        raise RuntimeError(
            f"the import wrote {_written(store)}, the baseline {base.written} (orders, lines, parcels)"
        )
    context.log(
        f"  import: preview {first.preview:.1f} s + import {first.imported:.1f} s = {first.total:.1f} s "
        f"({rows / first.total:,.0f} rows/s)"
    )

    again = _import(store, data, now=now)
    if again.imp.preview.get("unchanged") != order_count or again.imp.unchanged != order_count:
        raise RuntimeError(f"the re-import changed orders: {again.imp.preview}")
    context.log(
        f"  re-import: preview {again.preview:.1f} s + import {again.imported:.1f} s = {again.total:.1f} s "
        f"({rows / again.total:,.0f} rows/s)"
    )

    table = Table(title=f"Seller Center import: a {rows:,}-row TikTok Shop export ({order_count:,} orders)")
    api = Measure(
        "orders_upsert of the same orders", rows / base.created, "rows/s",
        f"{BULK:,} per call, {order_count / base.created:,.0f} orders/s",
    )  # fmt: skip
    api_again = Measure("orders_upsert again", rows / base.unchanged, "rows/s", "all unchanged")
    table.references += [
        Measure("preview (upload + check)", rows / first.preview, "rows/s", f"{first.preview:.1f} s"),
        Measure("import (confirm + run)", rows / first.imported, "rows/s", f"{first.imported:.1f} s"),
    ]
    table.comparisons += [
        Comparison(
            Measure("import, preview + import", rows / first.total, "rows/s", f"{first.total:.1f} s"), api,
            target=TARGET,
        ),
    ]  # fmt: skip
    table.references += [
        Measure("re-import (all unchanged)", rows / again.total, "rows/s",
                f"{again.preview:.1f} + {again.imported:.1f} s, vs {api_again.value:,.0f} rows/s upserted again"),
    ]  # fmt: skip
    table.notes.append(
        f"{order_count:,} orders of {LINES_PER_ORDER} lines, {parcels:,} J&T Express parcels, {size} of CSV; both "
        "sides count file rows (order lines). The baseline's orders are already decoded OrderIn structs "
        f"(decoding took {base.decode:.1f} s, not counted) and its SKUs exist; the import reads and parses the file "
        "once (the check keeps its reading for the run), makes the SKUs and back-fills the parcels."
    )
    table.notes.append(
        f"Preview: {preview['new']:,} new, {preview['parcels']:,} parcels, {preview['in_flight']:,} in flight; "
        f"import chunks of {service.CHUNK} orders. Re-import: {again.imp.unchanged:,} unchanged, "
        f"{again.imp.created} created, {again.imp.updated} updated."
    )
    return table
