"""Writing the demo's plan (`portal.demo.plan`) into the database, idempotently.

`demo_seed` finds every row by its natural key (store code, username, SKU code, platform order id, tracking
number, event dedupe key) and creates only missing rows, so a second run adds nothing. Tracking comes in through
the real push path: a simulator connection per store, one signed push per new parcel (the history's parcels,
their stories over, in batch pushes). The cases of parcels still on their way come from the exception engine
itself; the history's are written as they went (`_history_write`), and the report rollups are built over
everything at the end.
"""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from cases.choices import (
    ORDER_LEVEL_TYPES,
    CaseEventKind,
    CaseStatus,
    ClaimStatus,
    CompensationKind,
    CompensationStatus,
    MessageChannel,
    MessageStatus,
    Priority,
)
from cases.compensation import CLAIM_MOVED, CLAIM_OPENED
from cases.complaints.intake import CHASED, COMPLAINED
from cases.engine import CLEARED_OTHERWISE, CLEARED_REASONS, exceptions_sweep
from cases.message_defaults import default_templates_ensure
from cases.messages import ETA_UNKNOWN, OPTION_WORDING, proactive_template_for, template_fill
from cases.models import OPEN_CASE, BuyerMessage, Case, CaseEvent, Claim, Compensation, Complaint
from cases.policy import PolicyBook
from cases.review import order_review_evaluate
from cases.services import case_sla
from cases.stock import stock_evaluate
from cases.texts import SUMMARY_KEY, Text, event_data
from cases.workflow import case_assign, case_transition
from portal.choices import Role
from portal.demo.plan import (
    DEFAULT_ORDERS,
    DEFAULT_SEED,
    DEMO_USERS,
    HISTORY_PUSH_BATCH,
    LIVE_AGE,
    LIVE_HOST,
    LIVE_TITLE,
    PAST_LIVE_TITLE,
    SKUS,
    STORE_CODES,
    STORES,
    TTS_MY,
    DemoPlan,
    OrderPlan,
    Outcome,
    StoreSpec,
    demo_plan,
)
from portal.models import Membership, Store
from tracking.carriers import carrier_name
from tracking.choices import ProviderName
from tracking.ingest import deliveries_process
from tracking.models import (
    SKU,
    LiveSession,
    LiveSessionAllocation,
    Order,
    OrderLine,
    Shipment,
    SKUComponent,
    StockLevel,
    TrackingConnection,
)
from tracking.providers.base import ParsedTracking
from tracking.providers.simulator import push_body as simulator_push_body
from tracking.scheduled import scheduled_pushes_add, simulator_push_receive


@dataclass
class SeedReport:
    seed: int
    now: datetime
    orders_requested: int
    skipped: bool = False  # --if-empty found demo orders and did nothing
    anchored: bool = False  # the existing demo's time was reused, so the plan matched what is stored
    created: Counter[str] = field(default_factory=Counter)
    cases_by_type: Counter[str] = field(default_factory=Counter)
    passwords_reset: int = 0
    rollup_days: int = 0  # store-days of report rollups built

    @property
    def created_anything(self) -> bool:
        return any(self.created.values()) or self.passwords_reset > 0


def demo_seed(
    *,
    orders: int = DEFAULT_ORDERS,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    if_empty: bool = False,
) -> SeedReport:
    """Create the demo stores, users, catalogue, live sessions, orders, parcels, tracking and cases: the day
    after a big livestream, with four weeks of history behind it (a past live session with its review
    written), and the report rollups built over all of it.

    Idempotent: rows are matched on natural keys and only missing ones are created; tracking events and
    cases are written only for parcels and orders created by this run, so a rerun neither duplicates nor
    reopens anything an agent has resolved. When the demo live session already exists its start time
    anchors the plan instead of `now`, so a rerun regenerates exactly the stored rows. All in one
    transaction: an interrupted run leaves nothing behind.
    """
    now = now or timezone.now()
    report = SeedReport(seed=seed, now=now, orders_requested=orders)
    if if_empty and Order.objects.filter(store__code__in=STORE_CODES).exists():
        report.skipped = True
        return report
    with transaction.atomic():
        default_templates_ensure()  # before any case is raised: proactive messages need templates
        stores = {spec.code: _store_ensure(spec, report) for spec in STORES}
        live_session = LiveSession.objects.filter(store=stores[TTS_MY.code], title=LIVE_TITLE).first()
        if live_session is not None:
            now = live_session.started_at + LIVE_AGE
            report.now, report.anchored = now, True
        plan = demo_plan(orders=orders, seed=seed, now=now)
        users = _users_ensure(stores, report)
        skus = _catalogue_ensure(plan, stores, report)
        sessions = _sessions_ensure(plan, stores[TTS_MY.code], skus, report)
        new_orders = _orders_ensure(plan, stores, skus, sessions, report)
        new_shipments = _shipments_ensure(plan, stores, new_orders, report)
        _cases_raise(plan, new_orders, new_shipments, users, report)
        history = _history_write(plan, stores, skus, new_orders, new_shipments, users, report)
        _appeal_history_ensure(stores[TTS_MY.code], history, users, plan, report)
        _evidence_ensure(stores[TTS_MY.code], report)
        if any(report.created.values()):
            # The reports read rollups: built now over everything, so /reports/ has its figures at once.
            from cases.reporting.rollups import rollups_rebuild

            report.rollup_days = rollups_rebuild([store.pk for store in stores.values()])
        _past_review_ensure(sessions[PAST_LIVE_TITLE], report)
    return report


