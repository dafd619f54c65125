"""Client-side politeness for provider APIs: a token bucket, Retry-After parsing, and one request helper.

Every adapter sends its HTTP requests through `request_with_retries`, so all of them honour their quota
the same way: wait for a token before each request; on 429/503 wait what the provider asked (when that is
short) and try again, else give up with a RetryableProviderError carrying `retry_after` for the scheduler;
classify every other failure as permanent (stop and tell a human) or retryable (try again later).

Buckets are shared per provider account and endpoint (`shared_bucket`), so two connections or two threads
using the same API key share its quota. Across processes, the bucket factory decides: process-local token
buckets by default; the tracking app installs database-backed ones (`tracking.quota`), so every worker
draws on one balance. The provider's 429 and Retry-After make everyone back off besides.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from tracking.providers.base import PermanentProviderError, RetryableProviderError

# We aim this far under a documented quota, so that scheduling jitter between our send and the
# provider's count never puts one request too many into one of its windows.
QUOTA_SAFETY = 0.9
MAX_INLINE_WAIT = (
    30.0  # seconds: a longer Retry-After goes back to the scheduler instead of blocking a worker
)
MAX_INLINE_RETRIES = 3


class Bucket:
    """A token bucket: `rate` tokens per second, at most `burst` saved up. Subclasses keep the balance
    (`reserve`, `defer`); `acquire` is theirs in common.

    Waiting callers are served in arrival order: each reserves the next token (the balance may go
    negative) and sleeps outside any lock until it is due, so the rate holds across threads without
    busy-waiting. `clock` and `sleep` are injectable so tests can run a fake clock.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive.")
        if burst < 1:
            raise ValueError("burst must be at least 1.")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep

    def reserve(self) -> float:
        """Take the next token and return how long the caller must wait before using it (0 when free)."""
        raise NotImplementedError

    def defer(self, seconds: float) -> None:
        """Hand out no token for `seconds` from now: the provider asked everyone on this account to wait."""
        raise NotImplementedError

    def acquire(self) -> float:
        """Block until a token is ours; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


class TokenBucket(Bucket):
    """A thread-safe token bucket kept in this process."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rate, burst, clock=clock, sleep=sleep)
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._updated = clock()

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now

    def reserve(self) -> float:
        with self._lock:
            self._refill(self._clock())
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def defer(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self._refill(self._clock())
            self._tokens = min(self._tokens, 1.0 - seconds * self.rate)


def quota_bucket(
    requests_per_second: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TokenBucket:
    """A bucket that keeps under a documented "N requests per second" quota, in any one-second window.

    Burst 1: a saved-up burst would put more than N requests into one window. The rate is QUOTA_SAFETY
    of the quota so network jitter cannot push a request into the previous window.
    """
    return TokenBucket(requests_per_second * QUOTA_SAFETY, burst=1, clock=clock, sleep=sleep)


BucketFactory = Callable[[str, float], Bucket]  # (quota name, documented requests per second) -> bucket


def _local_quota(name: str, requests_per_second: float) -> Bucket:
    return quota_bucket(requests_per_second)


_shared: dict[tuple[str, str, str], Bucket] = {}
_shared_lock = threading.Lock()
_factory: BucketFactory = _local_quota


def use_bucket_factory(factory: BucketFactory | None) -> BucketFactory:
    """Make shared buckets with `factory` from now on (None: process-local ones); returns the previous one."""
    global _factory
    with _shared_lock:
        previous, _factory = _factory, factory or _local_quota
        _shared.clear()
    return previous


def shared_bucket(*, provider: str, account: str, endpoint: str, requests_per_second: float) -> Bucket:
    """The shared bucket for one provider account and endpoint (quotas are per account). The account is
    named by a hash of its key, never the key itself."""
    key = (provider, hashlib.sha256(account.encode()).hexdigest()[:16], endpoint)
    with _shared_lock:
        bucket = _shared.get(key)
        if bucket is None or bucket.rate != requests_per_second * QUOTA_SAFETY:
            bucket = _shared[key] = _factory(":".join(key), requests_per_second)
        return bucket


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP date. None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_after_from(response: httpx.Response, *, now: datetime | None = None) -> float | None:
    """How long a 429/503 response asks us to wait: Retry-After, else a rate-limit reset header.

    `X-RateLimit-Reset` (AfterShip) is a Unix timestamp; IETF-draft `RateLimit-Reset` is delta seconds.
    A large value is read as a timestamp, a small one as a delta.
    """
    delay = parse_retry_after(response.headers.get("retry-after"), now=now)
    if delay is not None:
        return delay
    for name in ("x-ratelimit-reset", "ratelimit-reset"):
        raw = response.headers.get(name)
        if raw is None:
            continue
        try:
            reset = float(raw.strip())
        except ValueError:
            continue
        if reset > 1_000_000_000:
            current = (now or datetime.now(UTC)).timestamp()
            return max(0.0, reset - current)
        return max(0.0, reset)
    return None


def request_with_retries(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    bucket: Bucket,
    provider: str,
    error_message: Callable[[httpx.Response], str] | None = None,
    max_retries: int = MAX_INLINE_RETRIES,
    max_inline_wait: float = MAX_INLINE_WAIT,
    default_backoff: float = 1.0,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    passthrough: Collection[int] = (),
    **kwargs: object,
) -> httpx.Response:
    """Send one request politely and return a 2xx response, or raise a ProviderError that says what to do.

    - Before every attempt, a token from `bucket`.
    - 429 / 503: wait the provider's Retry-After (or rate-limit reset; `default_backoff` for a 429 that
      names none) when it is at most `max_inline_wait`, and try again up to `max_retries` times; else
      RetryableProviderError(retry_after=...). The wait is applied to the shared bucket, so other threads
      on the same account wait too.
    - Timeouts, connection errors, 408 and other 5xx: RetryableProviderError.
    - 401 / 403: PermanentProviderError (credentials or account). Other 4xx: PermanentProviderError with
      the provider's own message (`error_message(response)`), since sending it again cannot help, except
      the statuses in `passthrough`, returned for the caller to read (a refusal about one item, say).
    """
    describe = error_message or _default_message
    attempt = 0
    while True:
        bucket.acquire()
        try:
            response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.TimeoutException as exc:
            raise RetryableProviderError(
                f"{provider}: request timed out ({exc.__class__.__name__})."
            ) from exc
        except httpx.TransportError as exc:
            raise RetryableProviderError(
                f"{provider}: connection failed ({exc.__class__.__name__}: {exc})."
            ) from exc
        status = response.status_code
        if status < 300:
            return response
        if status in (429, 503):
            delay = retry_after_from(response, now=now())
            if delay is None and status == 429:
                delay = default_backoff * (attempt + 1)
            if delay is not None and delay <= max_inline_wait and attempt < max_retries:
                attempt += 1
                bucket.defer(delay)
                continue
            what = "rate limited" if status == 429 else "service unavailable"
            raise RetryableProviderError(
                f"{provider}: {what} (HTTP {status}){_suffix(describe(response))}", retry_after=delay
            )
        if status == 408 or status >= 500:
            raise RetryableProviderError(
                f"{provider}: server error HTTP {status}{_suffix(describe(response))}"
            )
        if status in (401, 403):
            raise PermanentProviderError(
                f"{provider}: credentials refused (HTTP {status}){_suffix(describe(response))}"
            )
        if status in passthrough:
            return response
        raise PermanentProviderError(
            f"{provider}: request refused (HTTP {status}){_suffix(describe(response))}"
        )


def _suffix(message: str) -> str:
    return f": {message}" if message else "."


def _default_message(response: httpx.Response) -> str:
    text = response.text.strip()
    return text[:300]


def credential(credentials: Mapping[str, str], *names: str) -> str:
    """The first non-empty credential among `names`."""
    for name in names:
        value = credentials.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def configured_rate(credentials: Mapping[str, object], default: float) -> float:
    """The documented quota, or the connection's own (a bigger plan): credentials['requests_per_second']."""
    raw = credentials.get("requests_per_second")
    try:
        value = float(raw) if raw not in (None, "") else default  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return value if value > 0 else default
