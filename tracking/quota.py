"""Provider quotas shared by every process: a token bucket kept in one database row per account and endpoint.

A provider's quota is per account, but the portal calls it from several processes at once (django-q2's
workers: a polling round in one, a registration round in another; more machines later). Process-local
buckets would each allow the whole quota. `DatabaseBucket` keeps the bucket's balance in a row
(`ProviderQuota`) and takes a token with one atomic UPDATE ... RETURNING, so every process draws on the
same balance; the row lock serializes only the takers of one quota, for one short statement.

Same semantics as `tracking.providers.ratelimit.TokenBucket`: a taker reserves the next token (the balance
may go negative) and sleeps outside the database until it is due; `defer` hands out no token for a while
(a provider's Retry-After). Times are the wall clock (`time.time`): the stamp only moves forward and the
refill is never negative, so a machine whose clock lags draws more slowly, never faster.

Installed in `TrackingConfig.ready` as the factory of `ratelimit.shared_bucket`. Called outside transactions
(the pipeline calls providers between its transactions); inside one, the row stays locked until it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import connection

from tracking.models import ProviderQuota
from tracking.providers.ratelimit import QUOTA_SAFETY, Bucket

_TABLE = ProviderQuota._meta.db_table


def _functions() -> tuple[str, str]:
    return ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")


class DatabaseBucket(Bucket):
    """A token bucket kept in the database, under the name `key` (see the module's docstring)."""

    def __init__(
        self,
        key: str,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rate, burst, clock=clock, sleep=sleep)
        self.key = key[:200]

    def _update(self, *, cap: float | None) -> float:
        """Refill the balance to now, then take one token (`cap` None) or lower it to at most `cap`; return
        the new balance. One statement: atomic under the row lock."""
        least, greatest = _functions()
        now = self._clock()
        refilled = f"{least}(%s, tokens + {greatest}(%s - stamp, 0) * %s)"
        balance = f"{refilled} - 1" if cap is None else f"{least}({refilled}, %s)"
        sql = (
            f"UPDATE {_TABLE} SET tokens = {balance}, stamp = {greatest}(stamp, %s) "  # noqa: S608 - fixed identifiers
            "WHERE name = %s RETURNING tokens"
        )
        args = [float(self.burst), now, self.rate, *([] if cap is None else [cap]), now, self.key]
        with connection.cursor() as cursor:
            for _ in range(2):
                cursor.execute(sql, args)
                row = cursor.fetchone()
                if row is not None:
                    return float(row[0])
                # First use of this quota (on this database): make its row, full, and go again.
                cursor.execute(
                    f"INSERT INTO {_TABLE} (name, tokens, stamp) VALUES (%s, %s, %s) "  # noqa: S608
                    "ON CONFLICT (name) DO NOTHING",
                    [self.key, float(self.burst), now],
                )
        raise RuntimeError(f"quota row {self.key!r} vanished")  # pragma: no cover - deleted twice meanwhile

    def reserve(self) -> float:
        """Take the next token; how long the caller must wait before using it (0 when free)."""
        tokens = self._update(cap=None)
        return 0.0 if tokens >= 0 else -tokens / self.rate

    def defer(self, seconds: float) -> None:
        """Hand out no token for `seconds` from now, to any process: the provider asked us all to wait."""
        if seconds > 0:
            self._update(cap=1.0 - seconds * self.rate)


def database_quota(name: str, requests_per_second: float) -> DatabaseBucket:
    """The shared bucket that keeps under a documented "N requests per second" quota (burst 1, at
    QUOTA_SAFETY of the quota: see `ratelimit.quota_bucket`)."""
    return DatabaseBucket(name, requests_per_second * QUOTA_SAFETY, burst=1)
