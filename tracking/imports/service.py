"""Importing a Seller Center order export: upload, check (the preview), name the columns when the layout is
unknown, confirm, import in the worker, summarise.

The file is read into orders (one per order id, its rows as lines, its tracking numbers as parcels) and
each order goes through the storefront's own bulk upsert (tracking.storefront.orders_upsert), so an import
and the API write orders the same way: the preview is that upsert's dry run, and importing the same file
twice changes nothing. The import commits chunk by chunk with its resume point (`orders_done`), so a worker
that dies mid-file is followed by one that carries on from the last committed chunk. An order is imported
whole or not at all: a bad row refuses its order, never part of it.

Nothing the file does not say is overwritten: an order already known keeps its live session, email,
language, payment flag and lots.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache

import msgspec
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import Role
from portal.db import skip_locked
from portal.models import Store
from portal.selectors import store_ids_with_roles, user_has_role
from portal.tasks import wake
from tracking.carriers import carrier_code_for
from tracking.choices import ImportStatus, Tag
from tracking.imports import formats
from tracking.imports.files import FileRefused, Table, read_table
from tracking.imports.formats import CUSTOM, FIELDS, ExportFormat
from tracking.imports.values import (
    CellError,
    clean,
    day_first_for,
    excel_mangled,
    parse_country,
    parse_money,
    parse_quantity,
    parse_time,
)
from tracking.ingest import SYNC_TASK
from tracking.models import SKU, ImportMapping, ImportRefusal, LiveSession, Order, OrderImport, Shipment
from tracking.services import EventData, events_ingest_many
from tracking.storefront import OrderIn, orders_upsert
from tracking.tasks import REGISTER_TASK, RULES_TASK

log = logging.getLogger(__name__)

IMPORT_TASK = "tracking.tasks.run_imports"
CHUNK = 1000  # orders per committed chunk (the API's bulk size): the resume point moves this far at a time
INLINE_CHECK_BYTES = 2 * 1024 * 1024  # smaller files are checked in the upload request, larger in the worker
LEASE = timedelta(minutes=3)
SOURCE = "seller_center"  # the source of the Delivered checkpoints an export's delivery times become
TIME_FIELDS = ("created_at", "paid_at", "ship_by", "rts_at", "shipped_at", "delivered_at")


class ImportError_(Exception):
    """An action on an import that cannot be taken now (wrong state, bad mapping): nothing changed."""


# --- reading -------------------------------------------------------------------------------------------


@dataclass
class Refusal:
    row: int
    order_id: str
    reason: str
    cells: list[str]
    sibling: bool = False  # refused only because another row of its order was


@dataclass
class PlannedOrder:
    order_id: str
    rows: list[int]
    data: OrderIn
    skus: dict[str, tuple[str, Decimal]]  # code -> (name, unit price): made if the store lacks them
    cells: list[list[str]]  # the rows as read, for the refused-rows CSV should the write refuse the order
    delivered_at: datetime | None = None

    def refusals(self, why: str) -> list[Refusal]:
        return [
            Refusal(row, self.order_id, why, cells) for row, cells in zip(self.rows, self.cells, strict=True)
        ]


@dataclass
class Reading:
    orders: list[PlannedOrder] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    rows: int = 0
    carriers_known: Counter[str] = field(default_factory=Counter)
    carriers_unknown: Counter[str] = field(default_factory=Counter)
    countries: Counter[str] = field(default_factory=Counter)


def _format_of(key: str) -> ExportFormat | None:
    return formats.FORMATS.get(key)


def read_orders(
    table: Table, *, store: Store, columns: Mapping[str, int], export: ExportFormat | None, now: datetime
) -> Reading:
    """The file's orders as the storefront's OrderIn, with the rows refused and why."""
    reading = Reading(rows=len(table.rows))
    statuses = export.statuses if export else formats.CUSTOM_STATUSES
    markers = {m.casefold() for m in (export.description_markers if export else ())}
    tz = store.tzinfo

    def cell(cells: list[str], name: str) -> str:
        index = columns.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    day_first = {
        name: day_first_for(
            (cell(cells, name) for _n, cells in table.rows), export.day_first if export else True
        )
        for name in TIME_FIELDS
        if name in columns
    }
    groups: dict[str, list[tuple[int, list[str]]]] = {}
    seen_rows: dict[tuple[str, ...], int] = {}
    for number, cells in table.rows:
        order_id = clean(cell(cells, "order_id"))
        if order_id.casefold() in markers:
            reading.rows -= 1
            continue  # the export's own description row
        key = tuple(cells)
        if key in seen_rows:
            reading.refusals.append(
                Refusal(number, order_id, _("The same as row %(row)s: counted once.") % {"row": seen_rows[key]},
                        cells)
            )  # fmt: skip
            continue
        seen_rows[key] = number
        if not order_id:
            reading.refusals.append(Refusal(number, "", _("No order ID in this row."), cells))
            continue
        if excel_mangled(order_id):
            reading.refusals.append(Refusal(number, order_id, _(
                "Excel rounded this order ID into %(value)s: the digits are lost. Export again and open the "
                "file without letting Excel convert numbers."
            ) % {"value": order_id}, cells))  # fmt: skip
            continue
        groups.setdefault(order_id, []).append((number, cells))

    for order_id, rows in groups.items():
        try:
            planned = _order_plan(
                order_id, rows, store=store, cell=cell, statuses=statuses, export=export, tz=tz,
                day_first=day_first, reading=reading, now=now,
            )  # fmt: skip
        except _RowError as exc:
            _refuse_order(reading, order_id, rows, exc.row, exc.message)
            continue
        if planned is not None:
            reading.orders.append(planned)
    return reading


# A file repeats the same few times, amounts and carriers thousands of times: each is parsed once per process.
@lru_cache(maxsize=100_000)
def _time(text: str, tz, day_first: bool) -> datetime | None:
    return parse_time(text, tz=tz, day_first=day_first)


@lru_cache(maxsize=20_000)
def _money(text: str, currency: str) -> Decimal | None:
    return parse_money(text, currency=currency)


@lru_cache(maxsize=2_000)
def _carrier(text: str, region: str) -> str | None:
    return carrier_code_for(text, region=region)


class _RowError(Exception):
    def __init__(self, row: int, message: str):
        super().__init__(message)
        self.row, self.message = row, message


def _refuse_order(reading: Reading, order_id: str, rows: Sequence[tuple[int, list[str]]], bad: int, why: str):
    for number, cells in rows:
        reason = why if number == bad else _(
            "Row %(row)s of this order was refused, so the order is not imported: %(why)s"
        ) % {"row": bad, "why": why}  # fmt: skip
        reading.refusals.append(Refusal(number, order_id, reason, cells, sibling=number != bad))


def _label(name: str) -> str:
    return str(FIELDS.get(name, name))


def _order_plan(
    order_id, rows, *, store, cell, statuses, export, tz, day_first, reading, now
) -> PlannedOrder | None:
    first_row, first = rows[0]

    def when(name: str, number: int, cells: list[str]) -> datetime | None:
        try:
            return _time(cell(cells, name), tz, day_first.get(name, True))
        except CellError as exc:
            raise _RowError(number, f"{_label(name)}: {exc}") from exc

    status_text = cell(first, "status")
    status = statuses.get(formats.status_key(status_text)) if status_text else "awaiting_shipment"
    if status is None:
        raise _RowError(first_row, _("Unknown order status %(value)s.") % {"value": status_text[:60]})
    if status == "unpaid":
        for number, cells in rows:
            reading.refusals.append(
                Refusal(number, order_id, _("Not paid yet: nothing to ship, not imported."), cells)
            )
        return None
    created = when("created_at", first_row, first)
    if created is None:
        raise _RowError(first_row, _("%(field)s is empty.") % {"field": _label("created_at")})
    paid = when("paid_at", first_row, first)
    ship_by = when("ship_by", first_row, first)
    if ship_by is None:
        ship_by = (paid or created) + timedelta(days=export.dispatch_days if export else 3)
    ship_by = max(ship_by, created)
    booked = when("rts_at", first_row, first) or when("shipped_at", first_row, first)
    delivered = when("delivered_at", first_row, first)

    country_text = cell(first, "country")
    country = parse_country(country_text) if country_text else store.region
    if country is None:
        raise _RowError(first_row, _("Unknown country %(value)s.") % {"value": country_text[:40]})
    reading.countries[country] += 1
    if country != store.region:
        raise _RowError(
            first_row,
            _("A %(country)s address: this store ships in %(region)s.")
            % {"country": country, "region": store.region},
        )

    lines = []
    skus: dict[str, tuple[str, Decimal]] = {}
    for number, cells in rows:
        code = clean(cell(cells, "sku")) or clean(cell(cells, "platform_sku"))
        if not code:
            raise _RowError(number, _("No SKU: give the product a seller SKU in the Seller Center."))
        if excel_mangled(code):
            raise _RowError(number, _("Excel rounded the SKU into %(value)s.") % {"value": code})
        try:
            quantity = parse_quantity(cell(cells, "quantity"))
            price = _money(cell(cells, "unit_price"), store.currency) or Decimal("0")
        except CellError as exc:
            raise _RowError(number, str(exc)) from exc
        name = " ".join(part for part in (cell(cells, "product_name"), cell(cells, "variation")) if part)
        lines.append(
            {"sku": code[:64], "name": name[:200], "quantity": quantity, "unit_price": f"{price:.2f}"}
        )
        skus.setdefault(code[:64], ((name or code)[:200], price))

    try:
        amount = _money(cell(first, "order_amount"), store.currency)
    except CellError as exc:
        raise _RowError(first_row, f"{_label('order_amount')}: {exc}") from exc
    if amount is None:
        amount = sum((Decimal(line["unit_price"]) * line["quantity"] for line in lines), Decimal("0"))

    shipments = []
    seen: set[str] = set()
    for number, cells in rows:
        raw = clean(cell(cells, "tracking_number")).replace(" ", "")
        if not raw or raw in seen:
            continue
        if excel_mangled(raw):
            raise _RowError(number, _("Excel rounded the tracking number into %(value)s.") % {"value": raw})
        seen.add(raw)
        carrier_text = clean(cell(cells, "carrier"))
        if export and export.carrier_separator and export.carrier_separator in carrier_text:
            carrier_text = carrier_text.rsplit(export.carrier_separator, 1)[1].strip()
        code = _carrier(carrier_text, store.region) if carrier_text else None
        if code is None:
            label = carrier_text or _("(none)")
            reading.carriers_unknown[label] += 1
            code = _slug(carrier_text) or "unknown"
        else:
            reading.carriers_known[f"{carrier_text} → {code}"] += 1
        shipments.append({
            "carrier": code, "tracking_number": raw[:64],
            "booked_at": booked.isoformat() if booked else None,
        })  # fmt: skip

    buyer_name = clean(cell(first, "recipient")) or clean(cell(first, "buyer_username"))
    if not buyer_name:
        raise _RowError(first_row, _("No recipient or buyer name."))
    data = {
        "platform_order_id": order_id,
        "buyer": {
            "name": buyer_name[:120], "platform_id": clean(cell(first, "buyer_username"))[:64],
            "phone": clean(cell(first, "phone"))[:32],
        },
        "address": {
            "country": country, "province": cell(first, "province")[:80], "city": cell(first, "city")[:80],
            "district": cell(first, "district")[:80], "street": cell(first, "address")[:255],
            "postal_code": clean(cell(first, "postal_code"))[:16],
        },
        "placed_at": created.isoformat(), "ship_by": ship_by.isoformat(),
        "amount": f"{amount:.2f}", "currency": store.currency, "status": status, "lines": lines,
        "shipments": shipments,
    }  # fmt: skip
    try:
        order = msgspec.convert(data, OrderIn)
    except msgspec.ValidationError as exc:
        raise _RowError(first_row, _friendly(str(exc))) from exc
    return PlannedOrder(
        order_id=order_id, rows=[n for n, _c in rows], data=order, skus=skus, cells=[c for _n, c in rows],
        delivered_at=delivered if status == "delivered" else None,
    )  # fmt: skip


_PATHS = {
    "platform_order_id": "order_id", "buyer.name": "recipient", "buyer.phone": "phone",
    "buyer.platform_id": "buyer_username", "address.postal_code": "postal_code", "address.street": "address",
    "tracking_number": "tracking_number", "carrier": "carrier", "amount": "order_amount",
    "unit_price": "unit_price", "sku": "sku",
}  # fmt: skip


def _friendly(message: str) -> str:
    """A msgspec message ("Expected `str` matching regex ... - at `$.shipments[0].tracking_number`") with
    its path named as the column the seller knows."""
    text, _sep, path = message.partition(" - at `$.")
    path = path.rstrip("`")
    leaf = path.split(".")[-1].split("[")[0] if path else ""
    name = _PATHS.get(path) or _PATHS.get(leaf)
    if name:
        return _("%(field)s is not valid (%(detail)s).") % {"field": _label(name), "detail": text}
    return text


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:40]


# --- keeping what the file does not say ----------------------------------------------------------------


def _keep_stored(store: Store, planned: Sequence[PlannedOrder]) -> None:
    """Give each already-known order of `planned` what the export does not carry (live session, email,
    language, payment flag, the lots of its lines), so an import never blanks what the API set."""
    ids = [p.order_id for p in planned]
    stored = {
        o.platform_order_id: o
        for o in Order.objects.filter(store=store, platform_order_id__in=ids).only(
            "platform_order_id", "buyer_email", "buyer_language", "payment_flagged", "live_session_id",
            "buyer_platform_id",
        )
    }  # fmt: skip
    if not stored:
        return
    sessions = dict(
        LiveSession.objects.filter(pk__in={o.live_session_id for o in stored.values() if o.live_session_id})
        .values_list("pk", "external_id")
    )  # fmt: skip
    from tracking.models import OrderLine

    lots: dict[tuple[int, str], str] = {
        (order_id, code): lot
        for order_id, code, lot in OrderLine.objects.filter(order__in=list(stored.values()))
        .exclude(lot="")
        .values_list("order_id", "sku_code", "lot")
    }
    for plan in planned:
        order = stored.get(plan.order_id)
        if order is None:
            continue
        data = plan.data
        buyer = msgspec.structs.replace(
            data.buyer, email=order.buyer_email, language=order.buyer_language,
            platform_id=data.buyer.platform_id or order.buyer_platform_id,
        )  # fmt: skip
        lines = [
            msgspec.structs.replace(line, lot=lots.get((order.pk, line.sku), line.lot)) for line in data.lines
        ]
        plan.data = msgspec.structs.replace(
            data, buyer=buyer, lines=lines, payment_flagged=order.payment_flagged,
            live_session=sessions.get(order.live_session_id),
        )  # fmt: skip


# --- actions -------------------------------------------------------------------------------------------


def _admin_require(actor, store: Store) -> None:
    if actor is not None and not (actor.is_superuser or user_has_role(actor, store.pk, (Role.ADMIN,))):
        raise PermissionDenied(_("Only the store's admins import orders."))


def import_upload(
    *, store: Store, actor, file_name: str, data: bytes, now: datetime | None = None
) -> OrderImport:
    """Keep an uploaded export and check it: at once when it is small, in the worker otherwise. A file that
    cannot be read at all is refused at once with the reason (status `refused`)."""
    _admin_require(actor, store)
    now = now or timezone.now()
    digest = hashlib.sha256(data).hexdigest()
    name = (file_name or "orders.csv").replace("\\", "/").rsplit("/", 1)[-1][:200] or "orders.csv"
    imp = OrderImport(
        store=store, uploaded_by=actor, file_name=name, sha256=digest, size=len(data), created_at=now,
    )  # fmt: skip
    imp.file.save(
        f"{digest[:16]}-{_slug(name.rsplit('.', 1)[0]) or 'orders'}.bin", ContentFile(data), save=False
    )
    imp.save()
    if len(data) <= INLINE_CHECK_BYTES:
        import_check(imp, actor=actor, now=now)
    else:
        wake(IMPORT_TASK)
    return imp


def _table(imp: OrderImport) -> Table:
    with imp.file.open("rb") as handle:
        return read_table(handle.read())


def import_check(imp: OrderImport, *, actor=None, now: datetime | None = None) -> OrderImport:
    """Read the file, recognise its layout (a known export, or the store's remembered mapping), and compute
    the preview; or ask for the columns (`needs_mapping`), or refuse the file with the reason."""
    now = now or timezone.now()
    actor = actor or imp.uploaded_by
    try:
        table = _table(imp)
    except FileRefused as exc:
        return _refuse(imp, str(exc))
    imp.headers = table.headers
    imp.rows_total = len(table.rows)
    detection = formats.detect(table.headers)
    remembered = ImportMapping.objects.filter(
        store=imp.store, signature=formats.signature(table.headers)
    ).first()
    if remembered is not None:
        imp.mapping = {k: int(v) for k, v in remembered.mapping.items()}
        imp.format = detection.format.key if detection.format else CUSTOM
    elif detection.complete:
        imp.mapping, imp.format = detection.columns, detection.format.key
    elif not imp.mapping:
        imp.format = detection.format.key if detection.format else CUSTOM
        imp.mapping = detection.columns
        imp.preview = {"samples": [cells for _n, cells in table.rows[:3]]}  # shown beside each column
        imp.status = ImportStatus.NEEDS_MAPPING
        imp.save()
        return imp
    export = _format_of(imp.format)
    if export is not None and export.platform != imp.store.platform:
        return _refuse(
            imp,
            _("This is a %(format)s export, but %(store)s sells on %(platform)s: upload it to that store.")
            % {"format": export.name, "store": imp.store.name, "platform": imp.store.get_platform_display()},
        )
    with _gc_paused():
        reading = read_orders(table, store=imp.store, columns=imp.mapping, export=export, now=now)
    refusal = _file_refusal(imp, reading, actor=actor)
    if refusal:
        return _refuse(imp, refusal)
    _preview(imp, reading, now=now)
    return imp


def _refuse(imp: OrderImport, why: str) -> OrderImport:
    imp.status, imp.error = ImportStatus.REFUSED, why
    imp.save()
    return imp


def _file_refusal(imp: OrderImport, reading: Reading, *, actor) -> str:
    """Why the file as a whole is not this store's: most of its addresses are in another country, or most
    of its orders belong to another of the uploader's stores."""
    store = imp.store
    foreign = {c: n for c, n in reading.countries.items() if c != store.region}
    total = sum(reading.countries.values())
    if total and sum(foreign.values()) * 2 > total:
        country = max(foreign, key=foreign.get)
        return _(
            "Most orders in this file ship to %(country)s, but %(store)s sells in %(region)s: this looks like "
            "another shop's export."
        ) % {"country": country, "store": store.name, "region": store.region}  # fmt: skip
    ids = [p.order_id for p in reading.orders[:500]]
    if not ids:
        if reading.refusals:
            return _("No row of this file can be imported: see the first reason, %(why)s") % {
                "why": reading.refusals[0].reason
            }
        return _("The file holds no orders.")
    others = [pk for pk in store_ids_with_roles(actor, list(Role)) if pk != store.pk] if actor else []
    if others:
        elsewhere = Counter(
            Order.objects.filter(store_id__in=others, platform_order_id__in=ids).values_list(
                "store__name", flat=True
            )
        )
        if elsewhere and sum(elsewhere.values()) * 2 > len(ids):
            return _("These orders are %(store)s's: upload the file to that store.") % {
                "store": elsewhere.most_common(1)[0][0]
            }
    return ""


class _SavedPlan(msgspec.Struct, array_like=True):
    """What the check read from the file, kept beside it: the import decodes this instead of parsing the
    file again. Valid only for the same bytes read with the same columns."""

    sha256: str
    format: str
    mapping: dict[str, int]
    rows: int
    orders: list[PlannedOrder]
    refusals: list[Refusal]


def _plan_key(imp: OrderImport) -> tuple:
    return (imp.sha256, imp.format, {k: int(v) for k, v in imp.mapping.items()})


def _plan_save(imp: OrderImport, reading: Reading) -> None:
    sha256, format_, mapping = _plan_key(imp)
    data = msgspec.msgpack.encode(
        _SavedPlan(sha256, format_, mapping, reading.rows, reading.orders, reading.refusals)
    )
    if imp.plan:
        imp.plan.delete(save=False)
    imp.plan.save(f"{imp.pk}-{sha256[:16]}.msgpack", ContentFile(data), save=False)


def _plan_load(imp: OrderImport) -> Reading | None:
    """The check's reading, if it was kept for these bytes and columns; None: read the file again."""
    if not imp.plan:
        return None
    try:
        with imp.plan.open("rb") as handle:
            saved = msgspec.msgpack.decode(handle.read(), type=_SavedPlan)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        log.warning("import %s: the checked plan cannot be read; reading the file again", imp.pk)
        return None
    if (saved.sha256, saved.format, saved.mapping) != _plan_key(imp):
        return None
    return Reading(orders=saved.orders, refusals=saved.refusals, rows=saved.rows)


@contextmanager
def _gc_paused():
    """A file's reading makes a few million small objects that all live until the end: the cyclic garbage
    collector would walk them again and again for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _preview(imp: OrderImport, reading: Reading, *, now: datetime) -> None:
    store = imp.store
    counts: Counter[str] = Counter()
    planned_skus = {code for p in reading.orders for code in p.skus}
    known = set(SKU.objects.filter(store=store, code__in=planned_skus).values_list("code", flat=True))
    new_skus = sorted(planned_skus - known)
    upsert_refusals: list[Refusal] = []
    for start in range(0, len(reading.orders), 1000):
        chunk = reading.orders[start : start + 1000]
        _keep_stored(store, chunk)
        outcomes = orders_upsert(
            store=store, orders=[p.data for p in chunk], now=now, dry_run=True, planned_skus=new_skus
        )
        for plan, outcome in zip(chunk, outcomes, strict=True):
            counts[outcome.result] += 1
            if outcome.result == "error":
                why = "; ".join(_friendly(m) if not f else f"{f}: {m}" for f, m in outcome.errors)
                upsert_refusals += plan.refusals(why)
    parcels = sum(len(p.data.shipments) for p in reading.orders)
    in_flight = sum(len(p.data.shipments) for p in reading.orders if p.data.status == "shipped")
    times = [p.data.placed_at for p in reading.orders]
    imp.preview = {
        "rows": reading.rows,
        "orders": len(reading.orders),
        "new": counts["created"], "changed": counts["updated"], "unchanged": counts["unchanged"],
        "refused_orders": counts["error"],
        "rows_refused": len(reading.refusals) + len(upsert_refusals),
        "reasons": _reasons(reading.refusals + upsert_refusals),
        "skus_new": len(new_skus), "skus_new_sample": new_skus[:20],
        "carriers_known": dict(reading.carriers_known.most_common()),
        "carriers_unknown": dict(reading.carriers_unknown.most_common()),
        "parcels": parcels, "in_flight": in_flight,
        "oldest": min(times).isoformat() if times else None,
        "newest": max(times).isoformat() if times else None,
        "mapped": {name: imp.headers[index] for name, index in imp.mapping.items() if index < len(imp.headers)},
    }  # fmt: skip
    imp.orders_total = len(reading.orders)
    imp.status = ImportStatus.READY
    imp.error = ""
    _plan_save(imp, reading)
    with transaction.atomic():
        imp.save()
        ImportRefusal.objects.filter(order_import=imp, stage="preview").delete()
        _refusals_save(imp, reading.refusals + upsert_refusals, stage="preview")


def _reasons(refusals: Sequence[Refusal], top: int = 6) -> list[tuple[str, int]]:
    """The commonest reasons rows were refused (numbers folded, so "row 6" and "row 9" count together)."""
    counts = Counter(re.sub(r"\d+", "N", r.reason) for r in refusals if not r.sibling)
    return counts.most_common(top)


def _unique_rows(refusals: Sequence[Refusal]) -> list[Refusal]:
    seen: set[int] = set()
    out = []
    for refusal in refusals:
        if refusal.row not in seen:
            seen.add(refusal.row)
            out.append(refusal)
    return out


def import_map(
    imp: OrderImport, *, actor, mapping: Mapping[str, int | None], now: datetime | None = None
) -> OrderImport:
    """The admin's answer to the mapping step: which column is which field (None: not in the file). Kept
    for the store's next file with these columns, then the file is checked with it."""
    _admin_require(actor, imp.store)
    if imp.status not in (ImportStatus.NEEDS_MAPPING, ImportStatus.READY, ImportStatus.REFUSED):
        raise ImportError_(_("This import is past the mapping step."))
    chosen = {name: int(index) for name, index in mapping.items() if index is not None and index != ""}
    unknown = set(chosen) - set(FIELDS)
    if unknown:
        raise ImportError_(_("Unknown fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))})
    if any(not 0 <= index < len(imp.headers) for index in chosen.values()):
        raise ImportError_(_("A chosen column is not in the file."))
    used = Counter(chosen.values())
    twice = [imp.headers[index] for index, n in used.items() if n > 1]
    if twice:
        raise ImportError_(_("Column %(column)s is chosen for two fields.") % {"column": twice[0]})
    missing = formats.mapping_missing(chosen)
    if missing:
        raise ImportError_(
            _("Still needed: %(fields)s.") % {"fields": ", ".join(_label(name) for name in missing)}
        )
    ImportMapping.objects.update_or_create(
        store=imp.store, signature=formats.signature(imp.headers),
        defaults={"headers": imp.headers, "mapping": chosen},
    )  # fmt: skip
    imp.mapping = chosen
    imp.status = ImportStatus.CHECKING
    imp.save()
    return import_check(imp, actor=actor, now=now)


def import_confirm(imp: OrderImport, *, actor, now: datetime | None = None) -> OrderImport:
    """The admin confirms the preview: the import is queued for the worker."""
    _admin_require(actor, imp.store)
    now = now or timezone.now()
    with transaction.atomic():
        locked = OrderImport.objects.select_for_update().get(pk=imp.pk)
        if locked.status in (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.DONE):
            return locked  # a second click (or a second tab) changes nothing
        if locked.status != ImportStatus.READY:
            raise ImportError_(_("Only a checked file can be imported."))
        locked.status, locked.confirmed_at, locked.confirmed_by = ImportStatus.QUEUED, now, actor
        locked.save(update_fields=["status", "confirmed_at", "confirmed_by"])
    wake(IMPORT_TASK)
    return locked


def import_cancel(imp: OrderImport, *, actor) -> OrderImport:
    """Drop a checked import before it runs (a running one finishes: its chunks are already orders)."""
    _admin_require(actor, imp.store)
    updated = OrderImport.objects.filter(
        pk=imp.pk,
        status__in=[
            ImportStatus.CHECKING,
            ImportStatus.NEEDS_MAPPING,
            ImportStatus.READY,
            ImportStatus.REFUSED,
        ],
    ).update(status=ImportStatus.CANCELLED)
    if not updated:
        raise ImportError_(_("A running or finished import cannot be cancelled."))
    imp.refresh_from_db()
    return imp


# --- the worker ----------------------------------------------------------------------------------------


def imports_run(*, now: datetime | None = None, seconds: float = 90.0, chunks: int | None = None) -> int:
    """The worker's step: check the uploads too large to check in their request, then run confirmed
    imports (and resume any whose worker died: its lease ran out). Returns the number of chunks written."""
    done = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and (chunks is None or done < chunks):
        imp = _claim(now=now or timezone.now())
        if imp is None:
            break
        if imp.status == ImportStatus.CHECKING:
            import_check(imp, now=now)
            OrderImport.objects.filter(pk=imp.pk).update(leased_until=None)
            continue
        done += import_run(imp, now=now, deadline=end, chunks=None if chunks is None else chunks - done)
    return done


def _claim(*, now: datetime) -> OrderImport | None:
    with transaction.atomic():
        imp = (
            skip_locked(
                OrderImport.objects.filter(
                    status__in=[ImportStatus.CHECKING, ImportStatus.QUEUED, ImportStatus.RUNNING]
                ).exclude(leased_until__gt=now)
            )
            .select_related("store")
            .order_by("created_at", "pk")
            .first()
        )
        if imp is None:
            return None
        OrderImport.objects.filter(pk=imp.pk).update(leased_until=now + LEASE, attempts=F("attempts") + 1)
    return imp


def import_run(
    imp: OrderImport, *, now: datetime | None = None, deadline: float | None = None, chunks: int | None = None
) -> int:
    """Import the confirmed file from its resume point, a committed chunk at a time. Returns the chunks
    written; the import is `done` when the last one commits."""
    now = now or timezone.now()
    store = imp.store
    reading = _plan_load(imp)
    if reading is None:
        with _gc_paused():
            reading = read_orders(
                _table(imp), store=store, columns=imp.mapping, export=_format_of(imp.format), now=now
            )
    OrderImport.objects.filter(pk=imp.pk).update(
        status=ImportStatus.RUNNING, orders_total=len(reading.orders)
    )
    _refusals_save(imp, reading.refusals, stage="import")  # the file's own refusals (again on a resume: once)
    written = 0
    start = imp.orders_done
    began = time.monotonic()
    while start < len(reading.orders):
        out_of_turn = (chunks is not None and written >= chunks) or (
            deadline is not None and written and time.monotonic() > deadline
        )
        if out_of_turn:  # the round's time is up: let the next round (woken at once) carry on
            OrderImport.objects.filter(pk=imp.pk, orders_done=start).update(leased_until=None)
            return written
        chunk = reading.orders[start : start + CHUNK]
        lease = now + timedelta(seconds=time.monotonic() - began) + LEASE  # `now` is a test's clock too
        if not _chunk_write(imp, store, chunk, start=start, now=now, lease=lease):
            return written  # another worker holds it
        written += 1
        start += len(chunk)
    OrderImport.objects.filter(pk=imp.pk).update(
        status=ImportStatus.DONE,
        finished_at=timezone.now(),
        leased_until=None,
        orders_done=len(reading.orders),
    )
    wake(REGISTER_TASK)
    wake(SYNC_TASK)
    wake(RULES_TASK)
    imp.refresh_from_db()
    return written


def _chunk_write(
    imp: OrderImport,
    store: Store,
    chunk: Sequence[PlannedOrder],
    *,
    start: int,
    now: datetime,
    lease: datetime,
) -> bool:
    with transaction.atomic():
        locked = OrderImport.objects.select_for_update().get(pk=imp.pk)
        if locked.orders_done != start:
            return False
        codes = {}
        for plan in chunk:
            for code, value in plan.skus.items():
                codes.setdefault(code, value)
        existing = set(SKU.objects.filter(store=store, code__in=codes).values_list("code", flat=True))
        made = [
            SKU(store=store, code=code, name=name, unit_price=price)
            for code, (name, price) in codes.items()
            if code not in existing
        ]
        SKU.objects.bulk_create(made, ignore_conflicts=True)
        _keep_stored(store, chunk)
        before = set(
            Shipment.objects.filter(
                store=store, tracking_number__in=[s.tracking_number for p in chunk for s in p.data.shipments]
            ).values_list("tracking_number", flat=True)
        )
        outcomes = orders_upsert(
            store=store, orders=[p.data for p in chunk], now=now, source_import_id=imp.pk,
            new_parcels_poll_at=imp.created_at,
        )  # fmt: skip
        counts: Counter[str] = Counter(outcome.result for outcome in outcomes)
        refusals = []
        for plan, outcome in zip(chunk, outcomes, strict=True):
            if outcome.result == "error":
                why = "; ".join(f"{f}: {m}" if f else m for f, m in outcome.errors)
                refusals += plan.refusals(why)
        _refusals_save(imp, refusals, stage="import")
        new_parcels = _parcels_backfill(chunk, outcomes, before=before, now=now)
        OrderImport.objects.filter(pk=imp.pk).update(
            orders_done=start + len(chunk), created=F("created") + counts["created"],
            updated=F("updated") + counts["updated"], unchanged=F("unchanged") + counts["unchanged"],
            skus_created=F("skus_created") + len(made), parcels_created=F("parcels_created") + new_parcels,
            leased_until=lease,
        )  # fmt: skip
    return True


def _parcels_backfill(chunk, outcomes, *, before: set[str], now: datetime) -> int:
    """The chunk's new parcels (returns how many): those the export says were delivered get that Delivered
    checkpoint (the Seller Center's word, source `seller_center`), so they are neither judged nor tracked;
    the others were made first in line for the tracking providers (their first poll before any other's)."""
    made = 0
    delivered: dict[int, datetime] = {}
    for plan, outcome in zip(chunk, outcomes, strict=True):
        if outcome.result == "error":
            continue
        fresh = sum(1 for s in plan.data.shipments if s.tracking_number not in before)
        made += fresh
        if fresh and plan.delivered_at:
            delivered[outcome.order_id] = plan.delivered_at
    if delivered:
        parcels = (
            Shipment.objects.filter(order_id__in=list(delivered))
            .exclude(tracking_number__in=before)
            .values_list("pk", "tracking_number", "order_id")
        )
        items = [
            (pk, number, [EventData(checkpoint_at=delivered[order_id], tag=Tag.DELIVERED, subtag="Delivered_001",
                                    source=SOURCE, raw_text="Delivered (Seller Center export)")])
            for pk, number, order_id in parcels
        ]  # fmt: skip
        events_ingest_many(items=items, now=now)
    return made


def _refusals_save(imp: OrderImport, refusals: Sequence[Refusal], *, stage: str) -> None:
    if not refusals:
        return
    ImportRefusal.objects.bulk_create(
        [
            ImportRefusal(order_import=imp, stage=stage, row=r.row, order_id=r.order_id[:200], reason=r.reason,
                          cells=r.cells)
            for r in _unique_rows(refusals)
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )  # fmt: skip
    if stage == "import":
        OrderImport.objects.filter(pk=imp.pk).update(
            rows_refused=ImportRefusal.objects.filter(order_import=imp, stage=stage).count()
        )


# --- the refused rows as CSV ---------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula (=, +, -, @, tab, CR) gets a leading
    apostrophe, so =HYPERLINK(...) from a buyer's address is never run when the CSV is opened (OWASP CSV
    injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def refusals_csv(imp: OrderImport) -> Iterator[bytes]:
    """The refused rows, as the file had them, with the row number and the reason first: fix and upload again."""
    stage = "import" if imp.status in (ImportStatus.RUNNING, ImportStatus.DONE) else "preview"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_("Row"), _("Why not imported"), *[csv_safe(h) for h in imp.headers]])
    yield ("\ufeff" + buffer.getvalue()).encode()
    rows = (
        ImportRefusal.objects.filter(order_import=imp, stage=stage)
        .order_by("row")
        .values_list("row", "reason", "cells")
    )
    for row, reason, cells in rows.iterator(chunk_size=2000):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([row, csv_safe(reason), *[csv_safe(c) for c in cells]])
        yield buffer.getvalue().encode()
