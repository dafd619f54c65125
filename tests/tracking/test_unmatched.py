"""Pushes for parcels we don't know yet: recorded, then ingested once their shipment exists.

The carrier's first scan often reaches us before the platform's order sync creates the shipment; its
checkpoints must not be lost in between.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from cases.models import Case
from tests.factories import make_order, make_shipment
from tests.tracking.providers.test_kdniao import APP_KEY, BUSINESS_ID, form_body, request_data
from tracking.ingest import delivery_receive, unmatched_match
from tracking.models import TrackingConnection, TrackingEvent, UnmatchedTracking, WebhookDelivery
from tracking.tasks import match_unmatched, process_deliveries

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tracking"
SECRET = "whsec-test-0123456789"
NUMBER = "JT5012345678901"  # the tracking number of aftership_tracking_update.json
LATER = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.fixture
def connection(store):
    return TrackingConnection.objects.create(
        store=store, provider="aftership", webhook_secret=SECRET, pull_enabled=False
    )


def _push(connection, body: bytes | None = None) -> None:
    body = body or (FIXTURES / "aftership_tracking_update.json").read_bytes()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    delivery_receive(connection=connection, body=body, headers={"aftership-hmac-sha256": signature})
    process_deliveries()


@pytest.mark.django_db
def test_a_push_that_came_before_its_shipment_is_ingested_once_the_shipment_exists(
    connection, store, monkeypatch, django_capture_on_commit_callbacks
):
    from django_q.conf import Conf

    _push(connection)
    assert UnmatchedTracking.objects.get().matched_at is None

    parcel = make_shipment(order=make_order(store=store), carrier="jtexpress", tracking_number=NUMBER)
    monkeypatch.setattr(Conf, "SYNC", True)  # the woken rules run inline instead of in a worker
    with django_capture_on_commit_callbacks(execute=True):
        assert match_unmatched() == 1

    parcel.refresh_from_db()
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 3
    assert (parcel.status, parcel.substatus) == ("AttemptFail", "AttemptFail_002")
    assert parcel.accepted_at is not None
    assert UnmatchedTracking.objects.get().matched_at is not None
    connection.refresh_from_db()
    assert (connection.events_new, connection.events_duplicate) == (3, 0)
    # the rules looked at the parcel: its failed delivery attempt is a case
    assert "delivery_failed" in Case.objects.filter(shipment=parcel).values_list("type", flat=True)

    assert match_unmatched() == 0  # matched once; nothing is ingested twice
    assert TrackingEvent.objects.count() == 3


@pytest.mark.django_db
def test_nothing_matches_a_shipment_of_another_store_or_one_not_created_yet(connection, store, other_store):
    _push(connection)
    make_shipment(order=make_order(store=other_store), carrier="jtexpress", tracking_number=NUMBER)

    assert match_unmatched() == 0

    assert UnmatchedTracking.objects.get().matched_at is None
    assert not TrackingEvent.objects.exists()


@pytest.mark.django_db
def test_only_the_numbers_that_found_their_shipment_are_taken_from_a_push_of_several(store):
    """A Kdniao push carries several traces; one parcel is created, the other is still unknown."""
    kdniao = TrackingConnection.objects.create(
        store=store, provider="kdniao", webhook_secret="kd-secret",
        credentials={"api_key": APP_KEY, "business_id": BUSINESS_ID},
    )  # fmt: skip
    delivery_receive(connection=kdniao, body=form_body(request_data()), headers={})
    process_deliveries()
    assert UnmatchedTracking.objects.count() == 2
    parcel = make_shipment(
        order=make_order(store=store), carrier="jtexpress", tracking_number="JT3101234567890"
    )

    result = unmatched_match()

    assert result.matched == 1
    assert set(TrackingEvent.objects.values_list("shipment_id", flat=True)) == {parcel.pk}
    assert TrackingEvent.objects.count() == result.ingest.new == 6
    waiting = UnmatchedTracking.objects.filter(matched_at__isnull=True).values_list(
        "tracking_number", flat=True
    )
    assert list(waiting) == ["YT7500000000001"]


@pytest.mark.django_db
def test_a_number_whose_push_is_gone_is_marked_matched_with_nothing_to_ingest(connection, store):
    _push(connection)
    WebhookDelivery.objects.all().delete()  # pruned: the link is set to NULL
    make_shipment(order=make_order(store=store), carrier="jtexpress", tracking_number=NUMBER)

    result = unmatched_match()

    assert (result.matched, result.ingest.new) == (1, 0)
    assert UnmatchedTracking.objects.get().matched_at is not None


@pytest.mark.django_db
def test_a_matched_number_that_matches_nothing_again_waits_for_a_match_again(connection, store):
    _push(connection)
    UnmatchedTracking.objects.update(matched_at=LATER)

    _push(
        connection,
        (FIXTURES / "aftership_tracking_update.json")
        .read_bytes()
        .replace(b'"event_id": "', b'"event_id": "2-', 1),
    )

    unmatched = UnmatchedTracking.objects.get()
    assert (unmatched.matched_at, unmatched.times_seen) == (None, 2)


@pytest.mark.django_db(transaction=True)
def test_matching_killed_after_the_events_insert_is_done_again_to_the_same_state(
    connection, store, killed_after_the_events_insert
):
    _push(connection)
    parcel = make_shipment(order=make_order(store=store), carrier="jtexpress", tracking_number=NUMBER)

    with killed_after_the_events_insert(), pytest.raises(RuntimeError):
        unmatched_match()

    assert not TrackingEvent.objects.exists()
    assert UnmatchedTracking.objects.get().matched_at is None
    connection.refresh_from_db()
    assert connection.events_new == 0

    assert unmatched_match().matched == 1
    parcel.refresh_from_db()
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 3
    assert parcel.status == "AttemptFail"
    connection.refresh_from_db()
    assert connection.events_new == 3


@pytest.mark.django_db
def test_the_admin_matches_the_selected_numbers_now(client, connection, store):
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-for-tests-123"))
    _push(connection)
    unmatched = UnmatchedTracking.objects.get()
    url = "/admin/tracking/unmatchedtracking/"
    form = {"action": "match_now", "_selected_action": [unmatched.pk]}

    waiting = client.post(url, form, follow=True)
    assert [str(m) for m in waiting.context["messages"]] == [
        "None of them matches a shipment of its store yet."
    ]

    make_shipment(order=make_order(store=store), carrier="jtexpress", tracking_number=NUMBER)
    matched = client.post(url, form, follow=True)
    assert [str(m) for m in matched.context["messages"]] == ["1 tracking number matched, 3 new events."]
    assert TrackingEvent.objects.count() == 3


@pytest.mark.django_db
def test_the_admin_shows_unmatched_numbers_but_does_not_let_them_be_typed_in_or_edited(client, connection):
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-for-tests-123"))
    _push(connection)
    unmatched = UnmatchedTracking.objects.get()

    assert client.get("/admin/tracking/unmatchedtracking/add/").status_code == 403
    change_url = f"/admin/tracking/unmatchedtracking/{unmatched.pk}/change/"
    assert NUMBER in client.get(change_url).content.decode()
    client.post(change_url, {"tracking_number": "EDITED", "carrier": "other", "times_seen": 99})
    unmatched.refresh_from_db()
    assert (unmatched.tracking_number, unmatched.times_seen) == (NUMBER, 1)
