"""The fault drill: a livestream's worth of signed provider pushes while the worker is killed and the database
restarts, then a check that nothing was lost, doubled or left half done.

The stream (default 100,000 pushes over 20,000 parcels, 4 of 5 parcels on an AfterShip connection, 1 of 5 on
17TRACK) is what providers really send: one push per new scan, scans out of order (a later scan pushed before
an earlier one), redeliveries of a push already sent (AfterShip: the same event id; 17TRACK: the same body,
it sends no id) and full-trace re-pushes (every scan so far, under a new event id). It goes at a steady rate
to the real webhook (gunicorn, 2 workers) with each provider's real signature. The client behaves like a
provider: a 503 or a broken connection is retried later with the same payload, only a 2xx counts.

Meanwhile the django-q2 worker (`manage.py qcluster`, started by the drill) is killed with SIGKILL, its whole
process tree, at random moments and started again, and PostgreSQL (a private cluster) is restarted.

Then, with the worker drained, the checks: every acknowledged push stored once, the events the distinct
scans sent, one open case per problem, one proactive message per case sent once, nothing left unprocessed,
every shipment's summary equal to a rebuild from its events.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import itertools
import json
import random
import secrets
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.management import call_command
from django.db import connection as db
from django.db import connections, transaction
from django.db.models import Count, Q
from django.utils import timezone

from cases.choices import CaseEventKind, MessageStatus
from cases.message_defaults import default_templates_ensure
from cases.models import OPEN_CASE, BuyerMessage, Case, CaseEvent
from portal.bench.http import Server, wsgi_server
from portal.bench.tracking import _ENDINGS, _OPENING, _PLACES, LOCAL, SLUG
from portal.choices import Platform
from portal.drills import DrillDatabase, Report, Worker, running_worker, subprocess_env
from portal.models import Store
from tracking.choices import DeliveryStatus, OrderStatus
from tracking.ingest import MAX_DELIVERY_ATTEMPTS
from tracking.models import Order, Shipment, TrackingConnection, TrackingEvent, WebhookDelivery
from tracking.providers._parsing import hmac_sha256_base64
from tracking.services import shipments_summary_refresh

CONCURRENCY = 16  # provider-side senders; gunicorn serves 2 workers x 4 threads
RETRY_CAP_SECONDS = 1.0  # a provider waits Retry-After (5 s); the drill waits at most this, to stay short
MAX_TRIES = 60  # per push, then the push counts as given up (a failed check)
SEVENTEEN_EVERY = 5  # every 5th parcel is on the 17TRACK connection
OUT_OF_ORDER_SHARE = 0.3  # parcels whose two adjacent scans are pushed the wrong way round
DUPLICATE_SHARE = 0.5  # of the extra pushes: a redelivery; the rest are full-trace re-pushes
STARTUP_SECONDS = 15.0  # a worker exit sooner than this after its start is a failed start, not a death
SUMMARY_FIELDS = ("status", "substatus", "last_event_at", "last_progress_at", "accepted_at", "delivered_at")
# AfterShip subtag -> the 17TRACK sub-status that maps back onto it (tracking.providers.seventeentrack).
_SEVENTEEN = {
    "InfoReceived_001": "InfoReceived",
    "InTransit_002": "InTransit_PickedUp",
    "InTransit_003": "InTransit_Other",
    "Delivered_001": "Delivered_Other",
    "OutForDelivery_001": "OutForDelivery_Other",
    "AttemptFail_002": "DeliveryFailure_NoBody",
    "InTransit_007": "InTransit_Departure",
    "Exception_013": "Exception_Lost",
}


@dataclass(frozen=True)
class FaultOptions:
    events: int = 100_000
    parcels: int = 20_000
    kills: int = 20
    restarts: int = 5
    rate: float = 400.0
    seed: int = 1
    drain_timeout: float = 600.0


# --- the stream ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Parcel:
    index: int
    seventeen: bool
    tracking_number: str
    order_number: str
    booked_at: datetime

    @property
    def scans(self) -> tuple[tuple, ...]:
        return (*_OPENING, _ENDINGS[self.index % len(_ENDINGS)])


@dataclass(frozen=True)
class _Push:
    parcel: int
    scans: tuple[int, ...]  # which of the parcel's scans it carries
    event_id: str  # AfterShip's; '' for 17TRACK (which sends none)


@dataclass
class PushStream:
    parcels: list[_Parcel]
    pushes: list[_Push]  # in sending order
    duplicates: int = 0
    full_traces: int = 0
    out_of_order: int = 0


def stream_plan(options: FaultOptions, parcels: list[_Parcel], rng: random.Random) -> PushStream:
    """Each parcel's pushes (one per scan, then redeliveries and full traces), spread over the run in their
    own order except where two scans are deliberately swapped."""
    stream = PushStream(parcels, [])
    counts = [1] * len(parcels)
    for _ in range(
        options.events - len(parcels)
    ):  # the remaining budget, a push at a time, to random parcels
        counts[rng.randrange(len(parcels))] += 1
    keyed: list[tuple[float, _Push]] = []
    for parcel, count in zip(parcels, counts, strict=True):
        scans = len(parcel.scans)
        own: list[_Push] = []
        if count < scans:  # too few pushes for one a scan: the earlier ones alone, the last the rest
            own += [_Push(parcel.index, (k,), _event_id(parcel)) for k in range(count - 1)]
            own.append(_Push(parcel.index, tuple(range(count - 1, scans)), _event_id(parcel)))
        else:
            own += [_Push(parcel.index, (k,), _event_id(parcel)) for k in range(scans)]
            if scans > 1 and rng.random() < OUT_OF_ORDER_SHARE:
                k = rng.randrange(scans - 1)
                own[k], own[k + 1] = own[k + 1], own[k]
                stream.out_of_order += 1
            for _ in range(count - scans):
                if rng.random() < DUPLICATE_SHARE:
                    own.append(rng.choice(own))  # a redelivery: the very same push again
                    stream.duplicates += 1
                else:
                    own.append(_Push(parcel.index, tuple(range(scans)), _event_id(parcel)))
                    stream.full_traces += 1
        moments = sorted(rng.random() for _ in own)
        keyed += zip(moments, own, strict=True)
    keyed.sort(key=lambda pair: pair[0])
    stream.pushes = [push for _, push in keyed]
    return stream


def _event_id(parcel: _Parcel) -> str:
    return "" if parcel.seventeen else secrets.token_hex(16)


def _aftership_body(parcel: _Parcel, push: _Push) -> bytes:
    checkpoints = []
    for k in push.scans:
        tag, subtag, raw, text, hours = parcel.scans[k]
        when = (parcel.booked_at + timedelta(hours=hours)).astimezone(LOCAL)
        location, city, state = _PLACES[(parcel.index + k) % len(_PLACES)]
        checkpoints.append({
            "slug": SLUG, "checkpoint_time": when.isoformat(), "created_at": when.astimezone(UTC).isoformat(),
            "message": text, "location": location, "city": city, "state": state, "country_iso3": "MYS",
            "tag": tag, "subtag": subtag, "subtag_message": text, "raw_tag": raw,
        })  # fmt: skip
    last = max(checkpoints, key=lambda c: c["checkpoint_time"])
    document = {
        "event": "tracking_update",
        "event_id": push.event_id,
        "is_tracking_first_tag": False,
        "ts": int(parcel.booked_at.timestamp()) + 3600 * max(push.scans),
        "msg": {
            "id": f"as-trk-{parcel.index:012d}", "tracking_number": parcel.tracking_number, "slug": SLUG,
            "order_id": f"TTS-{parcel.order_number}", "order_number": parcel.order_number,
            "origin_country_iso3": "MYS", "destination_country_iso3": "MYS",
            "tag": last["tag"], "subtag": last["subtag"], "subtag_message": last["subtag_message"],
            "checkpoints": checkpoints,
        },
    }  # fmt: skip
    return json.dumps(document, ensure_ascii=False).encode()


def _seventeen_body(parcel: _Parcel, push: _Push) -> bytes:
    events = []
    for k in push.scans:
        _tag, subtag, _raw, text, hours = parcel.scans[k]
        when = parcel.booked_at + timedelta(hours=hours)
        location, _city, state = _PLACES[(parcel.index + k) % len(_PLACES)]
        events.append({
            "time_iso": when.astimezone(LOCAL).isoformat(), "time_utc": when.astimezone(UTC).isoformat(),
            "description": text, "location": f"{location}, {state}", "stage": None,
            "sub_status": _SEVENTEEN[subtag],
        })  # fmt: skip
    events.sort(key=lambda e: e["time_utc"], reverse=True)  # 17TRACK lists newest first
    latest = events[0]["sub_status"]
    document = {
        "event": "TRACKING_UPDATED",
        "data": {
            "number": parcel.tracking_number, "carrier": 100271, "tag": f"TTS-{parcel.order_number}",
            "track_info": {
                "latest_status": {"status": latest.split("_")[0], "sub_status": latest},
                "tracking": {"providers": [{"provider": {"key": 100271, "name": "J&T Express (MY)"}, "events": events}]},
            },
        },
    }  # fmt: skip
    return json.dumps(document, ensure_ascii=False).encode()


# --- setup --------------------------------------------------------------------------------------------
@dataclass
class DrillSetup:
    aftership: TrackingConnection
    seventeen: TrackingConnection
    parcels: list[_Parcel]
    shipment_ids: dict[str, int]  # tracking number -> shipment id


def drill_setup(options: FaultOptions) -> DrillSetup:
    """Two stores, one connection each (pushes only: no polling, no registration calls out), orders and
    shipments for the parcels, the default message templates and the production schedules."""
    now = timezone.now().replace(microsecond=0)
    stores = Store.objects.bulk_create([
        Store(code=f"drill-{name}", name=f"Drill shop {name}", platform=Platform.TIKTOK_SHOP, region="MY",
              currency="MYR", timezone="Asia/Kuala_Lumpur")
        for name in ("aftership", "17track")
    ])  # fmt: skip
    aftership = TrackingConnection.objects.create(
        store=stores[0], provider="aftership", webhook_secret=secrets.token_urlsafe(24), pull_enabled=False
    )
    seventeen = TrackingConnection.objects.create(
        store=stores[1], provider="17track", webhook_secret=secrets.token_urlsafe(24), pull_enabled=False,
        register_parcels=False, credentials={"api_key": secrets.token_hex(16)},
    )  # fmt: skip
    start = now - timedelta(days=3)
    parcels = [
        _Parcel(
            index=i,
            seventeen=i % SEVENTEEN_EVERY == SEVENTEEN_EVERY - 1,
            tracking_number=f"JT6{i:012d}",
            order_number=f"58{i:010d}",
            booked_at=start + timedelta(seconds=i, hours=2),
        )
        for i in range(options.parcels)
    ]
    orders = Order.objects.bulk_create(
        [
            Order(
                store=stores[1] if p.seventeen else stores[0],
                platform_order_id=p.order_number,
                buyer_name=f"Buyer {p.index}",
                country="MY",
                placed_at=start + timedelta(seconds=p.index),
                ship_by=start + timedelta(seconds=p.index, hours=48),
                amount=Decimal("59.90"),
                currency="MYR",
                status=OrderStatus.SHIPPED,
            )
            for p in parcels
        ],
        batch_size=5_000,
    )
    shipments = Shipment.objects.bulk_create(
        [
            Shipment(
                store_id=order.store_id,
                order=order,
                carrier=SLUG,
                tracking_number=p.tracking_number,
                booked_at=p.booked_at,
                next_poll_at=None,
            )
            for p, order in zip(parcels, orders, strict=True)
        ],
        batch_size=5_000,
    )
    default_templates_ensure()
    call_command("setup_schedules", stdout=io.StringIO())
    with db.cursor() as cursor:
        cursor.execute("ANALYZE")
    return DrillSetup(aftership, seventeen, parcels, {s.tracking_number: s.pk for s in shipments})


# --- sending ------------------------------------------------------------------------------------------
@dataclass
class PushesSent:
    """What the provider side saw, counted client-side."""

    accepted: int = 0
    gave_up: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    without_retry_after: int = 0  # 503s that did not say when to come back
    first_unexpected: str = ""
    delivery_ids: set[int] = field(default_factory=set)  # the ids the 2xx answers named
    event_ids: set[str] = field(default_factory=set)  # AfterShip event ids acknowledged
    seventeen_accepted: int = 0  # 17TRACK pushes acknowledged (each is a row: it sends no event id)
    scans: set[tuple[int, int]] = field(default_factory=set)  # (parcel, scan) acknowledged at least once
    latencies: list[float] = field(default_factory=list)  # seconds, of every answered request
    lock: threading.Lock = field(default_factory=threading.Lock)


def pushes_send(server: Server, setup: DrillSetup, stream: PushStream, rate: float) -> PushesSent:
    """Every push of the stream, paced at `rate` pushes/s from CONCURRENCY senders, each retried until a 2xx."""
    sent = PushesSent()
    counter = itertools.count()
    started = time.monotonic()

    def request_for(push: _Push) -> tuple[str, bytes, dict[str, str]]:
        """The push's request; the same bytes every time, so a redelivery is the very same push."""
        parcel = setup.parcels[push.parcel]
        if parcel.seventeen:
            body = _seventeen_body(parcel, push)
            key = setup.seventeen.credentials["api_key"]
            signature = hashlib.sha256(body + b"/" + key.encode()).hexdigest()
            return setup.seventeen.webhook_path, body, {"Content-Type": "application/json", "sign": signature}
        body = _aftership_body(parcel, push)
        signature = hmac_sha256_base64(setup.aftership.webhook_secret, body)
        headers = {"Content-Type": "application/json", "aftership-hmac-sha256": signature}
        return setup.aftership.webhook_path, body, headers

    def sender() -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        while True:
            index = next(counter)
            if index >= len(stream.pushes):
                break
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            push = stream.pushes[index]
            path, body, headers = request_for(push)
            for _ in range(MAX_TRIES):
                try:
                    asked = time.monotonic()
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                    answered = time.monotonic() - asked
                except (OSError, http.client.HTTPException):
                    with sent.lock:
                        sent.connection_errors += 1
                    conn.close()
                    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
                    time.sleep(RETRY_CAP_SECONDS)
                    continue
                status = response.status
                with sent.lock:
                    sent.statuses[status] += 1
                    sent.latencies.append(answered)
                if 200 <= status < 300:
                    _acknowledged(sent, setup, push, payload)
                    break
                retry_after = response.getheader("Retry-After")
                with sent.lock:
                    if status != 503:
                        sent.first_unexpected = sent.first_unexpected or f"HTTP {status}: {payload[:200]!r}"
                    elif not retry_after:
                        sent.without_retry_after += 1
                if status not in (503, 429):
                    break  # a provider gives up on a 4xx or a 500 too (and the check fails)
                time.sleep(min(RETRY_CAP_SECONDS, float(retry_after or RETRY_CAP_SECONDS)))
            else:
                with sent.lock:
                    sent.gave_up += 1
        conn.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def _acknowledged(sent: PushesSent, setup: DrillSetup, push: _Push, payload: bytes) -> None:
    delivery = json.loads(payload).get("delivery")
    with sent.lock:
        sent.accepted += 1
        if isinstance(delivery, int):
            sent.delivery_ids.add(delivery)
        if push.event_id:
            sent.event_ids.add(push.event_id)
        else:
            sent.seventeen_accepted += 1
        sent.scans.update((push.parcel, k) for k in push.scans)