def _sessions_ensure(
    plan: DemoPlan, store: Store, skus: dict[tuple[str, str], SKU], report: SeedReport
) -> dict[str, LiveSession]:
    """The current live session and the past one, with what each set aside per SKU."""
    sessions = {}
    for title, started_at, ended_at, allocations in (
        (LIVE_TITLE, plan.live_started_at, plan.live_ended_at, plan.live_allocations),
        (PAST_LIVE_TITLE, plan.past_started_at, plan.past_ended_at, plan.past_allocations),
    ):
        session, created = LiveSession.objects.get_or_create(
            store=store,
            title=title,
            defaults={"host": LIVE_HOST, "started_at": started_at, "ended_at": ended_at},
        )
        report.created["live sessions"] += created
        for code, quantity in allocations.items():
            _, created = LiveSessionAllocation.objects.get_or_create(
                live_session=session, sku=skus[(TTS_MY.code, code)], defaults={"quantity": quantity}
            )
            report.created["live allocations"] += created
        sessions[title] = session
    return sessions


def _evidence_ensure(store: Store, report: SeedReport) -> None:
    """The appeal scenarios, and on the TikTok store a no-show appeal in progress: the first pickup-overdue
    cases, two of them with a photo of the booking confirmation (the carrier chat is still missing)."""
    import io

    from cases.appeals import appeal_create, appeal_scenarios_ensure
    from cases.evidence import evidence_add
    from cases.models import AppealScenario, Evidence

    report.created["appeal scenarios"] += appeal_scenarios_ensure()
    if Evidence.objects.filter(store=store).exists():
        return
    cases = list(
        Case.objects.filter(OPEN_CASE, store=store, type="pickup_overdue", shipment__booked_at__isnull=False)
        .select_related("shipment", "order", "store")
        .order_by("pk")[:3]
    )
    membership = (
        Membership.objects.filter(store=store, role=Role.AGENT).select_related("user").order_by("pk").first()
    )
    if not cases or membership is None:
        return
    for case in cases[:2]:
        parcel = case.shipment
        photo = _booking_photo(
            f"{parcel.carrier} {parcel.tracking_number}", parcel.booked_at.astimezone(store.tzinfo)
        )
        evidence_add(case=case, upload=io.BytesIO(photo), name=f"booking-{parcel.tracking_number}.jpg",
                     kind="booking_confirmation", actor=membership.user)  # fmt: skip
        report.created["evidence files"] += 1
    scenario = AppealScenario.objects.get(store__isnull=True, code="tts-late-dispatch-b")
    appeal_create(store=store, scenario=scenario, cases=cases, actor=membership.user)
    report.created["appeals"] += 1


