from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.factories import make_order, make_shipment
from tracking.ingest import MAX_DELIVERY_ATTEMPTS
from tracking.models import TrackingConnection, TrackingEvent, UnmatchedTracking, WebhookDelivery
from tracking.tasks import process_deliveries

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tracking" / "aftership_tracking_update.json"
SECRET = "whsec-test-0123456789"


def _sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def connection(store):
    return TrackingConnection.objects.create(store=store, provider="aftership", webhook_secret=SECRET)


@pytest.fixture
def parcel(store):
    order = make_order(store=store, platform_order_id="580001234567")
    return make_shipment(order=order, carrier="jtexpress", tracking_number="JT5012345678901")


@pytest.fixture
def body() -> bytes:
    return FIXTURE.read_bytes()


def _post(client, connection, body: bytes, signature: str | None = "sign"):
    headers = {}
    if signature == "sign":
        headers["aftership-hmac-sha256"] = _sign(body)
    elif signature is not None:
        headers["aftership-hmac-sha256"] = signature
    return client.post(connection.webhook_path, data=body, content_type="application/json", headers=headers)


@pytest.mark.django_db
def test_a_signed_push_is_stored_acknowledged_and_becomes_events(client, connection, parcel, body):
    response = _post(client, connection, body)

    assert response.status_code == 200
    assert WebhookDelivery.objects.filter(connection=connection, status="received").count() == 1

    process_deliveries()

    parcel.refresh_from_db()
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 3
    assert parcel.status == "AttemptFail"
    assert parcel.substatus == "AttemptFail_002"
    assert parcel.accepted_at is not None
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.events_new, delivery.events_duplicate) == ("processed", 3, 0)
    connection.refresh_from_db()
    assert connection.events_new == 3


@pytest.mark.django_db
def test_a_signed_kdniao_push_without_a_trace_is_acknowledged_kept_and_adds_nothing(client, store):
    from tests.tracking.providers.test_kdniao import APP_KEY, BUSINESS_ID, form_body

    kdniao = TrackingConnection.objects.create(
        store=store, provider="kdniao", webhook_secret="kd-secret-123",
        credentials={"api_key": APP_KEY, "business_id": BUSINESS_ID},
    )  # fmt: skip
    data = json.dumps({"EBusinessID": BUSINESS_ID, "Count": "1", "Data": [{"OrderCode": "5800012"}]})
    body = form_body(data, request_type="107")

    response = client.post(kdniao.webhook_path, data=body, content_type="application/x-www-form-urlencoded")
    process_deliveries()

    assert response.status_code == 200
    assert response.json()["Success"] is True
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.events_new, bytes(delivery.body)) == ("processed", 0, body)
    assert not TrackingEvent.objects.exists()
    assert not UnmatchedTracking.objects.exists()


@pytest.mark.django_db
def test_a_signed_kuaidi100_push_is_acknowledged_as_it_expects_and_becomes_events(client, store):
    from tests.tracking.providers.test_kuaidi100 import form_body, param

    kuaidi100 = TrackingConnection.objects.create(
        store=store, provider="kuaidi100", webhook_secret="connection-salt-xyz",
        credentials={"api_key": "k", "customer": "c"},
    )  # fmt: skip
    parcel = make_shipment(order=make_order(store=store), carrier="yto", tracking_number="YT7500000000123")

    response = client.post(
        kuaidi100.webhook_path, data=form_body(param()), content_type="application/x-www-form-urlencoded"
    )
    bad = client.post(
        kuaidi100.webhook_path,
        data=form_body(param(), salt="wrong"),
        content_type="application/x-www-form-urlencoded",
    )
    process_deliveries()

    assert response.status_code == 200
    assert response.json() == {"result": True, "returnCode": "200", "message": "成功"}
    assert bad.status_code == 401
    parcel.refresh_from_db()
    assert (parcel.status, TrackingEvent.objects.filter(shipment=parcel).count()) == ("OutForDelivery", 5)
    assert parcel.accepted_at is not None  # the 已揽收 scan: the appeal's first acceptance