# --- faults -------------------------------------------------------------------------------------------
@dataclass
class _Chaos:
    kills: int = 0
    restarts: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _chaos(
    *, database: DrillDatabase, worker: Worker, options: FaultOptions, duration: float, rng: random.Random,
    done: threading.Event, log: Callable[[str], None],
) -> _Chaos:  # fmt: skip
    """Kill the worker and restart the database at random moments within the sending's expected length,
    and start the worker again whenever it died by itself."""
    chaos = _Chaos()
    restarts = options.restarts if database.private else 0
    moments = [(rng.uniform(0.05, 0.95) * duration, "kill") for _ in range(options.kills)]
    moments += [(rng.uniform(0.05, 0.95) * duration, "restart") for _ in range(restarts)]
    moments.sort()
    started = time.monotonic()
    for at, what in moments:
        while time.monotonic() - started < at:
            worker.check()
            time.sleep(0.2)
        if what == "kill":
            worker.kill()
            chaos.kills += 1
            time.sleep(rng.uniform(0.0, 1.0))  # a supervisor takes a moment to notice
            worker.start()
        else:
            try:
                chaos.restart_seconds.append(database.cluster.restart())
                chaos.restarts += 1
            except subprocess.CalledProcessError as exc:  # reported, and the count falls short of the plan
                chaos.errors.append(f"pg_ctl restart failed: {(exc.stderr or exc)!s:.300}")
        log(f"  {time.monotonic() - started:6.1f}s  {what} ({chaos.kills} kills, {chaos.restarts} restarts)")
    while not done.is_set():
        worker.check()
        time.sleep(0.2)
    return chaos