def _booking_photo(parcel: str, booked_at: datetime) -> bytes:
    """A phone screenshot of a pickup booking, with the EXIF time a phone gives it."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (540, 320), (245, 247, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 540, 64), fill=(238, 29, 82))
    draw.text((24, 24), "Pickup booked", fill=(255, 255, 255))
    for row, text in enumerate(
        (parcel, f"Slot: {booked_at:%Y-%m-%d} 14:00-18:00", f"Booked {booked_at:%Y-%m-%d %H:%M}")
    ):
        draw.text((24, 96 + 48 * row), text, fill=(30, 30, 30))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = booked_at.strftime("%Y:%m:%d %H:%M:%S")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif.tobytes())
    return out.getvalue()


def _store_ensure(spec: StoreSpec, report: SeedReport) -> Store:
    store, created = Store.objects.get_or_create(
        code=spec.code,
        defaults={
            "name": spec.name,
            "platform": spec.platform,
            "region": spec.region,
            "currency": spec.currency,
            "timezone": spec.timezone,
            "default_language": spec.default_language,
            "ship_from": spec.ship_from,
        },
    )
    report.created["stores"] += created
    if not store.ship_from:  # a demo store from before stores knew where they ship from
        store.ship_from = spec.ship_from
        store.save(update_fields=["ship_from"])
    return store


def _users_ensure(stores: dict[str, Store], report: SeedReport) -> dict[str, AbstractBaseUser]:
    user_model = get_user_model()
    users = {}
    # A password hash costs a third of a second by design: hashed once for all the demo users, and each
    # stored hash checked once.
    hashed = ""
    works: dict[str, bool] = {}
    for username, first_name, last_name, role, is_staff, is_superuser in DEMO_USERS:
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first_name,
                "last_name": last_name,
                "email": f"{username}@lumibeauty.example",
                "is_staff": is_staff,
                "is_superuser": is_superuser,
            },
        )
        report.created["users"] += created
        changed = []
        # Only set the password when it does not already work, so a rerun leaves sessions alone.
        if not created and user.password not in works:
            works[user.password] = user.check_password(settings.DEMO_PASSWORD)
        if created or not works[user.password]:
            hashed = hashed or make_password(settings.DEMO_PASSWORD)
            user.password = hashed
            changed.append("password")
            report.passwords_reset += not created
        for flag, wanted in (("is_staff", is_staff), ("is_superuser", is_superuser)):
            if wanted and not getattr(user, flag):
                setattr(user, flag, True)
                changed.append(flag)
        if changed:
            user.save(update_fields=changed)
        for store in stores.values():
            _, created = Membership.objects.get_or_create(user=user, store=store, defaults={"role": role})
            report.created["memberships"] += created
        users[username] = user
    return users


def _catalogue_ensure(
    plan: DemoPlan, stores: dict[str, Store], report: SeedReport
) -> dict[tuple[str, str], SKU]:
    skus: dict[tuple[str, str], SKU] = {}
    for store_code, specs in SKUS.items():
        store = stores[store_code]
        for spec in specs:
            sku, created = SKU.objects.get_or_create(
                store=store,
                code=spec.code,
                defaults={"name": spec.name, "unit_price": spec.price, "is_combo": bool(spec.components)},
            )
            report.created["SKUs"] += created
            skus[(store_code, spec.code)] = sku
        for spec in specs:
            for component in spec.components:
                _, created = SKUComponent.objects.get_or_create(
                    combo=skus[(store_code, spec.code)], component=skus[(store_code, component)]
                )
                report.created["SKU components"] += created
    for (store_code, code), (on_hand, allocated, restock_eta) in plan.stock.items():
        _, created = StockLevel.objects.get_or_create(
            sku=skus[(store_code, code)],
            defaults={"on_hand": on_hand, "allocated": allocated, "restock_eta": restock_eta},
        )
        report.created["stock levels"] += created
    return skus


def _orders_ensure(
    plan: DemoPlan,
    stores: dict[str, Store],
    skus: dict[tuple[str, str], SKU],
    sessions: dict[str, LiveSession],
    report: SeedReport,
) -> dict[tuple[str, str], Order]:
    """Create the planned orders that do not exist yet; returns every planned order, old or new, by key."""
    existing = {
        (order.store.code, order.platform_order_id): order
        for order in Order.objects.filter(store__in=stores.values()).select_related("store")
    }
    new_rows = []
    for planned in plan.orders:
        key = (planned.store.code, planned.platform_order_id)
        if key in existing:
            continue
        buyer = planned.buyer
        new_rows.append(
            Order(
                store=stores[planned.store.code],
                platform_order_id=planned.platform_order_id,
                buyer_name=buyer.name,
                buyer_platform_id=buyer.platform_id,
                buyer_email=buyer.email,
                buyer_phone=buyer.phone,
                buyer_language=buyer.language,
                country=planned.store.region,
                province=buyer.province,
                city=buyer.city,
                district=buyer.district,
                street=buyer.street,
                postal_code=buyer.postal_code,
                placed_at=planned.placed_at,
                ship_by=planned.ship_by,
                live_session=sessions[LIVE_TITLE]
                if planned.live
                else sessions[PAST_LIVE_TITLE]
                if planned.past_live
                else None,
                amount=planned.amount,
                currency=planned.store.currency,
                status=planned.status,
                payment_flagged=planned.payment_flagged,
            )
        )
    created = Order.objects.bulk_create(new_rows, batch_size=500)
    report.created["orders"] += len(created)
    new_keys = set()
    for order in created:
        key = (order.store.code, order.platform_order_id)
        existing[key] = order
        new_keys.add(key)
    lines = [
        OrderLine(
            order=existing[(planned.store.code, planned.platform_order_id)],
            sku=skus[(planned.store.code, line.sku_code)],
            sku_code=line.sku_code,
            sku_name=line.sku_name,
            lot=line.lot,
            quantity=line.quantity,
            unit_price=line.unit_price,
        )
        for planned in plan.orders
        if (planned.store.code, planned.platform_order_id) in new_keys
        for line in planned.lines
    ]
    report.created["order lines"] += len(OrderLine.objects.bulk_create(lines, batch_size=1000))
    return {key: existing[key] for key in new_keys}


def _shipments_ensure(
    plan: DemoPlan, stores: dict[str, Store], new_orders: dict[tuple[str, str], Order], report: SeedReport
) -> dict[tuple[str, str], Shipment]:
    """Create the missing parcels of new orders and ingest their tracking through the real pipeline."""
    existing = set(
        Shipment.objects.filter(store__in=stores.values()).values_list(
            "store__code", "carrier", "tracking_number"
        )
    )
    created: dict[tuple[str, str], Shipment] = {}
    for planned in plan.orders:
        key = (planned.store.code, planned.platform_order_id)
        shipment = planned.shipment
        if key not in new_orders or shipment is None:
            continue
        if (planned.store.code, shipment.carrier, shipment.tracking_number) in existing:
            continue
        created[key] = Shipment(
            store=stores[planned.store.code],
            order=new_orders[key],
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            booked_at=shipment.booked_at,
            label_created_at=shipment.booked_at,
        )
    Shipment.objects.bulk_create(created.values(), batch_size=500)
    # The demo's shop has used Afterdesk all along: each parcel was known from its booking, so its
    # deadlines are judged at once (a parcel first heard of late waits for its history: cases.rules).
    # (One UPDATE per chunk: bulk_update writes a CASE branch per row, seconds for a few thousand parcels.)
    for shipment in created.values():
        shipment.created_at = shipment.booked_at or shipment.created_at
    ids = [shipment.pk for shipment in created.values()]
    for start in range(0, len(ids), 500):
        Shipment.objects.filter(pk__in=ids[start : start + 500], booked_at__isnull=False).update(
            created_at=F("booked_at")
        )
    report.created["shipments"] += len(created)
    _tracking_push(plan, stores, created, report)
    # The history's parcels were swept as their scans came in, weeks ago, and nothing is pending on them: the
    # rule sweeper has nothing to look at again (their cases are written as they went: `_history_write`).
    settled = [
        created[(o.store.code, o.platform_order_id)].pk
        for o in plan.orders
        if o.settled and (o.store.code, o.platform_order_id) in created
    ]
    for start in range(0, len(settled), 500):
        Shipment.objects.filter(pk__in=settled[start : start + 500]).update(next_check_at=None)
    return created


def _tracking_push(
    plan: DemoPlan, stores: dict[str, Store], created: dict[tuple[str, str], Shipment], report: SeedReport
) -> None:
    """The new parcels' histories arrive as the carriers' pushes would: each store has a simulator tracking
    connection, and each parcel's trace is one signed push to it, stored as a raw webhook delivery and
    processed by the worker's own step (as of the demo's `now`). So the admin shows the connection, its
    counters and the raw deliveries, as in production."""
    connections = {code: _connection_ensure(store, report) for code, store in stores.items()}
    history: dict[str, list[ParsedTracking]] = defaultdict(list)
    for planned in plan.orders:
        key = (planned.store.code, planned.platform_order_id)
        if key not in created or planned.shipment is None:
            continue
        connection = connections[planned.store.code]
        number, carrier = planned.shipment.tracking_number, planned.shipment.carrier
        tracking = ParsedTracking(
            number, carrier, planned.shipment.events, planned.shipment.expected_delivery
        )
        if planned.settled:
            history[planned.store.code].append(tracking)
            continue
        simulator_push_receive(connection=connection, body=simulator_push_body([tracking]))
        report.created["webhook deliveries"] += 1
        if planned.shipment.onward:
            # What the carrier scans after the demo's now arrives later, each push when it is due.
            report.created["scheduled pushes"] += scheduled_pushes_add(
                connection=connection, trackings=[ParsedTracking(number, carrier, planned.shipment.onward)]
            )
    # The history's parcels, their stories over, come as the provider's batch pushes of many parcels each.
    for code, trackings in history.items():
        for start in range(0, len(trackings), HISTORY_PUSH_BATCH):
            body = simulator_push_body(trackings[start : start + HISTORY_PUSH_BATCH])
            simulator_push_receive(connection=connections[code], body=body)
            report.created["webhook deliveries"] += 1
    while True:
        result = deliveries_process(now=plan.now)
        if result.failed:
            raise RuntimeError(f"The demo's own tracking pushes failed to process: {result}")
        if not result.deliveries:
            break
        report.created["tracking events"] += result.ingest.new


def _connection_ensure(store: Store, report: SeedReport) -> TrackingConnection:
    connection, made = TrackingConnection.objects.get_or_create(
        store=store,
        provider=ProviderName.SIMULATOR,
        # Push only: the simulator's pull would invent histories of its own for the demo's parcels.
        defaults={
            "webhook_secret": secrets.token_urlsafe(24),
            "pull_enabled": False,
            "register_parcels": False,
        },
    )
    report.created["tracking connections"] += made
    return connection


def _cases_raise(
    plan: DemoPlan,
    new_orders: dict[tuple[str, str], Order],
    new_shipments: dict[tuple[str, str], Shipment],
    users: dict[str, AbstractBaseUser],
    report: SeedReport,
) -> None:
    # Parcel cases come from the exception engine itself, sweeping the freshly ingested parcels as the
    # demo's worker would; the stock side is raised here from the plan.
    swept = exceptions_sweep(now=plan.now)
    # The store-wide rules ran as the orders came in: for the live store, as the live session closed.
    for store in Store.objects.filter(pk__in={order.store_id for order in new_orders.values()}):
        at = min(plan.now, plan.live_ended_at) if store.code == TTS_MY.code else plan.now
        swept += stock_evaluate(store=store, now=at)
        swept += order_review_evaluate(store=store, now=at)
    for type, count in swept.raised_by_type.items():
        report.created["cases"] += count
        report.cases_by_type[type] += count
    batches = Case.objects.filter(type="quality_batch", opened_at__lte=plan.now).count()
    report.cases_by_type["quality_batch"] = batches
    for planned in plan.orders:
        key = (planned.store.code, planned.platform_order_id)
        if planned.case is None or planned.case.outcome is not None or key not in new_orders:
            continue
        spec = planned.case
        if spec.type == "oversold":
            case = Case.objects.filter(OPEN_CASE, order=new_orders[key], type=spec.type).first()
            if case is None:
                continue
        else:
            if key not in new_shipments:
                continue
            case = Case.objects.filter(OPEN_CASE, shipment=new_shipments[key], type=spec.type).first()
            if case is None:
                continue
        if spec.assigned_at is None:
            continue
        # The supervisor hands a few cases to the agent, who starts some: through the workspace's services.
        case_assign(case=case, assignee=users["agent"], actor=users["supervisor"], now=spec.assigned_at)
        report.created["cases assigned"] += 1
        if spec.started_at is not None:
            case_transition(
                case=case, to_status=CaseStatus.IN_PROGRESS, actor=users["agent"], now=spec.started_at
            )
            report.created["cases in progress"] += 1


# --- writing the history ------------------------------------------------------------------------------

PRIORITIES = {
    "low": Priority.LOW,
    "normal": Priority.NORMAL,
    "high": Priority.HIGH,
    "urgent": Priority.URGENT,
}
OPTION_LETTERS = {"wait": "A", "swap": "B", "refund": "C"}

# What buyers wrote, by complaint category and language.
COMPLAINT_TEXTS: dict[str, dict[str, tuple[str, ...]]] = {
    "not_received": {
        "en": (
            "Where is my parcel? The tracking has not changed for days.",
            "My order still has not arrived.",
        ),
        "ms": (
            "Parcel saya kat mana? Tracking tak bergerak dah berhari-hari.",
            "Barang saya belum sampai lagi.",
        ),
        "zh-hans": ("我的包裹到哪里了？物流好几天都没更新了。", "我的订单到现在还没收到。"),  # noqa: RUF001
        "th": ("พัสดุของฉันอยู่ไหนคะ สถานะไม่ขยับมาหลายวันแล้ว", "ยังไม่ได้รับของเลยค่ะ"),
    },
    "damaged": {
        "en": (
            "The bottle came cracked and the serum leaked all over the box.",
            "Item arrived damaged, see photos.",
        ),
        "ms": ("Botol sampai dah retak, serum tumpah dalam kotak.", "Barang sampai rosak, rujuk gambar."),
        "zh-hans": ("瓶子裂了，精华液漏得整个盒子都是。", "收到的商品破损了，请看照片。"),  # noqa: RUF001
        "th": ("ขวดแตกมาค่ะ เซรั่มหกเต็มกล่องเลย", "ได้รับสินค้าเสียหายค่ะ ดูรูปได้เลย"),
    },
    "other": {
        "en": (
            "Why has my order not been shipped yet? I paid two days ago.",
            "The courier never came, I was home.",
        ),
        "ms": (
            "Kenapa order saya belum dihantar lagi? Dah bayar dua hari lepas.",
            "Kurier tak datang pun, saya ada kat rumah.",
        ),
        "zh-hans": ("我两天前就付款了，为什么还没发货？", "快递员根本没来，我一直在家。"),  # noqa: RUF001
        "th": ("ทำไมยังไม่ส่งของคะ จ่ายเงินไปสองวันแล้ว", "ไม่เห็นมีคนมาส่งเลยค่ะ อยู่บ้านทั้งวัน"),
    },
}


def _message_values(case: Case, order: OrderPlan, out: Outcome, language: str) -> dict[str, str]:
    """The template's placeholders as they stood when the buyer was contacted."""
    shipment = order.shipment if case.shipment_id else None
    wording = OPTION_WORDING.get(language, OPTION_WORDING["en"])
    values = {
        "buyer_name": order.buyer.name,
        "order_id": order.platform_order_id,
        "tracking_number": shipment.tracking_number if shipment else "",
        "carrier": carrier_name(shipment.carrier, language=language) if shipment else "",
        "latest_checkpoint": out.checkpoint,
        "new_eta": ETA_UNKNOWN.get(language, ETA_UNKNOWN["en"]) if shipment else "",
        "restock_date": str(case.facts.get("restock_eta") or ""),
        "store_name": case.store.name,
    }
    for option in case.facts.get("options") or []:
        key = f"option_{option['key'].lower()}"
        if option["path"] == "wait":
            values[key] = wording["wait"].format(date=option["until"])
        elif option["path"] == "swap":
            names = [choices[0]["sku_name"] for choices in option["swap_for"].values() if choices]
            values[key] = wording["swap"].format(items=", ".join(names))
        else:
            values[key] = wording["refund"]
    return values