@pytest.mark.django_db
def test_a_carrier_kuaidi100_corrects_is_the_parcels_carrier_from_then_on_the_booked_one_kept(
    client, store, other_store, agent_client
):
    from django.urls import reverse

    from tests.tracking.providers.test_kuaidi100 import form_body, param

    kuaidi100 = TrackingConnection.objects.create(
        store=store, provider="kuaidi100", webhook_secret="connection-salt-xyz",
        credentials={"api_key": "k", "customer": "c"},
    )  # fmt: skip
    number = "YT7500000000123"
    parcel = make_shipment(order=make_order(store=store), carrier="yto", tracking_number=number)
    theirs = make_shipment(order=make_order(store=other_store), carrier="yto", tracking_number=number)
    reused = [
        make_shipment(order=make_order(store=store), carrier=carrier, tracking_number="YT7500000000777")
        for carrier in ("yto", "sto")
    ]
    document = json.loads(param())
    document.update(
        status="abort", message="快递公司编码有误", autoCheck="1", comOld="yuantong", comNew="zhongtong"
    )
    corrected = form_body(json.dumps(document, ensure_ascii=False))
    document["lastResult"]["nu"] = "YT7500000000777"
    ambiguous = form_body(json.dumps(document, ensure_ascii=False))

    for body in (corrected, ambiguous, corrected):  # the last: Kuaidi100 retrying the same push
        response = client.post(
            kuaidi100.webhook_path, data=body, content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 200
        process_deliveries()

    parcel.refresh_from_db()
    assert (parcel.carrier, parcel.carrier_booked) == ("zto", "yto")  # ours for 中通; booked as 圆通
    assert parcel.carrier_corrected_at is not None
    assert parcel.next_check_at <= timezone.now()  # the rules look again: their deadlines are per carrier
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 5  # its checkpoints ingested all the same
    theirs.refresh_from_db()
    assert (theirs.carrier, theirs.carrier_booked) == ("yto", "")  # another store's parcel
    for other in reused:  # a number the store has under two carriers: nothing says which one was meant
        other.refresh_from_db()
        assert other.carrier_booked == ""
    page = agent_client.get(reverse("tracking:shipment", args=[parcel.pk])).content.decode()
    assert "ZTO Express" in page and "Booked as YTO Express; corrected by the tracking provider" in page


@pytest.mark.django_db
def test_a_parcels_raw_pushes_are_found_by_its_tracking_number_in_the_admin(
    client, admin_client, agent_client, store, connection, parcel, body
):
    from django.urls import reverse

    from tests.tracking.providers.test_kdniao import APP_KEY, BUSINESS_ID, form_body, request_data

    kdniao = TrackingConnection.objects.create(
        store=store, provider="kdniao", webhook_secret="kd-secret-123",
        credentials={"api_key": APP_KEY, "business_id": BUSINESS_ID},
    )  # fmt: skip
    assert _post(client, connection, body).status_code == 200
    batch = client.post(
        kdniao.webhook_path, data=form_body(request_data()), content_type="application/x-www-form-urlencoded"
    )
    assert batch.status_code == 200

    # Read when the push arrived, before the worker processes it: "did the carrier push?" has an answer.
    numbers = dict(WebhookDelivery.objects.values_list("connection__provider", "tracking_numbers"))
    assert numbers == {"aftership": "JT5012345678901", "kdniao": "JT3101234567890 YT7500000000001"}
    url = "/admin/tracking/webhookdelivery/"
    found = admin_client.get(url, {"q": "YT7500000000001"}).content.decode()
    assert "JT3101234567890 YT7500000000001" in found and "JT5012345678901" not in found
    assert "JT5012345678901" in admin_client.get(url, {"q": "JT5012345678901"}).content.decode()

    page = reverse("tracking:shipment", args=[parcel.pk])
    link = f'href="{url}?q=JT5012345678901" data-raw-pushes'
    assert "data-raw-pushes" not in agent_client.get(page).content.decode()
    get_user_model().objects.filter(pk=agent_client.agent.pk).update(is_staff=True)
    assert link in agent_client.get(page).content.decode()  # staff: a link to them from the parcel


@pytest.mark.django_db
def test_a_push_of_very_many_parcels_keeps_as_many_whole_numbers_as_fit(client, store):
    from tracking.providers import simulator
    from tracking.providers.base import ParsedTracking

    sim = TrackingConnection.objects.create(store=store, provider="simulator", webhook_secret=SECRET)
    numbers = [f"SPXMY{i:012d}" for i in range(200)]  # 17 characters each
    body = simulator.push_body([ParsedTracking(number, "spx-my", []) for number in numbers])
    headers = {simulator.SIGNATURE_HEADER: simulator.sign(body, SECRET)}

    assert (
        client.post(sim.webhook_path, data=body, content_type="application/json", headers=headers).status_code
        == 200
    )

    kept = WebhookDelivery.objects.get().tracking_numbers
    assert len(kept) <= 1000 and kept.split() == numbers[: len(kept.split())]
    assert len(kept.split()) == 55  # 55 numbers and their spaces take 989 characters; a 56th would not fit


@pytest.mark.django_db
def test_the_connection_keeps_when_its_last_push_arrived_never_moving_back(client, connection, parcel, body):
    _post(client, connection, body)
    process_deliveries()
    first = WebhookDelivery.objects.get()
    connection.refresh_from_db()
    assert connection.last_push_at == first.received_at

    # A push received earlier but processed later (retried after a failure) leaves the time as it is.
    older = WebhookDelivery.objects.create(
        connection=connection, body=body, received_at=first.received_at - timedelta(hours=5)
    )
    process_deliveries()

    older.refresh_from_db()
    connection.refresh_from_db()
    assert older.status == "processed"
    assert connection.last_push_at == first.received_at


@pytest.mark.django_db
def test_a_push_is_stored_by_one_statement_with_the_body_byte_for_byte(
    client, connection, body, django_assert_num_queries
):
    """The hot path: with the connection lookup cached, a push costs the one INSERT (a prepared statement on
    PostgreSQL), and the raw body and the model's defaults land exactly as the model would have written."""
    _post(client, connection, body)  # caches the connection lookup and prepares the insert
    redelivered = body.replace(b'"event_id": "', b'"event_id": "again-', 1)
    assert redelivered != body

    with django_assert_num_queries(1):
        response = _post(client, connection, redelivered)

    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert bytes(delivery.body) == redelivered
    assert (delivery.status, delivery.attempts, delivery.events_new, delivery.error) == ("received", 0, 0, "")
    assert delivery.kind == "tracking_update" and delivery.content_type == "application/json"
    assert delivery.event_id.startswith("again-")


@pytest.mark.django_db
@pytest.mark.parametrize("signature", [None, "", "bm90LXRoZS1zaWduYXR1cmU=", _sign(b"another body")])
def test_a_missing_or_bad_signature_is_a_401_and_writes_nothing(client, connection, parcel, body, signature):
    response = _post(client, connection, body, signature=signature)

    assert response.status_code == 401
    assert "Signature" in response.json()["error"]
    assert not WebhookDelivery.objects.exists()
    assert not TrackingEvent.objects.exists()
    connection.refresh_from_db()
    assert connection.signatures_rejected == 1


@pytest.mark.django_db
def test_a_body_signed_with_another_secret_is_refused(client, connection, parcel, body):
    response = _post(client, connection, body, signature=_sign(body, secret="someone-elses-secret"))

    assert response.status_code == 401
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad",
    [
        b"{not json",
        b"[]",
        b'{"event": "tracking_update"}',
        b'{"event": "tracking_update", "msg": {"checkpoints": "x"}}',
    ],
)
def test_a_malformed_body_is_a_400_with_a_message_and_writes_nothing(client, connection, bad):
    response = _post(client, connection, bad)

    assert response.status_code == 400
    assert response.json()["error"].startswith("Malformed payload")
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_a_push_larger_than_djangos_form_limit_is_taken_whole(client, connection, parcel, body):
    """Django refuses request bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) with a bare HTML 400; a
    provider's push that large (a long trace with its custom fields) is stored and ingested like any."""
    document = json.loads(body)
    document["msg"]["custom_fields"] = {"packing_note": "x" * 3_000_000}
    large = json.dumps(document).encode()

    response = _post(client, connection, large)

    assert response.status_code == 200
    assert bytes(WebhookDelivery.objects.get().body) == large
    process_deliveries()
    assert TrackingEvent.objects.filter(shipment=parcel).exists()


