"""The scale-out configuration end to end: two gunicorn workers and TWO `manage.py qcluster` processes on one
PostgreSQL database and one Redis (django-q2's broker and the shared cache), as a deployment that adds
worker machines runs.

Signed AfterShip pushes (the provider's documented body and HMAC signature) for 200 parcels whose last scan
is a failed delivery or a lost parcel reach the real webhook, each sent two or three times, some copies at
the same moment from different client threads. Both clusters take tasks from the one Redis queue; the test
also wakes the delivery, rule and outbox tasks every half second (what the production schedules do every
minute) so both clusters really run the same steps at once. Then, exactly once: each push stored once, each
scan one tracking event, one case per parcel, one proactive buyer message per case, sent once and posted
to the storefront once, no django-q2 task failed, and each cluster did part of the work.

django-q2's Redis broker hands a task to one cluster (BLPOP) but never acknowledges it, and the same step
is woken many times over: exactly-once results come from the project's own claims (SKIP LOCKED) and
idempotency keys, which is what this proves.

Needs PostgreSQL and Redis, and takes a minute: skipped unless AFTERDESK_SCALEOUT=1 (`.ci/run` runs it as
its own job); with AFTERDESK_SCALEOUT=1 a missing PostgreSQL or Redis is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.models import Count
from django.utils import timezone

from cases.choices import CaseEventKind, CaseType, MessageStatus, StorefrontEventType
from cases.message_defaults import default_templates_ensure
from cases.models import BuyerMessage, Case, CaseEvent, StorefrontEvent
from portal.bench.db import scratch_database, scratch_name
from portal.bench.http import Request, drive, each_once, wsgi_server
from portal.bench.processes import production_env, qcluster_process
from tests.factories import make_order, make_shipment, make_store
from tracking.choices import DeliveryStatus
from tracking.models import TrackingConnection, TrackingEvent, WebhookDelivery
from tracking.providers._parsing import hmac_sha256_base64

pytestmark = [
    pytest.mark.scaleout,
    pytest.mark.postgres,
    pytest.mark.skipif(
        os.environ.get("AFTERDESK_SCALEOUT") != "1",
        reason="the scale-out run (two qclusters on Redis, PostgreSQL) runs with AFTERDESK_SCALEOUT=1",
    ),
]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tracking" / "aftership_tracking_update.json"
PARCELS = 200
SENDERS = 8  # provider-side client threads; gunicorn serves 2 workers x 4 threads
NUDGE_SECONDS = 0.5
DRAIN_TIMEOUT = 240.0
SETTLE_SECONDS = 5.0  # nudging goes on this long after everything is done: a late duplicate would show
WOKEN = ("tracking.tasks.process_deliveries", "cases.tasks.evaluate_due", "cases.tasks.deliver_messages")
# The last scan of a parcel: AfterShip's (tag, subtag, raw tag, text) and the case it must raise.
ENDINGS = (
    (("AttemptFail", "AttemptFail_002", "405", "Delivery failed: recipient not available"),
     CaseType.DELIVERY_FAILED),
    (("Exception", "Exception_013", "900", "Parcel reported lost by the station"), CaseType.LOST),
)  # fmt: skip


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url or settings.Q_CLUSTER.get("redis") != url:
        pytest.fail("AFTERDESK_SCALEOUT=1 needs REDIS_URL=redis://127.0.0.1:6379/<n> (django-q2's broker).")
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} does not answer: {exc}")
    finally:
        client.close()
    return url


@pytest.fixture
def scale_out_database(django_db_blocker, redis_url):
    """A database of its own on DATABASE_URL's server, migrated, with Django's connection pointed at it:
    the web server and the clusters are other processes, so pytest-django's test transaction cannot hold
    their writes. Dropped after."""
    if connection.vendor != "postgresql":
        pytest.fail(
            "AFTERDESK_SCALEOUT=1 needs DATABASE_URL=postgres://... (two clusters share one database)."
        )
    name = scratch_name(connection.settings_dict["NAME"], "_scaleout")
    with django_db_blocker.unblock(), scratch_database(name) as url:
        yield url


def test_two_clusters_on_one_redis_queue_turn_repeated_pushes_into_one_case_and_one_message_each(
    scale_out_database, redis_url
):
    world = _world()
    requests = _sends(world, random.Random(26))
    pushes = {request[2] for request in requests}  # distinct bodies: one per (parcel, push)
    from django_q.brokers import get_broker
    from django_q.models import Task
    from django_q.tasks import async_task

    broker = get_broker()
    broker.purge_queue()  # nothing left over from an earlier run on this Redis database
    connections.close_all()
    env = production_env(database_url=scale_out_database, redis_url=redis_url)
    worker_env = {**env, "LOG_LEVEL": "INFO"}  # django-q2 logs each task it processed at INFO
    with (
        wsgi_server(database_url=scale_out_database, workers=2, threads=4, extra_env=env) as server,
        qcluster_process(worker_env) as first,
        qcluster_process(worker_env) as second,
    ):
        stop = threading.Event()

        def nudge() -> None:
            while not stop.wait(NUDGE_SECONDS):
                for func in WOKEN:
                    async_task(func, task_name=f"{func} (scale-out test)", broker=broker)

        nudger = threading.Thread(target=nudge, daemon=True)
        nudger.start()
        try:
            sent = drive(server=server, source=each_once(requests), concurrency=SENDERS, duration=300)
            done_in = _wait_until_done(timeout=DRAIN_TIMEOUT)
            time.sleep(SETTLE_SECONDS)
        finally:
            stop.set()
            nudger.join()
        _wait_for_empty_queue(broker)
        time.sleep(2)  # the monitors save the last results
        logs = [first.log(), second.log()]
        alive = [first.alive(), second.alive()]

    assert sent.exhausted and sent.errors == 0, (sent.statuses, sent.first_error)
    assert sent.ok == len(requests)
    assert done_in is not None, f"not processed within {DRAIN_TIMEOUT:.0f}s: {_pending()}"
    assert alive == [True, True], logs
    # Each cluster took part of the work from the shared queue.
    processed = [log.count("Processed '") for log in logs]
    assert all(processed), processed
    failed_tasks = list(Task.objects.filter(success=False).values_list("func", "result")[:5])
    assert failed_tasks == []
    assert not any("Failed '" in log or "Traceback" in log for log in logs), logs

    # Each push stored once (the event id), and all processed.
    deliveries = WebhookDelivery.objects.filter(connection=world["connection"])
    assert deliveries.count() == len(pushes)
    assert set(deliveries.values_list("event_id", flat=True)) == world["event_ids"]
    assert not deliveries.exclude(status=DeliveryStatus.PROCESSED).exists()

    # Each scan one event: three per parcel, whatever came twice, out of order or at once.
    per_shipment = Counter(dict(TrackingEvent.objects.values_list("shipment").annotate(n=Count("pk"))))
    assert per_shipment == dict.fromkeys(world["expected"], 3)

    # One case per problem, of the type the last scan says.
    cases = dict(Case.objects.values_list("shipment", "type"))
    assert Case.objects.count() == PARCELS
    assert cases == world["expected"]

    # One proactive message per case, queued once, sent once, posted to the storefront once.
    messages = BuyerMessage.objects.all()
    assert messages.count() == PARCELS
    assert set(messages.values_list("idempotency_key", flat=True)) == {
        f"proactive:{pk}" for pk in Case.objects.values_list("pk", flat=True)
    }
    assert not messages.exclude(status=MessageStatus.SENT).exists()
    assert not messages.exclude(attempts=1).exists()
    for kind in (CaseEventKind.MESSAGE_QUEUED, CaseEventKind.MESSAGE_SENT):
        per_message = Counter(
            CaseEvent.objects.filter(kind=kind).values_list("data__message_id", flat=True)
        )  # fmt: skip
        assert per_message == dict.fromkeys(messages.values_list("pk", flat=True), 1), kind
    posted = StorefrontEvent.objects.filter(kind=StorefrontEventType.MESSAGE_REQUESTED)
    assert sorted(posted.values_list("payload__message__id", flat=True)) == sorted(
        messages.values_list("pk", flat=True)
    )


def _world() -> dict:
    """A TikTok Shop store with an AfterShip connection (pushes only: no polling, no registration calls out),
    its parcels' orders with the buyer's storefront id (where a proactive message goes), the default message
    templates and the production schedules."""
    from django.core.management import call_command

    now = timezone.now().replace(microsecond=0)
    store = make_store(code="scale-out", name="Scale-out shop")
    aftership = TrackingConnection.objects.create(
        store=store, provider="aftership", webhook_secret="whsec-scale-out-0123456789",
        pull_enabled=False, register_parcels=False,
    )  # fmt: skip
    default_templates_ensure()
    call_command("setup_schedules", verbosity=0)
    parcels = []
    for i in range(PARCELS):
        order = make_order(
            store=store, platform_order_id=f"5826{i:08d}", placed_at=now - timedelta(days=1),
            buyer_platform_id=f"tts-buyer-{i}", buyer_language="en",
        )  # fmt: skip
        shipment = make_shipment(
            order=order,
            carrier="jtexpress",
            tracking_number=f"JT26{i:011d}",
            booked_at=now - timedelta(hours=8),
        )
        parcels.append((i, order, shipment))
    return {
        "store": store,
        "connection": aftership,
        "parcels": parcels,
        "now": now,
        "expected": {shipment.pk: ENDINGS[i % 2][1].value for i, _, shipment in parcels},
        "event_ids": {_event_id(i, push) for i, _, _ in parcels for push in ("a", "b")},
    }


def _event_id(parcel: int, push: str) -> str:
    return f"scale-out-{parcel:04d}-{push}"


def _body(world: dict, parcel: int, order, shipment, *, full: bool) -> bytes:
    """AfterShip's tracking_update push (the shared fixture's shape): push a carries the first two scans,
    push b the whole trace ending in the parcel's failure. Times are recent, so no deadline rule fires."""
    document = json.loads(FIXTURE.read_bytes())
    checkpoints = document["msg"]["checkpoints"]
    tag, subtag, raw, text = ENDINGS[parcel % 2][0]
    checkpoints[2].update(tag=tag, subtag=subtag, raw_tag=raw, message=text, subtag_message=text)
    for k, (checkpoint, hours) in enumerate(zip(checkpoints, (7, 5, 2), strict=True)):
        when = world["now"] - timedelta(hours=hours)
        checkpoint.update(
            checkpoint_time=when.isoformat(), created_at=when.isoformat(), hash=f"so{parcel:04d}{k}"
        )
    carried = checkpoints if full else checkpoints[:2]
    document["event_id"] = _event_id(parcel, "b" if full else "a")
    document["ts"] = int(world["now"].timestamp())
    document["msg"] = {
        **document["msg"],
        "id": f"as-trk-so-{parcel:06d}",
        "tracking_number": shipment.tracking_number,
        "order_id": f"TTS-{order.platform_order_id}",
        "order_number": order.platform_order_id,
        "origin_country_iso3": "MYS",
        "destination_country_iso3": "MYS",
        "tag": carried[-1]["tag"],
        "subtag": carried[-1]["subtag"],
        "subtag_message": carried[-1]["subtag_message"],
        "updated_at": world["now"].isoformat(),
        "checkpoints": carried,
    }
    return json.dumps(document, ensure_ascii=False).encode()