def _history_write(
    plan: DemoPlan,
    stores: dict[str, Store],
    skus: dict[tuple[str, str], SKU],
    new_orders: dict[tuple[str, str], Order],
    new_shipments: dict[tuple[str, str], Shipment],
    users: dict[str, AbstractBaseUser],
    report: SeedReport,
) -> list[Case]:
    """The history's cases, written as they happened: each with its timeline (raised, assigned, the message
    that made first contact, what the buyer wrote or chose, compensation proposed, approved and executed, the
    condition clearing, resolved, reopened and resolved again), its buyer messages, complaints, compensation
    and carrier claim. Bulk inserts, for new orders only (a rerun writes nothing). Returns the cases."""
    rows = [
        (order, (order.store.code, order.platform_order_id))
        for order in plan.orders
        if order.case is not None and order.case.outcome is not None
    ]
    rows = [(order, key) for order, key in rows if key in new_orders]
    if not rows:
        return []
    book = PolicyBook([store.pk for store in stores.values()])
    cases = []
    for order, key in rows:
        spec, out = order.case, order.case.outcome
        store = stores[order.store.code]
        contact_due, resolution_due = case_sla(
            type=spec.type, opened_at=spec.opened_at, thresholds=book.for_store(store.pk)
        )
        facts = dict(spec.facts)
        if isinstance(spec.summary, Text):
            facts[SUMMARY_KEY] = spec.summary.as_data()
        cases.append(
            Case(
                store=store, order=new_orders[key],
                shipment=None if spec.type in ORDER_LEVEL_TYPES else new_shipments.get(key),
                type=spec.type, status=CaseStatus.RESOLVED, priority=PRIORITIES[spec.priority],
                assignee=users[out.assignee] if out.assignee else None, summary=str(spec.summary)[:255],
                facts=facts, opened_at=spec.opened_at, first_contact_due_at=contact_due,
                resolution_due_at=resolution_due, due_at=resolution_due if out.contact_at else contact_due,
                first_contact_at=out.contact_at, resolved_at=out.resolved_at, resolution=out.resolution,
                fault_party=out.fault, buyer_choice=out.choice, buyer_choice_at=out.choice_at,
            )
        )  # fmt: skip
    Case.objects.bulk_create(cases, batch_size=500)

    templates: dict = {}
    messages: dict[int, BuyerMessage] = {}
    complaints: dict[int, Complaint] = {}
    compensations: dict[int, list[Compensation]] = defaultdict(list)
    claims: dict[int, Claim] = {}
    for case, (order, _key) in zip(cases, rows, strict=True):
        out = order.case.outcome
        if out.contact_at is not None:
            template, channel = proactive_template_for(case, cache=templates)
            if template is not None:
                values = _message_values(case, order, out, template.language)
                proactive = out.contact_by is None
                messages[case.pk] = BuyerMessage(
                    case=case, template=template, channel=channel, language=template.language,
                    recipient=order.buyer.email if channel == MessageChannel.EMAIL else order.buyer.platform_id,
                    subject=template_fill(template.subject, values, blank="")[:255] if channel == MessageChannel.EMAIL else "",
                    body=template_fill(template.body, values, blank=""), status=MessageStatus.SENT, attempts=1,
                    created_at=out.contact_at, sent_at=out.contact_at + timedelta(seconds=20),
                    created_by=None if proactive else users[out.contact_by],
                    idempotency_key=f"proactive:{case.pk}" if proactive else f"demo:{case.pk}:first-contact",
                )  # fmt: skip
        if out.complaint_at is not None:
            language = order.buyer.language if order.buyer.language in COMPLAINT_TEXTS["other"] else "en"
            texts = COMPLAINT_TEXTS[out.complaint_category][language]
            complaints[case.pk] = Complaint(
                store=case.store, order=case.order, case=case, channel="chat", text=texts[case.pk % len(texts)],
                received_at=out.complaint_at, language=language, category=out.complaint_category,
                confidence=0.86 + (case.pk % 12) / 100, routed="joined", created_at=out.complaint_at,
            )  # fmt: skip
        for n, comp in enumerate(out.compensations):
            compensations[case.pk].append(
                Compensation(
                    store=case.store, case=case, order=case.order, kind=comp.kind, status=CompensationStatus.EXECUTED,
                    origin=comp.origin, amount=comp.amount, currency=order.store.currency,
                    sku=skus.get((order.store.code, comp.sku_code)) if comp.sku_code else None,
                    replaces_shipment=case.shipment if comp.replaces_parcel else None,
                    idempotency_key=f"demo:{case.pk}:{n}", proposed_by=users[comp.proposer] if comp.proposer else None,
                    proposed_at=comp.proposed_at, approved_by=users[comp.approver] if comp.approver else None,
                    approved_at=comp.approved_at, executed_at=comp.executed_at,
                    platform_reference=f"RF{case.order.platform_order_id[-8:]}{n}",
                )
            )  # fmt: skip
        if out.claim is not None and case.shipment is not None:
            claim = out.claim
            claims[case.pk] = Claim(
                store=case.store, case=case, order=case.order, shipment=case.shipment, carrier=case.shipment.carrier,
                status=claim.status, amount_claimed=claim.amount, amount_recovered=claim.recovered,
                currency=order.store.currency, deadline=(case.opened_at + timedelta(days=30)).date(),
                reference=f"CLM-{case.shipment.tracking_number[-7:]}", created_by=users[out.assignee or "supervisor"],
                created_at=claim.created_at, submitted_at=claim.submitted_at, decided_at=claim.decided_at,
                paid_at=claim.paid_at,
            )  # fmt: skip
    BuyerMessage.objects.bulk_create(messages.values(), batch_size=500)
    Complaint.objects.bulk_create(complaints.values(), batch_size=500)
    Compensation.objects.bulk_create([c for group in compensations.values() for c in group], batch_size=500)
    Claim.objects.bulk_create(claims.values(), batch_size=500)

    events: list[CaseEvent] = []
    for case, (order, _key) in zip(cases, rows, strict=True):
        events += _history_timeline(
            case, order, users, message=messages.get(case.pk), complaint=complaints.get(case.pk),
            compensations=compensations.get(case.pk, []), claim=claims.get(case.pk),
        )  # fmt: skip
    CaseEvent.objects.bulk_create(events, batch_size=1000)
    report.created["history cases"] += len(cases)
    report.created["reopened"] += sum(1 for order, _ in rows if order.case.outcome.reopened_at)
    report.created["buyer messages"] += len(messages)
    report.created["complaints"] += len(complaints)
    report.created["compensations"] += sum(len(group) for group in compensations.values())
    report.created["claims"] += len(claims)
    report.created["case events"] += len(events)
    return cases