@pytest.mark.django_db
def test_a_push_over_the_size_limit_is_a_413_with_a_message_counted_and_writes_nothing(
    client, connection, parcel, body, settings
):
    settings.TRACKING_WEBHOOK_MAX_BYTES = len(body) - 1

    response = _post(client, connection, body)

    assert response.status_code == 413
    assert response.json()["error"] == (
        f"Payload too large: {len(body):,} bytes; this endpoint takes at most {len(body) - 1:,} "
        "(TRACKING_WEBHOOK_MAX_BYTES)."
    )
    assert not WebhookDelivery.objects.exists()
    connection.refresh_from_db()
    assert (connection.payloads_rejected, connection.signatures_rejected) == (1, 0)
    settings.TRACKING_WEBHOOK_MAX_BYTES = len(body)
    assert _post(client, connection, body).status_code == 200


@pytest.mark.django_db
def test_an_unknown_mismatched_or_switched_off_webhook_url_is_a_404_with_a_message(client, connection, body):
    unknown = f"/webhooks/tracking/aftership/{uuid.uuid4()}/"
    wrong_provider = f"/webhooks/tracking/kdniao/{connection.uuid}/"
    switched_off = TrackingConnection.objects.create(
        store=connection.store, provider="17track", webhook_secret=SECRET, is_active=False
    )

    for url in (unknown, wrong_provider, switched_off.webhook_path):
        response = client.post(url, data=body, content_type="application/json")
        assert response.status_code == 404
        assert response.json()["error"].startswith("No active tracking connection at this URL")
    response = client.get(connection.webhook_path)
    assert (response.status_code, response["Allow"]) == (405, "POST")
    assert response.json() == {"error": "Provider pushes are POST requests."}
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_an_unknown_tracking_number_is_recorded_for_later_matching(client, connection, body):
    assert _post(client, connection, body).status_code == 200

    process_deliveries()

    unmatched = UnmatchedTracking.objects.get()
    assert (unmatched.tracking_number, unmatched.times_seen) == ("JT5012345678901", 1)
    assert WebhookDelivery.objects.get().status == "processed"
    assert not TrackingEvent.objects.exists()


