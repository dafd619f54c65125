"""django-q2 tasks for the reports: thin, idempotent, safe to run twice or concurrently."""

from __future__ import annotations

from datetime import datetime, timedelta


def live_reviews_due(now: datetime | None = None) -> dict[str, int]:
    """Write the post-live review of every session that ended 48 h ago and has none, and email its store's
    supervisors and admins a link once (cases.reporting.review)."""
    from cases.reporting.review import live_reviews_write_due

    result = live_reviews_write_due(now=now)
    return {"written": result.written, "notified": result.notified}


def refresh_rollups(now: datetime | None = None) -> dict[str, int]:
    """Every store's report rollups brought up to date: the days changed since the last run rebuilt
    (cases.reporting.rollups)."""
    from cases.reporting.rollups import rollups_refresh

    result = rollups_refresh(now=now)
    return {"stores": result.stores, "marked": result.marked, "rebuilt": result.rebuilt}


def reconcile_rollups(days: int = 3) -> dict[str, int]:
    """Nightly: the last few days of every store rebuilt from scratch, whatever the refresh saw. It catches
    what no change stamp tells (a first carrier scan that arrived after later scans, a transaction that
    committed more than rollups.OVERLAP after it was stamped)."""
    from django.utils import timezone

    from cases.reporting.rollups import rollups_rebuild

    since = timezone.localdate() - timedelta(days=days)
    return {"rebuilt": rollups_rebuild(since=since)}