# --- draining -----------------------------------------------------------------------------------------
def _pending() -> dict[str, int]:
    """Work the worker still has to do, by kind (0 everywhere: drained)."""
    now = timezone.now()
    from django_q.conf import Conf
    from django_q.models import OrmQ

    return {
        "deliveries": WebhookDelivery.objects.filter(
            Q(status=DeliveryStatus.RECEIVED)
            | Q(status=DeliveryStatus.FAILED, attempts__lt=MAX_DELIVERY_ATTEMPTS)
        ).count(),
        "rule checks": Shipment.objects.filter(next_check_at__lte=now).count(),
        "messages": BuyerMessage.objects.filter(status=MessageStatus.QUEUED).count(),
        # Waiting to be taken: django-q2's ORM broker locks a task by setting `lock` to when it was taken.
        "queued tasks": OrmQ.objects.filter(lock__lt=now - timedelta(seconds=Conf.RETRY)).count(),
    }


def worker_drain(
    worker: Worker, *, timeout: float, log: Callable[[str], None]
) -> tuple[bool, float, dict[str, int]]:
    """Wait until the worker has done everything; True when it did within `timeout`. A task held by a
    killed worker is offered again only after Q_CLUSTER's retry (3 minutes): in the meantime the drill wakes
    the sweeps itself every few seconds, as the production schedules do every minute."""
    from django_q.tasks import async_task

    started = time.monotonic()
    pending: dict[str, int] = {}
    last_nudge = last_report = 0.0
    while time.monotonic() - started < timeout:
        worker.check()
        connections.close_all()
        pending = _pending()
        if not any(pending.values()):
            return True, time.monotonic() - started, pending
        if time.monotonic() - last_report > 10:
            log(f"  draining, {time.monotonic() - started:.0f}s: {pending}")
            last_report = time.monotonic()
        if time.monotonic() - last_nudge > 5 and not pending["queued tasks"]:
            for func in (
                "tracking.tasks.process_deliveries",
                "cases.tasks.evaluate_due",
                "cases.tasks.deliver_messages",
            ):
                async_task(func, task_name=f"{func} (drill)")
            last_nudge = time.monotonic()
        time.sleep(1.0)
    log(f"  not drained after {timeout:.0f}s: {pending}")
    return False, time.monotonic() - started, pending