@pytest.mark.django_db
def test_a_redelivered_event_id_is_stored_once(client, connection, parcel, body):
    for _ in range(3):
        assert _post(client, connection, body).status_code == 200

    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_a_thousand_replays_of_one_delivery_create_no_duplicate_events(client, connection, parcel, body):
    payload = json.loads(body)
    for n in range(1_000):
        payload["event_id"] = f"replay-{n}"  # a provider retrying with fresh delivery ids
        replay = json.dumps(payload).encode()
        assert _post(client, connection, replay).status_code == 200

    process_deliveries()

    assert WebhookDelivery.objects.filter(status="processed").count() == 1_000
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 3
    connection.refresh_from_db()
    assert (connection.events_new, connection.events_duplicate) == (3, 2_997)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_halfway_through_a_delivery_leaves_it_to_be_retried_exactly_once(
    client, connection, parcel, body, killed_after_the_events_insert
):
    assert _post(client, connection, body).status_code == 200

    with killed_after_the_events_insert():
        process_deliveries(max_rounds=1)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "worker killed" in delivery.error
    assert not TrackingEvent.objects.exists()

    process_deliveries()
    assert WebhookDelivery.objects.get().status == "failed"  # backing off, not hammered in a loop
    WebhookDelivery.objects.update(retry_at=timezone.now())
    process_deliveries()

    delivery.refresh_from_db()
    parcel.refresh_from_db()
    assert (delivery.status, delivery.events_new, delivery.attempts) == ("processed", 3, 2)
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 3
    assert parcel.status == "AttemptFail"


@pytest.mark.django_db
def test_a_poison_delivery_is_isolated_from_its_batch_and_given_up_after_its_attempts(
    client, connection, parcel, body
):
    # A stored body that no longer parses (say, a parser changed since it was accepted), ahead in the queue.
    poison = WebhookDelivery.objects.create(connection=connection, body=b'{"msg": [', kind="tracking_update")
    assert _post(client, connection, body).status_code == 200

    process_deliveries(max_rounds=1)

    good = WebhookDelivery.objects.exclude(pk=poison.pk).get()
    poison.refresh_from_db()
    assert (good.status, good.events_new) == ("processed", 3)
    assert (poison.status, poison.attempts) == ("failed", 1)
    assert "PayloadError" in poison.error
    for _ in range(2 * MAX_DELIVERY_ATTEMPTS):  # each retry due at once instead of after its backoff
        WebhookDelivery.objects.filter(pk=poison.pk).update(retry_at=timezone.now())
        process_deliveries()
    poison.refresh_from_db()
    assert (poison.status, poison.attempts) == ("failed", MAX_DELIVERY_ATTEMPTS)