def _label_text(choices: type[models.TextChoices], value: str) -> Text:
    """A choice's label as a Text parameter, kept in English (as cases.compensation keeps it)."""
    with translation.override("en"):
        return Text(str(dict(choices.choices).get(value, value)))


def _history_timeline(
    case: Case,
    order: OrderPlan,
    users: dict[str, AbstractBaseUser],
    *,
    message: BuyerMessage | None,
    complaint: Complaint | None,
    compensations: list[Compensation],
    claim: Claim | None,
) -> list[CaseEvent]:
    """The case's timeline entries, as the services write them."""
    spec, out = order.case, order.case.outcome
    events: list[CaseEvent] = []

    def add(kind: str, at: datetime, actor: AbstractBaseUser | None = None, message: str | Text = "",
            data: dict[str, Any] | None = None) -> None:  # fmt: skip
        events.append(CaseEvent(
            case=case, kind=kind, actor=actor, created_at=at, message=str(message),
            data=event_data(message, data) if isinstance(message, Text) else (data or {}),
        ))  # fmt: skip

    facts = {key: value for key, value in spec.facts.items() if key != SUMMARY_KEY}
    add(
        CaseEventKind.RAISED,
        spec.opened_at,
        message=spec.summary,
        data={"facts": facts, "trigger_event_ids": []},
    )
    agent = users[out.assignee] if out.assignee else None
    if out.assigned_at is not None and agent is not None:
        add(CaseEventKind.ASSIGNED, out.assigned_at, users["supervisor"],
            data={"from": None, "to": agent.pk, "to_name": agent.get_username()})  # fmt: skip
    if out.started_at is not None:
        add(CaseEventKind.STATUS_CHANGED, out.started_at, agent, data={"from": "new", "to": "in_progress"})
    if message is not None:
        add(CaseEventKind.MESSAGE_QUEUED, message.created_at, message.created_by, message.body[:500], {
            "message_id": message.pk, "template_id": message.template_id, "template": message.template.name,
            "channel": message.channel, "language": message.language, "first_contact": True,
            "proactive": message.created_by is None,
        })  # fmt: skip
        add(CaseEventKind.MESSAGE_SENT, message.sent_at, message.created_by, message.body[:500],
            {"message_id": message.pk, "channel": message.channel, "attempts": 1})  # fmt: skip
    if complaint is not None:
        chased = complaint.category == "not_received"
        add(CaseEventKind.COMPLAINT, complaint.received_at, None, Text(CHASED if chased else COMPLAINED, text=complaint.text), {
            "complaint_id": complaint.pk, "channel": complaint.channel, "language": complaint.language,
            "category": complaint.category, "confidence": complaint.confidence, "words": [], "external_id": "",
            "attachments": [],
        })  # fmt: skip
    if out.choice and out.choice_at is not None:
        add(CaseEventKind.BUYER_REPLIED, out.choice_at, agent, OPTION_LETTERS[out.choice],
            {"source": "agent", "option": out.choice, "external_id": "", "received_at": out.choice_at.isoformat()})  # fmt: skip
    for comp in compensations:
        kind = _label_text(CompensationKind, comp.kind)
        money = {"kind": kind, "amount": str(comp.amount), "currency": comp.currency}
        base = {
            "compensation_id": comp.pk,
            "kind": comp.kind,
            "amount": str(comp.amount),
            "currency": comp.currency,
        }
        add(CaseEventKind.COMPENSATION, comp.proposed_at, comp.proposed_by,
            Text(gettext_noop("Proposed %(kind)s: %(amount)s %(currency)s."), **money),
            {**base, "status": CompensationStatus.PROPOSED, "reason": ""})  # fmt: skip
        add(CaseEventKind.COMPENSATION, comp.approved_at, comp.approved_by,
            Text(gettext_noop("Approved %(kind)s: %(amount)s %(currency)s."), **money),
            {**base, "status": CompensationStatus.APPROVED})  # fmt: skip
        add(CaseEventKind.COMPENSATION, comp.executed_at, None,
            Text(gettext_noop("Executed %(kind)s on the platform. %(reference)s"), kind=kind,
                 reference=comp.platform_reference),
            {**base, "status": CompensationStatus.EXECUTED, "reference": comp.platform_reference})  # fmt: skip
    taken = out.started_at is not None
    if out.cleared_at is not None:
        reason = CLEARED_REASONS.get(case.type, CLEARED_OTHERWISE)
        add(CaseEventKind.CONDITION_CLEARED, out.cleared_at, None, reason, {"auto_resolved": not taken})
    resolver = users[out.resolved_by] if out.resolved_by else None
    if out.reopened_at is not None and out.first_resolved_at is not None:
        add(CaseEventKind.RESOLVED, out.first_resolved_at, resolver,
            data={"from": "in_progress", "to": "resolved", "resolution": out.resolution})  # fmt: skip
        add(CaseEventKind.REOPENED, out.reopened_at, resolver,
            data={"from": "resolved", "to": "in_progress", "resolution": out.resolution})  # fmt: skip
    if resolver is None:
        add(CaseEventKind.RESOLVED, out.resolved_at, None, CLEARED_REASONS.get(case.type, CLEARED_OTHERWISE),
            {"from": "new", "to": "resolved", "resolution": out.resolution})  # fmt: skip
    else:
        add(CaseEventKind.RESOLVED, out.resolved_at, resolver,
            data={"from": "in_progress" if taken else "new", "to": "resolved", "resolution": out.resolution})  # fmt: skip
    if claim is not None:
        add(CaseEventKind.UPDATED, claim.created_at, claim.created_by, CLAIM_OPENED,
            {"claim_id": claim.pk, "amount": str(claim.amount_claimed), "carrier": claim.carrier})  # fmt: skip
        moves = [("submitted", claim.submitted_at)]
        if claim.decided_at is not None:
            moves.append(("rejected" if claim.status == "rejected" else "accepted", claim.decided_at))
        if claim.paid_at is not None:
            moves.append(("paid", claim.paid_at))
        for status, at in moves:
            add(CaseEventKind.UPDATED, at, users["supervisor"], Text(CLAIM_MOVED, status=_label_text(ClaimStatus, status)),
                {"claim_id": claim.pk, "status": status,
                 "recovered": str(claim.amount_recovered if status == "paid" else Decimal("0.00"))})  # fmt: skip
    return events


