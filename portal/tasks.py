"""Waking the django-q2 worker. The broker is only a wake-up: the work itself lives in database rows,
and a schedule sweeps them anyway, so a lost wake-up delays work and a doubled one changes nothing."""

from __future__ import annotations

import logging
import time
from math import inf

from django.core.cache import cache
from django.db import transaction

log = logging.getLogger(__name__)
# func -> when this process last enqueued it (monotonic seconds).
_woken: dict[str, float] = {}


def wake(func: str, *, throttle_seconds: int = 1) -> None:
    """After the current transaction commits, enqueue `func` (a dotted path, so no app imports another),
    at most once per `throttle_seconds` per process group sharing the cache."""
    now = time.monotonic()
    if _woken.get(func, -inf) > now - throttle_seconds:
        return  # this process enqueued it a moment ago: skip even the shared cache (hot webhook path)

    def enqueue() -> None:
        _woken[func] = time.monotonic()
        if not cache.add(f"wake:{func}", 1, timeout=throttle_seconds):
            return  # another process did
        from django_q.tasks import async_task

        try:
            async_task(func, task_name=func)
        except Exception:  # the broker being down must not fail work that is already committed
            log.warning("could not enqueue %s; its schedule will pick the work up", func, exc_info=True)

    transaction.on_commit(enqueue)


def prune_idempotency_keys() -> int:
    """Forget API idempotency keys older than 24 h."""
    from portal.api.idempotency import idempotency_prune

    return idempotency_prune()