@pytest.mark.django_db
def test_the_admin_sends_failed_deliveries_back_to_the_worker_once_the_cause_is_fixed(
    client, connection, parcel, body
):
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-for-tests-123"))
    # Given up on under an older parser; the body parses now.
    failed = WebhookDelivery.objects.create(
        connection=connection, body=body, kind="tracking_update", status="failed",
        attempts=MAX_DELIVERY_ATTEMPTS, error="PayloadError: old parser",
    )  # fmt: skip
    done = WebhookDelivery.objects.create(connection=connection, body=body, status="processed", attempts=1)
    url = "/admin/tracking/webhookdelivery/"

    only_done = client.post(url, {"action": "process_again", "_selected_action": [done.pk]}, follow=True)
    assert [str(m) for m in only_done.context["messages"]] == ["None of the selected deliveries has failed."]
    both = client.post(
        url, {"action": "process_again", "_selected_action": [failed.pk, done.pk]}, follow=True
    )
    assert [str(m) for m in both.context["messages"]] == ["1 delivery queued to be processed again."]
    process_deliveries()

    failed.refresh_from_db()
    done.refresh_from_db()
    assert (failed.status, failed.events_new, failed.error) == ("processed", 3, "")
    assert (done.status, done.attempts) == ("processed", 1)  # left alone
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 3


@pytest.mark.django_db
def test_deliveries_processed_in_one_batch_keep_their_own_counts(client, connection, parcel, body):
    payload = json.loads(body)
    for event_id in ("first", "replay"):
        payload["event_id"] = event_id
        assert _post(client, connection, json.dumps(payload).encode()).status_code == 200

    process_deliveries()

    counts = dict(WebhookDelivery.objects.values_list("event_id", "events_new"))
    duplicates = dict(WebhookDelivery.objects.values_list("event_id", "events_duplicate"))
    assert counts == {"first": 3, "replay": 0}
    assert duplicates == {"first": 0, "replay": 3}


@pytest.mark.django_db
def test_the_expected_delivery_is_stored_and_revised_without_new_checkpoints(
    client, connection, parcel, body
):
    payload = json.loads(body)
    assert _post(client, connection, body).status_code == 200
    process_deliveries()
    parcel.refresh_from_db()
    assert parcel.expected_delivery.isoformat() == payload["msg"]["expected_delivery"]

    payload["event_id"] = "revised"
    payload["msg"]["expected_delivery"] = "2026-12-01"
    assert _post(client, connection, json.dumps(payload).encode()).status_code == 200
    process_deliveries()

    parcel.refresh_from_db()
    assert parcel.expected_delivery.isoformat() == "2026-12-01"
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 3


@pytest.mark.django_db
def test_a_deactivated_connection_stops_accepting_pushes_once_its_cached_lookup_expires(
    client, connection, parcel, body, monkeypatch
):
    from tracking import selectors

    assert _post(client, connection, body).status_code == 200
    TrackingConnection.objects.filter(pk=connection.pk).update(is_active=False)
    assert _post(client, connection, body).status_code == 200  # still cached in this process

    monkeypatch.setattr(selectors, "WEBHOOK_CONNECTION_TTL", 0.0)
    selectors._webhook_connections.clear()
    assert _post(client, connection, body).status_code == 404


@pytest.mark.django_db
def test_a_secret_rotated_in_the_admin_takes_effect_at_once_in_a_process_that_cached_the_old_one(
    client, connection, parcel, body
):
    assert _post(client, connection, body).status_code == 200  # the connection is now cached here
    rotated = "whsec-rotated-9876543210"
    TrackingConnection.objects.filter(pk=connection.pk).update(
        webhook_secret=rotated
    )  # as the admin saves it

    assert _post(client, connection, body, signature=_sign(body, rotated)).status_code == 200
    assert _post(client, connection, body, signature=_sign(body, rotated)).status_code == 200  # re-cached
    assert _post(client, connection, body).status_code == 401  # the old secret is refused from then on

    connection.refresh_from_db()
    assert connection.signatures_rejected == 1
    assert WebhookDelivery.objects.count() == 1  # one event id, stored once


@pytest.mark.django_db
def test_the_webhook_takes_the_machine_path_past_the_browser_middleware(client, connection, parcel, body):
    client.cookies["sessionid"] = "not-a-session"  # what a browser would send; a provider never does

    response = _post(client, connection, body)

    assert response.status_code == 200
    assert "X-Frame-Options" not in response  # portal.middleware.MachineEndpointMiddleware called the view
    assert "Cookie" not in response.get("Vary", "")  # no session looked up
    assert WebhookDelivery.objects.filter(connection=connection).count() == 1
