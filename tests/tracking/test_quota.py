"""Provider quotas are shared by every process: the bucket's balance lives in the database."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
from django.db import connection as db
from pytest_httpserver import HTTPServer
from werkzeug import Response

from tests.concurrency import at_once
from tests.tracking.providers.conftest import FakeClock
from tracking.models import ProviderQuota
from tracking.providers.ratelimit import QUOTA_SAFETY, request_with_retries, shared_bucket
from tracking.quota import DatabaseBucket, database_quota


@pytest.mark.django_db
def test_two_processes_buckets_of_one_quota_draw_on_one_balance():
    clock = FakeClock()
    first = DatabaseBucket("17track:abc:gettrackinfo", 2.0, clock=clock, sleep=clock.sleep)
    second = DatabaseBucket("17track:abc:gettrackinfo", 2.0, clock=clock, sleep=clock.sleep)  # another worker

    assert first.reserve() == 0.0  # the row is made full on first use
    assert second.reserve() == pytest.approx(0.5)  # the token the first took is gone for the second too
    assert first.reserve() == pytest.approx(1.0)
    clock.now += 10.0
    assert second.reserve() == 0.0  # refilled, to the burst of 1 only
    assert first.reserve() == pytest.approx(0.5)
    assert ProviderQuota.objects.count() == 1


@pytest.mark.django_db
def test_a_retry_after_seen_by_one_process_holds_back_the_others():
    clock = FakeClock()
    first = DatabaseBucket("aftership:abc:GET /trackings", 4.0, clock=clock, sleep=clock.sleep)
    second = DatabaseBucket("aftership:abc:GET /trackings", 4.0, clock=clock, sleep=clock.sleep)
    first.reserve()

    first.defer(5.0)

    assert second.acquire() == pytest.approx(5.0)
    assert clock.sleeps == [pytest.approx(5.0)]


@pytest.mark.django_db
def test_a_clock_that_lags_draws_more_slowly_never_faster():
    ahead, behind = FakeClock(start=1000.0), FakeClock(start=990.0)
    DatabaseBucket("q", 1.0, clock=ahead).reserve()

    assert DatabaseBucket("q", 1.0, clock=behind).reserve() == pytest.approx(1.0)  # no refill from the past
    assert ProviderQuota.objects.get().stamp == 1000.0  # the stamp never moves back


@pytest.mark.django_db
def test_the_portal_shares_provider_quotas_through_the_database():
    bucket = shared_bucket(
        provider="17track", account="k-1", endpoint="gettrackinfo", requests_per_second=3.0
    )

    assert isinstance(bucket, DatabaseBucket)
    assert bucket.rate == 3.0 * QUOTA_SAFETY
    assert "k-1" not in bucket.key  # the account key is hashed, never stored


@pytest.mark.django_db(transaction=True)
def test_two_workers_with_their_own_buckets_never_exceed_the_quota_together(httpserver: HTTPServer):
    """Two workers (threads, each with its own connection and bucket, as two processes would have) send 6
    requests each under one 5 requests/s quota: at the server, 6 in a row span at least a second. Measured
    by the median window: a thread that wakes late from its wait (a busy 2-core machine) sends its request
    behind the next one and shortens a window or two; buckets that did not share a balance would send 6
    in about half a second in every window."""
    if db.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    stamps: list[float] = []
    lock = threading.Lock()

    def handler(request):
        with lock:
            stamps.append(time.monotonic())
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/ping").respond_with_handler(handler)
    name = f"test:{uuid.uuid4().hex}:ping"

    def worker():
        bucket = database_quota(name, 5.0)  # each worker process makes its own
        with httpx.Client() as client:
            for _ in range(6):
                request_with_retries(client, "GET", httpserver.url_for("/ping"), bucket=bucket, provider="t")

    at_once(worker, worker)

    assert len(stamps) == 12
    stamps.sort()
    windows = sorted(stamps[i + 5] - stamps[i] for i in range(len(stamps) - 5))
    assert windows[len(windows) // 2] >= 1.0, f"6 requests within {windows} s"
