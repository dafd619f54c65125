from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from pytest_httpserver import HTTPServer

from tests.tracking.providers.conftest import FakeClock
from tracking.providers import REGISTRY, get_provider
from tracking.providers.base import PermanentProviderError, RetryableProviderError
from tracking.providers.ratelimit import (
    QUOTA_SAFETY,
    TokenBucket,
    configured_rate,
    parse_retry_after,
    quota_bucket,
    request_with_retries,
    retry_after_from,
)

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


# --- registry -----------------------------------------------------------------------------------------
def test_the_registry_finds_every_provider_by_its_name():
    assert set(REGISTRY) == {"aftership", "17track", "kdniao", "kuaidi100", "simulator"}
    for name, provider in REGISTRY.items():
        assert get_provider(name) is provider
        assert provider.name == name


def test_an_unknown_provider_name_raises_a_key_error_listing_the_known_ones():
    with pytest.raises(
        KeyError, match=r"Unknown tracking provider 'fedex'.*17track, aftership, kdniao, kuaidi100, simulator"
    ):
        get_provider("fedex")


# --- token bucket -------------------------------------------------------------------------------------
def test_a_bucket_spends_its_burst_at_once_then_waits_one_interval_per_token(fake_clock: FakeClock):
    bucket = TokenBucket(rate=2.0, burst=3, clock=fake_clock, sleep=fake_clock.sleep)

    for _ in range(3):
        bucket.acquire()
    assert fake_clock.sleeps == []
    bucket.acquire()
    bucket.acquire()

    assert fake_clock.sleeps == [pytest.approx(0.5), pytest.approx(0.5)]


def test_a_bucket_refills_while_idle_but_never_beyond_its_burst(fake_clock: FakeClock):
    bucket = TokenBucket(rate=1.0, burst=2, clock=fake_clock, sleep=fake_clock.sleep)
    bucket.acquire()
    bucket.acquire()
    fake_clock.now += 100  # idle for long: refills to the burst of 2, no more

    for _ in range(3):
        bucket.acquire()

    assert fake_clock.sleeps == [pytest.approx(1.0)]


def test_threads_queue_on_a_bucket_in_order_each_one_interval_after_the_last(fake_clock: FakeClock):
    bucket = TokenBucket(rate=4.0, burst=1, clock=fake_clock, sleep=fake_clock.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        wait = bucket.reserve()
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The clock never moved: forty reservations must be forty distinct slots, 0.25 s apart.
    assert sorted(waits) == [pytest.approx(i * 0.25) for i in range(40)]


def test_defer_holds_every_token_back_for_the_time_the_provider_asked(fake_clock: FakeClock):
    bucket = TokenBucket(rate=10.0, burst=5, clock=fake_clock, sleep=fake_clock.sleep)

    bucket.defer(3.0)
    bucket.acquire()

    assert fake_clock.sleeps == [pytest.approx(3.0)]


def test_a_quota_bucket_stays_under_the_documented_rate_with_no_burst():
    bucket = quota_bucket(3.0)
    assert bucket.burst == 1
    assert bucket.rate == pytest.approx(3.0 * QUOTA_SAFETY)
    assert bucket.rate < 3.0


def test_a_connection_may_set_its_own_quota_and_a_bad_value_keeps_the_documented_one():
    assert configured_rate({"requests_per_second": "12"}, 3.0) == 12.0
    assert configured_rate({"requests_per_second": "fast"}, 3.0) == 3.0
    assert configured_rate({"requests_per_second": "-1"}, 3.0) == 3.0
    assert configured_rate({}, 3.0) == 3.0


# --- Retry-After --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 2 ", 2.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(seconds=90), usegmt=True), 0.0),
        ("Fri, 21 Nov 2026 08:00:30 GMT", 30.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_or_an_http_date(value, expected):
    assert parse_retry_after(value, now=NOW) == (pytest.approx(expected) if expected is not None else None)


def test_a_rate_limit_reset_timestamp_counts_when_retry_after_is_absent():
    reset = int((NOW + timedelta(seconds=4)).timestamp())
    response = httpx.Response(429, headers={"X-RateLimit-Reset": str(reset)})
    assert retry_after_from(response, now=NOW) == pytest.approx(4.0)
    assert retry_after_from(httpx.Response(429, headers={"RateLimit-Reset": "7"}), now=NOW) == 7.0
    assert (
        retry_after_from(httpx.Response(429, headers={"Retry-After": "2", "X-RateLimit-Reset": str(reset)}))
        == 2.0
    )
    assert retry_after_from(httpx.Response(429)) is None


# --- request_with_retries -----------------------------------------------------------------------------
def _request(httpserver: HTTPServer, bucket: TokenBucket, **kwargs) -> httpx.Response:
    with httpx.Client(timeout=kwargs.pop("timeout", 2.0)) as client:
        return request_with_retries(
            client, "GET", httpserver.url_for("/thing"), bucket=bucket, provider="test", **kwargs
        )


def test_a_429_with_a_short_retry_after_is_waited_out_and_retried(
    httpserver: HTTPServer, fake_bucket, fake_clock
):
    httpserver.expect_ordered_request("/thing").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "2"}
    )
    httpserver.expect_ordered_request("/thing").respond_with_json({"ok": True})

    response = _request(httpserver, fake_bucket)

    assert response.json() == {"ok": True}
    assert fake_clock.sleeps == [pytest.approx(2.0)]
    httpserver.check_assertions()


