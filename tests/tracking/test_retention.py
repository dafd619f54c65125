"""Retention of raw pushes and unknown numbers (tracking.retention), through the service and the task."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import make_order, make_shipment
from tests.tracking.test_unmatched import NUMBER, _push
from tracking.models import TrackingConnection, TrackingEvent, UnmatchedTracking, WebhookDelivery
from tracking.retention import PruneResult, history_prune
from tracking.tasks import match_unmatched, prune_history

SECRET = "whsec-test-0123456789"


@pytest.fixture
def connection(store):
    return TrackingConnection.objects.create(
        store=store, provider="aftership", webhook_secret=SECRET, pull_enabled=False
    )


def _delivery(connection, *, days_ago: float, status: str = "processed") -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        connection=connection, body=b'{"msg": {}}', status=status,
        received_at=timezone.now() - timedelta(days=days_ago),
    )  # fmt: skip


def _age(days: float) -> None:
    """Everything stored so far happened `days` ago."""
    then = timezone.now() - timedelta(days=days)
    WebhookDelivery.objects.update(received_at=then, processed_at=then)
    UnmatchedTracking.objects.update(first_seen_at=then, last_seen_at=then)
    UnmatchedTracking.objects.filter(matched_at__isnull=False).update(matched_at=then)


@pytest.mark.django_db
def test_a_processed_push_goes_after_the_retention_its_events_and_counts_stay(connection, store):
    parcel = make_shipment(order=make_order(store=store), carrier="jtexpress", tracking_number=NUMBER)
    _push(connection)
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 3
    _age(29)

    assert history_prune().deliveries == 0

    _age(31)
    result = history_prune()

    assert result.deliveries == 1
    assert not WebhookDelivery.objects.exists()
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 3
    connection.refresh_from_db()
    assert connection.events_new == 3
    assert history_prune().deliveries == 0  # a round repeated deletes nothing more


@pytest.mark.django_db
def test_deliveries_still_to_process_or_failed_are_kept_however_old(connection):
    waiting = _delivery(connection, days_ago=400, status="received")
    failed = _delivery(connection, days_ago=400, status="failed")
    _delivery(connection, days_ago=31)

    assert history_prune().deliveries == 1

    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {waiting.pk, failed.pk}


@pytest.mark.django_db
def test_the_push_kept_for_a_number_waiting_for_its_shipment_stays_until_the_number_is_matched(
    connection, store
):
    _push(connection)  # no shipment yet: the number waits, with its push
    _age(60)

    assert history_prune() == PruneResult(deliveries=0, unmatched=0)
    assert UnmatchedTracking.objects.get().delivery_id == WebhookDelivery.objects.get().pk

    make_shipment(order=make_order(store=store), carrier="jtexpress", tracking_number=NUMBER)
    assert match_unmatched() == 1
    assert TrackingEvent.objects.count() == 3

    result = history_prune()

    assert (result.deliveries, result.unmatched) == (1, 0)  # the number was matched just now: kept
    assert UnmatchedTracking.objects.get().delivery_id is None
    _age(31)
    assert history_prune().unmatched == 1
    assert not UnmatchedTracking.objects.exists()
    assert TrackingEvent.objects.count() == 3


@pytest.mark.django_db
def test_a_number_that_never_matched_goes_ninety_days_after_its_last_push(connection):
    _push(connection)
    _age(89)
    assert history_prune().unmatched == 0

    _age(91)
    result = history_prune()

    assert (result.unmatched, result.deliveries) == (1, 1)  # then its push, no longer awaited
    assert not UnmatchedTracking.objects.exists()
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_zero_days_keeps_everything_for_ever(connection, settings):
    settings.TRACKING_DELIVERY_RETENTION_DAYS = 0
    settings.TRACKING_UNMATCHED_RETENTION_DAYS = 0
    _push(connection)
    _delivery(connection, days_ago=4000)
    _age(4000)

    assert history_prune() == PruneResult(deliveries=0, unmatched=0)
    assert WebhookDelivery.objects.count() == 2
    assert UnmatchedTracking.objects.count() == 1


@pytest.mark.django_db
def test_retention_is_read_from_the_settings(connection, settings):
    settings.TRACKING_DELIVERY_RETENTION_DAYS = 7
    _delivery(connection, days_ago=8)
    _delivery(connection, days_ago=6)

    assert history_prune().deliveries == 1
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_deletes_go_in_batches_oldest_first_and_a_passed_deadline_leaves_the_rest(
    connection, django_assert_num_queries
):
    old = [_delivery(connection, days_ago=40 + i) for i in range(5)]

    assert history_prune(deadline=time.monotonic() - 1).deliveries == 0
    assert WebhookDelivery.objects.count() == 5

    # Each batch in its own transaction (a savepoint and its release here, inside the test's transaction):
    # select and lock the ids, the collector's select of the rows, the unset of the numbers that refer to
    # them, the delete, the connection's count of deleted deliveries. Three batches of 2, 2 and 1, after
    # one of numbers that finds none.
    with django_assert_num_queries(3 + 3 * 7):
        assert history_prune(batch=2).deliveries == 5

    assert not WebhookDelivery.objects.filter(pk__in=[d.pk for d in old]).exists()


@pytest.mark.django_db
def test_the_task_prunes(connection):
    _delivery(connection, days_ago=31)
    _delivery(connection, days_ago=1)

    assert prune_history() == 1
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_the_admin_still_counts_the_deliveries_retention_deleted(admin_client, connection, store):
    other = TrackingConnection.objects.create(store=store, provider="17track", webhook_secret=SECRET)
    for days_ago in (40, 35, 1):
        _delivery(connection, days_ago=days_ago)
    _delivery(other, days_ago=50)

    assert history_prune().deliveries == 3

    connection.refresh_from_db()
    other.refresh_from_db()
    assert (connection.deliveries_pruned, other.deliveries_pruned) == (2, 1)
    page = admin_client.get("/admin/tracking/trackingconnection/").content.decode()
    assert page.count('<td class="field-deliveries">3</td>') == 1
    assert page.count('<td class="field-deliveries">1</td>') == 1


@pytest.mark.django_db
def test_a_round_killed_after_a_batch_delete_is_repeated_to_the_exact_counts(connection, monkeypatch):
    from tracking import retention

    for i in range(5):
        _delivery(connection, days_ago=40 + i)
    tallies = []

    def crash_on_second_batch(keys):
        tallies.append(1)
        if len(tallies) == 2:
            raise RuntimeError("worker killed after the delete, before the count")
        return Counter(keys)

    monkeypatch.setattr(retention, "Counter", crash_on_second_batch)
    with pytest.raises(RuntimeError):
        history_prune(batch=2)

    connection.refresh_from_db()
    assert (WebhookDelivery.objects.count(), connection.deliveries_pruned) == (3, 2)  # batch 2 undone

    monkeypatch.undo()
    assert history_prune(batch=2).deliveries == 3

    connection.refresh_from_db()
    assert (WebhookDelivery.objects.count(), connection.deliveries_pruned) == (0, 5)