def _sends(world: dict, rng: random.Random) -> list[Request]:
    """Every push two or three times, shuffled; for some the copies go back to back, so two client threads
    send them at the same moment and the two copies race through the webhook."""
    path = world["connection"].webhook_path
    groups: list[list[Request]] = []
    for i, order, shipment in world["parcels"]:
        for full in (False, True):
            body = _body(world, i, order, shipment, full=full)
            headers = {
                "Content-Type": "application/json",
                "aftership-hmac-sha256": hmac_sha256_base64(world["connection"].webhook_secret, body),
            }
            request: Request = ("POST", path, body, headers)
            copies = rng.choice((2, 3))
            if rng.random() < 0.4:
                groups.append([request] * copies)
            else:
                groups += [[request]] * copies
    rng.shuffle(groups)
    return [request for group in groups for request in group]


def _pending() -> dict[str, int]:
    connections.close_all()
    return {
        "deliveries not processed": WebhookDelivery.objects.exclude(status=DeliveryStatus.PROCESSED).count(),
        "cases": Case.objects.count(),
        "messages sent": BuyerMessage.objects.filter(status=MessageStatus.SENT).count(),
        "messages not sent": BuyerMessage.objects.exclude(status=MessageStatus.SENT).count(),
    }


def _wait_until_done(*, timeout: float) -> float | None:
    """Seconds until every push is processed and every case's message sent; None if not within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        pending = _pending()
        if (
            not pending["deliveries not processed"]
            and pending["cases"] >= PARCELS
            and pending["messages sent"] >= PARCELS
            and not pending["messages not sent"]
        ):
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def _wait_for_empty_queue(broker, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while broker.queue_size() and time.monotonic() < deadline:
        time.sleep(0.2)
