"""What the worker's rounds share (polling in `tracking.ingest`, registration in `tracking.registration`): how
many parcels a batch claims, and whether a round may start another batch before its deadline."""

from __future__ import annotations

import time

from tracking.providers.base import Provider

# Shipments a round claims at a time, at least: a provider that takes one number per request (Kdniao's
# instant query) still has 40 claimed per query (its fetch sends them one by one, under its quota).
MIN_CLAIM = 40


def claim_size(provider: Provider) -> int:
    return max(provider.batch_size, MIN_CLAIM)


def in_time(deadline: float | None) -> bool:
    """Whether a round may start another batch: no deadline, or `time.monotonic()` not past it yet."""
    return deadline is None or time.monotonic() < deadline