# --- checks -------------------------------------------------------------------------------------------
@dataclass
class FaultResult:
    report: Report
    summary: str

    @property
    def ok(self) -> bool:
        return not self.report.failed


def run(options: FaultOptions, database: DrillDatabase, log: Callable[[str], None]) -> FaultResult:
    rng = random.Random(options.seed)
    began = time.monotonic()
    setup = drill_setup(options)
    stream = stream_plan(options, setup.parcels, rng)
    log(
        f"  setup: {len(setup.parcels):,} parcels, {len(stream.pushes):,} pushes planned "
        f"({stream.duplicates:,} redeliveries, {stream.full_traces:,} full-trace re-pushes, "
        f"{stream.out_of_order:,} parcels with scans out of order) in {time.monotonic() - began:.1f}s"
    )
    duration = len(stream.pushes) / options.rate
    connections.close_all()  # the subprocesses and the restarts must not find a session of ours mid-way
    with (
        wsgi_server(
            database_url=database.url, workers=2, threads=4, extra_env=subprocess_env(database.url)
        ) as server,
        running_worker(database.url) as worker,
    ):
        done = threading.Event()
        chaos_result: list[_Chaos] = []
        chaos = threading.Thread(
            target=lambda: chaos_result.append(
                _chaos(
                    database=database,
                    worker=worker,
                    options=options,
                    duration=duration,
                    rng=rng,
                    done=done,
                    log=log,
                )
            ),
            daemon=True,
        )
        sending_started = time.monotonic()
        chaos.start()
        sent = pushes_send(server, setup, stream, options.rate)
        sending = time.monotonic() - sending_started
        done.set()
        chaos.join()
        log(
            f"  sent {len(stream.pushes):,} pushes in {sending:.0f}s ({len(stream.pushes) / sending:,.0f}/s); draining"
        )
        drained, drain_seconds, pending = worker_drain(worker, timeout=options.drain_timeout, log=log)
        worker_log = worker.tail()
        unexpected = list(worker.unexpected_exits)
    connections.close_all()
    result = _check(options, database, setup, stream, sent, chaos_result[0], drained, pending)
    report = result.report
    report.notes.append(
        f"sending {sending:.0f}s at {options.rate:g} pushes/s planned ({len(stream.pushes) / sending:,.0f}/s "
        f"achieved); drained {drain_seconds:.0f}s after; total {time.monotonic() - began:.0f}s"
    )
    # A cluster started while the database is down exits at once (django-q2's sentinel cannot start): the
    # drill restarts it, as a process supervisor would. One that was running must ride the outage out.
    running = [(code, up) for code, up in unexpected if up > STARTUP_SECONDS]
    report.check("running worker died by itself", 0, len(running))
    if unexpected:
        report.notes.append(
            f"qcluster exited by itself {len(unexpected)} times (exit code, seconds it had run: "
            + ", ".join(f"{code}/{up:.0f}s" for code, up in unexpected)
            + "); restarted each time"
        )
    if running:
        report.notes.append(f"qcluster log tail:\n{worker_log}")
    return result


