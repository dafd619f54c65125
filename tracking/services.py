"""Writes to orders, shipments and tracking events. Every function here is safe to run twice."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Case, F, Max, Min, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact
from django.utils import timezone

from tracking.choices import Tag, normalize_subtag, normalize_tag
from tracking.models import Shipment, TrackingEvent

# Tags that mean the parcel physically moved forward; "last progress" is the latest of these.
PROGRESS_TAGS = (Tag.IN_TRANSIT, Tag.OUT_FOR_DELIVERY, Tag.AVAILABLE_FOR_PICKUP, Tag.DELIVERED)
ACCEPTANCE_SUBTAG = "InTransit_002"
# Above this many events in one call, PostgreSQL takes the COPY path; below it, multi-row INSERTs.
COPY_THRESHOLD = 2_000
_INSERT_CHUNK = 500
_REFRESH_CHUNK = 5_000

_EVENT_COLUMNS = (
    "shipment_id", "checkpoint_at", "tag", "subtag", "raw_code", "raw_text", "location", "source",
    "dedupe_key", "received_at",
)  # fmt: skip


@dataclass(frozen=True)
class EventData:
    """One normalized checkpoint as parsed from a provider, before it is stored."""

    checkpoint_at: datetime
    tag: str
    subtag: str
    source: str
    raw_code: str = ""
    raw_text: str = ""
    location: str = ""
    provider_key: str = ""  # the provider's own event id or checkpoint hash, when it gives one

    def dedupe_key(self, tracking_number: str) -> str:
        """Provider id when given, else a hash of what makes a checkpoint the same checkpoint."""
        if self.provider_key:
            basis = f"{self.source}|{self.provider_key}"
        else:
            basis = "|".join(
                (tracking_number, self.checkpoint_at.isoformat(), self.raw_code or self.subtag, self.location)
            )
        return hashlib.sha256(basis.encode()).hexdigest()[:40]


@dataclass
class IngestResult:
    new: int = 0
    duplicate: int = 0
    shipments_changed: set[int] = field(default_factory=set)

    def __iadd__(self, other: IngestResult) -> IngestResult:
        self.new += other.new
        self.duplicate += other.duplicate
        self.shipments_changed |= other.shipments_changed
        return self


def events_ingest(*, shipment: Shipment, events: Iterable[EventData], now: datetime | None = None) -> int:
    """Append new events to one shipment and refresh its summary. Returns the number of new events."""
    result = events_ingest_many(items=[(shipment.pk, shipment.tracking_number, list(events))], now=now)
    shipment.refresh_from_db()
    return result.new


def events_ingest_many(
    *, items: Sequence[tuple[int, str, Sequence[EventData]]], now: datetime | None = None
) -> IngestResult:
    """Append events to many shipments at once: `items` is (shipment id, tracking number, events).

    Idempotent: an event already stored (same dedupe key on the same shipment) is skipped by the database
    (`ON CONFLICT DO NOTHING`), so a replay adds nothing. Inserting and refreshing the summaries of the
    shipments that gained events happen in one transaction: a crash halfway leaves nothing behind, and
    running it again ends in the same state as one clean run.
    """
    now = now or timezone.now()
    rows: dict[tuple[int, str], tuple] = {}
    for shipment_id, tracking_number, events in items:
        for event in events:
            tag = normalize_tag(event.tag)
            key = event.dedupe_key(tracking_number)
            rows.setdefault(
                (shipment_id, key),
                (
                    shipment_id, event.checkpoint_at, tag.value, normalize_subtag(tag, event.subtag),
                    event.raw_code[:64], event.raw_text, event.location[:200], event.source[:20], key, now,
                ),
            )  # fmt: skip
    offered = sum(len(events) for _, _, events in items)
    if not rows:
        return IngestResult(duplicate=offered)
    with transaction.atomic():
        if connection.vendor == "postgresql" and len(rows) >= COPY_THRESHOLD:
            inserted = _insert_by_copy(list(rows.values()))
        else:
            inserted = _insert_by_values(list(rows.values()))
        changed = set(inserted)
        shipments_summary_refresh(shipment_ids=changed, now=now)
    return IngestResult(new=len(inserted), duplicate=offered - len(inserted), shipments_changed=changed)


def _insert_by_values(rows: list[tuple]) -> list[int]:
    """Multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING: portable (PostgreSQL, SQLite >= 3.35)."""
    table = TrackingEvent._meta.db_table
    columns = ", ".join(_EVENT_COLUMNS)
    placeholders = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
    inserted: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            values = ", ".join([placeholders] * len(chunk))
            params = [value for row in chunk for value in row]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608 - fixed identifiers only
                "ON CONFLICT (shipment_id, dedupe_key) DO NOTHING RETURNING shipment_id",
                params,
            )
            inserted += [row[0] for row in cursor.fetchall()]
    return inserted


def _insert_by_copy(rows: list[tuple]) -> list[int]:
    """PostgreSQL bulk path: binary COPY into a session staging table, then one idempotent INSERT ... SELECT."""
    table = TrackingEvent._meta.db_table
    columns = ", ".join(_EVENT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS tracking_event_stage ("
            "shipment_id bigint, checkpoint_at timestamptz, tag varchar(20), subtag varchar(40), "
            "raw_code varchar(64), raw_text text, location varchar(200), source varchar(20), "
            "dedupe_key varchar(64), received_at timestamptz) ON COMMIT DELETE ROWS"
        )
        raw = cursor.cursor  # psycopg's own cursor, for COPY
        with raw.copy(f"COPY tracking_event_stage ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(
                ["int8", "timestamptz", "varchar", "varchar", "varchar", "text", "varchar", "varchar", "varchar",
                 "timestamptz"]
            )  # fmt: skip
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM tracking_event_stage "  # noqa: S608
            "ON CONFLICT (shipment_id, dedupe_key) DO NOTHING RETURNING shipment_id"
        )
        inserted = [row[0] for row in cursor.fetchall()]
        cursor.execute("TRUNCATE tracking_event_stage")
    return inserted


def shipment_summary_refresh(*, shipment: Shipment, now: datetime | None = None) -> Shipment:
    shipments_summary_refresh(shipment_ids=[shipment.pk], now=now)
    shipment.refresh_from_db()
    return shipment


def shipments_summary_refresh(*, shipment_ids: Iterable[int], now: datetime | None = None) -> int:
    """Derive the shipments' status fields from their events (facts first, derived state second).

    One set-based UPDATE per chunk. The status is the latest checkpoint by time, so an event that arrives
    late never moves a shipment backwards; the first acceptance scan is kept as the appeal truth; delivered
    parcels stop polling; every refreshed shipment is due for the rules now.
    """
    now = now or timezone.now()
    ids = sorted(set(shipment_ids))
    events = TrackingEvent.objects.filter(shipment=OuterRef("pk"))
    latest = events.order_by("-checkpoint_at", "-id")
    latest_tag = Subquery(latest.values("tag")[:1])
    is_delivered = Exact(latest_tag, Value(Tag.DELIVERED.value))

    def aggregate(qs, expression):
        return Subquery(qs.values("shipment").annotate(v=expression).values("v")[:1])

    updated = 0
    for start in range(0, len(ids), _REFRESH_CHUNK):
        updated += Shipment.objects.filter(pk__in=ids[start : start + _REFRESH_CHUNK]).update(
            status=Coalesce(latest_tag, F("status")),
            substatus=Coalesce(Subquery(latest.values("subtag")[:1]), F("substatus")),
            last_event_at=aggregate(events, Max("checkpoint_at")),
            last_progress_at=aggregate(events.filter(tag__in=PROGRESS_TAGS), Max("checkpoint_at")),
            accepted_at=Coalesce(
                aggregate(events.filter(subtag=ACCEPTANCE_SUBTAG), Min("checkpoint_at")),
                aggregate(events.filter(tag__in=PROGRESS_TAGS), Min("checkpoint_at")),
            ),
            delivered_at=Case(
                When(is_delivered, then=aggregate(events.filter(tag=Tag.DELIVERED), Min("checkpoint_at"))),
                default=Value(None),
            ),
            next_poll_at=Case(When(is_delivered, then=Value(None)), default=F("next_poll_at")),
            next_check_at=Value(now),
        )
    return updated