def test_a_503_with_retry_after_is_retried_too(httpserver: HTTPServer, fake_bucket, fake_clock):
    httpserver.expect_ordered_request("/thing").respond_with_data(
        "", status=503, headers={"Retry-After": "1"}
    )
    httpserver.expect_ordered_request("/thing").respond_with_json({"ok": True})

    assert _request(httpserver, fake_bucket).status_code == 200
    assert fake_clock.sleeps == [pytest.approx(1.0)]


def test_a_retry_after_longer_than_the_cap_goes_back_to_the_scheduler(
    httpserver: HTTPServer, fake_bucket, fake_clock
):
    httpserver.expect_request("/thing").respond_with_data("", status=429, headers={"Retry-After": "3600"})

    with pytest.raises(RetryableProviderError, match="rate limited") as caught:
        _request(httpserver, fake_bucket)

    assert caught.value.retry_after == pytest.approx(3600)
    assert caught.value.retryable
    assert fake_clock.sleeps == []


def test_retries_stop_after_the_limit_and_say_when_to_come_back(
    httpserver: HTTPServer, fake_bucket, fake_clock
):
    httpserver.expect_request("/thing").respond_with_data("", status=429, headers={"Retry-After": "1"})

    with pytest.raises(RetryableProviderError) as caught:
        _request(httpserver, fake_bucket, max_retries=2)

    assert caught.value.retry_after == 1.0
    assert len(httpserver.log) == 3
    assert fake_clock.sleeps == [pytest.approx(1.0), pytest.approx(1.0)]


def test_a_503_without_retry_after_is_retryable_at_once(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/thing").respond_with_data("maintenance", status=503)

    with pytest.raises(RetryableProviderError, match="service unavailable"):
        _request(httpserver, fake_bucket)
    assert len(httpserver.log) == 1


@pytest.mark.parametrize("status", [500, 502, 504, 408])
def test_server_errors_are_retryable(httpserver: HTTPServer, fake_bucket, status):
    httpserver.expect_request("/thing").respond_with_data("oops", status=status)

    with pytest.raises(RetryableProviderError, match=f"HTTP {status}"):
        _request(httpserver, fake_bucket)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_permanent(httpserver: HTTPServer, fake_bucket, status):
    httpserver.expect_request("/thing").respond_with_data("Invalid API key.", status=status)

    with pytest.raises(PermanentProviderError, match=r"credentials refused.*Invalid API key") as caught:
        _request(httpserver, fake_bucket)
    assert not caught.value.retryable


def test_another_4xx_is_permanent_and_carries_the_providers_message(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/thing").respond_with_json(
        {"message": "tracking_numbers too long"}, status=400
    )

    with pytest.raises(PermanentProviderError, match=r"HTTP 400\): custom says tracking_numbers too long"):
        _request(httpserver, fake_bucket, error_message=lambda r: "custom says " + r.json()["message"])


def test_a_timeout_is_retryable(httpserver: HTTPServer, fake_bucket, stalled_handler):
    httpserver.expect_request("/thing").respond_with_handler(stalled_handler)

    with pytest.raises(RetryableProviderError, match="timed out"):
        _request(httpserver, fake_bucket, timeout=0.1)


def test_a_refused_connection_is_retryable(fake_bucket):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        httpx.Client(timeout=1.0) as client,
        pytest.raises(RetryableProviderError, match="connection failed"),
    ):
        request_with_retries(client, "GET", f"http://127.0.0.1:{port}/", bucket=fake_bucket, provider="test")


def test_every_attempt_takes_a_token(httpserver: HTTPServer, fake_clock: FakeClock):
    bucket = TokenBucket(rate=1.0, burst=1, clock=fake_clock, sleep=fake_clock.sleep)
    httpserver.expect_ordered_request("/thing").respond_with_data(
        "", status=429, headers={"Retry-After": "0"}
    )
    httpserver.expect_ordered_request("/thing").respond_with_json({})

    _request(httpserver, bucket)

    # First attempt: the saved token. The retry waits its turn (one token per second) though asked for 0 s.
    assert fake_clock.sleeps == [pytest.approx(1.0)]