def _check(
    options: FaultOptions, database: DrillDatabase, setup: DrillSetup, stream: PushStream, sent: PushesSent, chaos: _Chaos,
    drained: bool, pending: dict[str, int],
) -> FaultResult:  # fmt: skip
    report = Report(
        f"fault drill: {len(stream.pushes):,} pushes over {len(setup.parcels):,} parcels, "
        f"{chaos.kills} worker kills, {chaos.restarts} database restarts"
    )
    if not database.private:
        report.notes.append(
            "on DATABASE_URL's server: the database restarts were skipped (no private cluster)"
        )
    planned = options.restarts if database.private else 0
    report.check("database restarts done", planned, chaos.restarts)
    report.notes += chaos.errors
    if chaos.restart_seconds:
        report.notes.append("database restarts took " + ", ".join(f"{s:.1f}s" for s in chaos.restart_seconds))
    unexpected_statuses = {s: n for s, n in sent.statuses.items() if not (200 <= s < 300 or s == 503)}
    report.check("pushes acknowledged (2xx), in the end", len(stream.pushes), sent.accepted)
    report.check("pushes given up after retries", 0, sent.gave_up)
    report.check("answers other than 2xx or 503", 0, sum(unexpected_statuses.values()))
    report.check("503s without Retry-After", 0, sent.without_retry_after)
    report.notes.append(
        f"answers: {dict(sorted(sent.statuses.items()))}, connection errors {sent.connection_errors}"
        + (f"; first unexpected: {sent.first_unexpected}" if sent.first_unexpected else "")
    )
    report.check("worker drained within the timeout", True, drained)
    if not drained:
        report.notes.append(f"still pending: {pending}")

    # Deliveries: every acknowledged push is a row, and no row is there that no 2xx acknowledged.
    stored = dict(WebhookDelivery.objects.values_list("pk", "connection_id"))
    missing = len(sent.delivery_ids - stored.keys())
    report.check("acknowledged pushes without their stored delivery", 0, missing)
    report.check("deliveries stored = distinct pushes acknowledged", len(sent.delivery_ids), len(stored))
    aftership_ids = set(
        WebhookDelivery.objects.filter(connection=setup.aftership).values_list("event_id", flat=True)
    )
    report.check("AfterShip event ids stored = acknowledged", len(sent.event_ids), len(aftership_ids),
                 passed=aftership_ids == sent.event_ids)  # fmt: skip
    seventeen_rows = sum(1 for c in stored.values() if c == setup.seventeen.pk)
    report.check("17TRACK deliveries stored = acknowledged", sent.seventeen_accepted, seventeen_rows)
    left = WebhookDelivery.objects.exclude(status=DeliveryStatus.PROCESSED).count()
    report.check("deliveries not processed (received/failed)", 0, left)

    # Events: the distinct scans sent, no more, no fewer.
    expected: Counter[int] = Counter()
    for parcel_index, _k in sent.scans:
        expected[setup.shipment_ids[setup.parcels[parcel_index].tracking_number]] += 1
    actual = Counter(
        dict(
            TrackingEvent.objects.values_list("shipment").annotate(n=Count("pk")).values_list("shipment", "n")
        )
    )
    lost = sum(max(0, n - actual.get(pk, 0)) for pk, n in expected.items())
    extra = sum(max(0, n - expected.get(pk, 0)) for pk, n in actual.items())
    doubled = (
        TrackingEvent.objects.values("shipment", "checkpoint_at", "subtag")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    report.check(
        "tracking events = distinct scans acknowledged", sum(expected.values()), sum(actual.values())
    )
    report.check("scans lost", 0, lost)
    report.check("scans duplicated", 0, extra + doubled)

    # Cases and messages.
    duplicate_cases = (
        Case.objects.filter(OPEN_CASE, shipment__isnull=False)
        .values("shipment", "type")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    proactive = BuyerMessage.objects.filter(idempotency_key__startswith="proactive:")
    duplicate_messages = proactive.values("case", "template").annotate(n=Count("pk")).filter(n__gt=1).count()
    sent_events = Counter(
        CaseEvent.objects.filter(kind=CaseEventKind.MESSAGE_SENT, data__message_id__in=list(proactive.values_list("pk", flat=True)))
        .values_list("data__message_id", flat=True)
    )  # fmt: skip
    sent_twice = sum(1 for n in sent_events.values() if n > 1)
    unsent = proactive.exclude(status=MessageStatus.SENT).count()
    cases = Case.objects.count()
    report.check("duplicate open cases per (shipment, type)", 0, duplicate_cases)
    report.check("duplicate proactive messages per (case, template)", 0, duplicate_messages + sent_twice)
    report.check("proactive messages not sent", 0, unsent)
    report.notes.append(
        f"{cases:,} cases opened ({Case.objects.filter(OPEN_CASE).count():,} open), {proactive.count():,} proactive "
        "messages"
    )

    # Summaries: what the ingest folded in equals a rebuild from all the events.
    ids = list(setup.shipment_ids.values())
    before = {
        row[0]: row[1:] for row in Shipment.objects.filter(pk__in=ids).values_list("pk", *SUMMARY_FIELDS)
    }
    with transaction.atomic():
        shipments_summary_refresh(shipment_ids=ids)
        after = {
            row[0]: row[1:] for row in Shipment.objects.filter(pk__in=ids).values_list("pk", *SUMMARY_FIELDS)
        }
        transaction.set_rollback(True)
    differ = sum(1 for pk in ids if before[pk] != after[pk])
    report.check("shipment summaries differing from a rebuild", 0, differ)

    summary = (
        f"{len(stream.pushes):,} events, {chaos.kills} worker kills, {chaos.restarts} database restarts: "
        f"{lost} lost, {extra + doubled} duplicated, {duplicate_cases} duplicate cases, "
        f"{duplicate_messages + sent_twice} duplicate messages"
    )
    return FaultResult(report, summary)