def _appeal_history_ensure(
    store: Store, cases: list[Case], users: dict[str, AbstractBaseUser], plan: DemoPlan, report: SeedReport
) -> None:
    """An appeal of weeks ago, decided: the carrier's no-shows behind a few late pickups, won, with the
    penalty it avoided. Written with the history's cases (so once)."""
    from cases.appeals import appeal_create, appeal_outcome, appeal_scenarios_ensure
    from cases.models import AppealScenario

    late = sorted(
        (c for c in cases if c.store_id == store.pk and c.type == "pickup_overdue"), key=lambda c: c.opened_at
    )[:3]
    if not late:
        return
    appeal_scenarios_ensure()
    created = max(c.resolved_at or c.opened_at for c in late) + timedelta(hours=20)
    submitted, decided = created + timedelta(hours=26), created + timedelta(days=6)
    if decided >= plan.now - timedelta(hours=1):
        return
    scenario = AppealScenario.objects.get(store__isnull=True, code="tts-late-dispatch-b")
    supervisor = users["supervisor"]
    appeal = appeal_create(store=store, scenario=scenario, cases=late, actor=supervisor, now=created)
    appeal_outcome(appeal=appeal, actor=supervisor, submitted=True, now=submitted)
    appeal_outcome(appeal=appeal, actor=supervisor, decision="won", penalty_avoided="180.00", now=decided)
    report.created["appeals"] += 1


def _past_review_ensure(session: LiveSession, report: SeedReport) -> None:
    """The past live session's review, as the worker's schedule wrote it 48 h after the session ended and
    emailed the supervisors (so the schedule neither writes it again nor emails the demo's users)."""
    from cases.reporting.models import LiveReview
    from cases.reporting.review import REVIEW_AFTER, live_review_write

    if session.ended_at is None or LiveReview.objects.filter(live_session=session).exists():
        return
    written = session.ended_at + REVIEW_AFTER + timedelta(minutes=7)
    review = live_review_write(session=session, actor=None, now=written)
    LiveReview.objects.filter(pk=review.pk).update(notified_at=written + timedelta(minutes=1))
    report.created["live reviews"] += 1
