"""django-q2 tasks for cases: thin, idempotent, safe to run twice or concurrently."""

from __future__ import annotations

from cases.engine import exceptions_sweep


def evaluate_due() -> dict[str, int]:
    """One rule sweep over every shipment whose next check is due."""
    result = exceptions_sweep()
    return {"evaluated": result.evaluated, "raised": result.raised, "resolved": result.resolved}
