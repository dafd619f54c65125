"""Writes to orders, shipments and tracking events. Every function here is safe to run twice."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Case, F, Max, Min, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.db import array_literal
from tracking.choices import Tag, normalize_subtag, normalize_tag
from tracking.models import Shipment, TrackingConnection, TrackingEvent
from tracking.selectors import carriers_taken

CARRIER_CODE_MAX_LENGTH = Shipment._meta.get_field("carrier").max_length

# Tags that mean the parcel physically moved forward; "last progress" is the latest of these.
PROGRESS_TAGS = (Tag.IN_TRANSIT, Tag.OUT_FOR_DELIVERY, Tag.AVAILABLE_FOR_PICKUP, Tag.DELIVERED)
ACCEPTANCE_SUBTAG = "InTransit_002"
# Above this many events in one call, PostgreSQL's ingest stages them by COPY; below it, as arrays.
COPY_THRESHOLD = 200  # measured: one array per column wins below about 100 to 200 rows, COPY above
_INSERT_CHUNK = 500
_REFRESH_CHUNK = 5_000

_EVENT_COLUMNS = (
    "shipment_id", "checkpoint_at", "tag", "subtag", "raw_code", "raw_text", "location", "source",
    "dedupe_key", "received_at",
)  # fmt: skip


class EventData(NamedTuple):
    """One normalized checkpoint as parsed from a provider, before it is stored.

    Immutable. A NamedTuple rather than a frozen dataclass: one is built per checkpoint of every push, and a
    frozen dataclass's __init__ (object.__setattr__ per field) cost twice as much."""

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


def connection_credentials_apply(
    connection: TrackingConnection,
    *,
    webhook_secret: str = "",
    api_key: str = "",
    settings: Mapping[str, object] | None = None,
) -> None:
    """Re-key a connection in memory (the caller saves it): a given secret or API key replaces the stored
    one, an empty one keeps it; each of `settings` (non-secret credentials such as Kdniao's business_id or
    requests_per_second) is set, or removed when None or empty. Changed credentials end a registration pause
    (a permanent provider error's). The one place the command and the admin change what a connection signs
    and pulls with."""
    if webhook_secret:
        connection.webhook_secret = webhook_secret
    before = connection.credentials
    credentials = dict(before) if isinstance(before, dict) else {}
    if api_key:
        credentials["api_key"] = api_key
    for name, value in (settings or {}).items():
        if value in (None, ""):
            credentials.pop(name, None)
        else:
            credentials[name] = value
    connection.credentials = credentials
    if credentials != before:
        connection.registration_paused_until = None  # a permanent error's pause ends with new credentials


def carrier_codes_parse(text: str) -> list[str]:
    """A connection's carriers as typed (separated by commas, spaces or lines) into the stored list: lower
    case, each once, in the order given. A code that cannot be one is a ValidationError naming it."""
    codes: list[str] = []
    for code in text.replace(",", " ").replace(";", " ").split():
        code = code.strip().lower()
        if len(code) > CARRIER_CODE_MAX_LENGTH or not all(c.isalnum() or c in "-_." for c in code):
            raise ValidationError(
                _("“%(code)s” is not a carrier code (letters, digits, - _ and ., up to %(max)d)."),
                params={"code": code, "max": CARRIER_CODE_MAX_LENGTH},
                code="carrier",
            )
        if code not in codes:
            codes.append(code)
    return codes


def connection_carriers_clean(
    text: str, *, store_id: int, exclude: int | None, active: bool = True
) -> list[str]:
    """A connection's carriers as typed, checked: parsed (carrier_codes_parse), and none of them named by
    another active connection of the store (an inactive connection claims none). ValidationError else.
    The one check the admin and create_tracking_connection make."""
    carriers = carrier_codes_parse(text)
    taken = (
        carriers_taken(store_id=store_id, carriers=carriers, exclude=exclude) if carriers and active else []
    )
    if taken:
        raise ValidationError(
            _("Already tracked by another connection of the store: %(list)s"),
            params={"list": "; ".join(taken)},
            code="carrier_taken",
        )
    return carriers


@dataclass
class IngestResult:
    new: int = 0
    duplicate: int = 0
    shipments_changed: set[int] = field(default_factory=set)
    # With `owners`: each owner's share. An event offered twice is new for the first owner offering it.
    per_owner: dict[Hashable, IngestResult] = field(default_factory=dict)

    def __iadd__(self, other: IngestResult) -> IngestResult:
        self.new += other.new
        self.duplicate += other.duplicate
        self.shipments_changed |= other.shipments_changed
        for owner, share in other.per_owner.items():
            mine = self.per_owner.setdefault(owner, IngestResult())
            mine += share
        return self


def events_ingest(*, shipment: Shipment, events: Iterable[EventData], now: datetime | None = None) -> int:
    """Append new events to one shipment and refresh its summary. Returns the number of new events."""
    result = events_ingest_many(items=[(shipment.pk, shipment.tracking_number, list(events))], now=now)
    shipment.refresh_from_db()
    return result.new


def events_ingest_many(
    *,
    items: Sequence[tuple[int, str, Sequence[EventData]]],
    now: datetime | None = None,
    owners: Sequence[Hashable] | None = None,
    expected_delivery: Mapping[int, date] | None = None,
) -> IngestResult:
    """Append events to many shipments at once: `items` is (shipment id, tracking number, events).

    Idempotent: an event already stored (same dedupe key on the same shipment) is skipped by the database
    (`ON CONFLICT DO NOTHING`), so a replay adds nothing. Inserting and refreshing the summaries of the
    shipments that gained events happen in one transaction: a crash halfway leaves nothing behind, and
    running it again ends in the same state as one clean run.

    `owners`, parallel to `items` (e.g. the webhook delivery each came from), splits the counts in
    `per_owner` as if the owners had been ingested one after another, in one statement for them all.
    `expected_delivery` (shipment id -> the provider's current estimate) is stored in the same transaction:
    with the summary of a shipment that gained events, else only where it changed.
    """
    now = now or timezone.now()
    rows: dict[tuple[int, str], tuple] = {}
    first_owner: dict[tuple[int, str], Hashable] = {}
    per_owner: dict[Hashable, IngestResult] = {}
    for index, (shipment_id, tracking_number, events) in enumerate(items):
        if owners is not None:
            owner = owners[index]
            share = per_owner.setdefault(owner, IngestResult())
            share.duplicate += len(events)  # until the insert says which were new
        for event in events:
            key = event.dedupe_key(tracking_number)
            if (shipment_id, key) in rows:
                continue
            rows[shipment_id, key] = (
                shipment_id, event.checkpoint_at, *_taxonomy(event.tag, event.subtag),
                event.raw_code[:64], event.raw_text, event.location[:200], event.source[:20], key, now,
            )  # fmt: skip
            if owners is not None:
                first_owner[shipment_id, key] = owner
    offered = sum(len(events) for _, _, events in items)
    expected_delivery = expected_delivery or {}
    if not rows:
        _expected_delivery_update(expected_delivery)
        return IngestResult(duplicate=offered, per_owner=per_owner)
    with transaction.atomic():
        # The dedupe keys of what was inserted only matter for splitting the counts among owners.
        keys = owners is not None
        if connection.vendor == "postgresql":
            inserted = _insert_merging(
                list(rows.values()), keys=keys, now=now, expected_delivery=expected_delivery
            )
        else:
            inserted = _insert_by_values(list(rows.values()), keys=keys)
            shipments_summary_refresh(
                shipment_ids=inserted.shipments, now=now, expected_delivery=expected_delivery
            )
        changed = inserted.shipments
        _expected_delivery_update({pk: eta for pk, eta in expected_delivery.items() if pk not in changed})
    if owners is not None:
        for shipment_id, key in inserted.keys:
            share = per_owner[first_owner[shipment_id, key]]
            share.new += 1
            share.duplicate -= 1
            share.shipments_changed.add(shipment_id)
    return IngestResult(
        new=inserted.new, duplicate=offered - inserted.new, shipments_changed=changed, per_owner=per_owner
    )


class _Inserted(NamedTuple):
    new: int  # events inserted
    shipments: set[int]  # the shipments that gained them
    keys: list[tuple[int, str]]  # (shipment id, dedupe key) of each, when asked for


def _insert_by_values(rows: list[tuple], *, keys: bool) -> _Inserted:
    """Multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING (SQLite >= 3.35); the summaries follow apart."""
    table = TrackingEvent._meta.db_table
    columns = ", ".join(_EVENT_COLUMNS)
    placeholders = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
    returned: list[tuple[int, str]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            values = ", ".join([placeholders] * len(chunk))
            params = [value for row in chunk for value in row]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608 - fixed identifiers only
                "ON CONFLICT (shipment_id, dedupe_key) DO NOTHING RETURNING shipment_id, dedupe_key",
                params,
            )
            returned += cursor.fetchall()
    return _Inserted(len(returned), {row[0] for row in returned}, returned if keys else [])


def _insert_merging(
    rows: list[tuple], *, keys: bool, now: datetime, expected_delivery: Mapping[int, date]
) -> _Inserted:
    """PostgreSQL: one statement that inserts what is new (`ON CONFLICT DO NOTHING`) and merges exactly
    those events into their shipments' summaries. A large batch reaches it through binary COPY into a session
    staging table; a small one as one array per column (one round trip: a push or a poll of a few parcels)."""
    etas = [(pk, eta) for pk, eta in expected_delivery.items()]
    params = {  # arrays as literals: see portal.db.array_literal
        "eta_ids": array_literal(pk for pk, _ in etas),
        "etas": array_literal(eta for _, eta in etas),
        "now": now,
        "progress": [tag.value for tag in PROGRESS_TAGS],
        "acceptance": ACCEPTANCE_SUBTAG,
        "delivered": Tag.DELIVERED.value,
    }
    with connection.cursor() as cursor:
        if len(rows) >= COPY_THRESHOLD:
            _stage(cursor, rows)
            statement = _INSERT_MERGING_STAGED_KEYS if keys else _INSERT_MERGING_STAGED
        else:
            for index, column in enumerate(zip(*rows, strict=True)):
                params[f"c{index}"] = array_literal(column)
            statement = _INSERT_MERGING_ARRAYS_KEYS if keys else _INSERT_MERGING_ARRAYS
        cursor.execute(statement, params)
        returned = cursor.fetchall()
    if keys:
        return _Inserted(len(returned), {row[0] for row in returned}, returned)
    return _Inserted(sum(row[1] for row in returned), {row[0] for row in returned}, [])


def _stage(cursor, rows: list[tuple]) -> None:
    """The rows, by binary COPY, into this session's staging table, emptied first."""
    cursor.execute(_STAGE_CREATE)
    # Rows of an earlier call in this transaction (commit empties the table); else a no-op.
    cursor.execute("DELETE FROM tracking_event_stage")
    raw = cursor.cursor  # psycopg's own cursor, for COPY
    with raw.copy(
        f"COPY tracking_event_stage ({', '.join(_EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(
            ["int8", "timestamptz", "varchar", "varchar", "varchar", "text", "varchar", "varchar", "varchar",
             "timestamptz"]
        )  # fmt: skip
        for row in rows:
            copy.write_row(row)


_STAGE_CREATE = (
    "CREATE TEMP TABLE IF NOT EXISTS tracking_event_stage ("
    "shipment_id bigint, checkpoint_at timestamptz, tag varchar(20), subtag varchar(40), "
    "raw_code varchar(64), raw_text text, location varchar(200), source varchar(20), "
    "dedupe_key varchar(64), received_at timestamptz) ON COMMIT DELETE ROWS"
)


def shipments_summary_refresh(
    *,
    shipment_ids: Iterable[int],
    now: datetime | None = None,
    expected_delivery: Mapping[int, date] | None = None,
) -> int:
    """Derive the shipments' status fields from all their events (facts first, derived state second).

    The rebuild: SQLite's ingestion calls it after each insert, and it repairs a summary by hand. PostgreSQL's
    ingestion folds only the new events into the stored summary (`_INSERT_MERGING`), to the same result: a
    test holds the two equal. One set-based UPDATE per chunk. The status is the latest checkpoint by time, so an event that arrives
    late never moves a shipment backwards; the first acceptance scan is kept as the appeal truth; delivered
    parcels stop polling; every refreshed shipment is due for the rules now. `expected_delivery`, when
    given, sets the estimates of the refreshed shipments it names in the same statement.
    """
    now = now or timezone.now()
    ids = sorted(set(shipment_ids))
    expected_delivery = expected_delivery or {}
    if connection.vendor == "postgresql":
        return sum(
            _summaries_refresh_aggregate(ids[i : i + _REFRESH_CHUNK], now, expected_delivery)
            for i in range(0, len(ids), _REFRESH_CHUNK)
        )
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
            next_poll_at=Case(  # delivered parcels stop polling; one that is no longer delivered resumes
                When(Exact(Coalesce(latest_tag, F("status")), Value(Tag.DELIVERED.value)), then=Value(None)),
                When(Q(status=Tag.DELIVERED) | Q(next_poll_at__isnull=True), then=Value(now)),
                default=F("next_poll_at"),
            ),
            next_check_at=Value(now),
        )
    refreshed = set(ids)
    _expected_delivery_update({pk: eta for pk, eta in expected_delivery.items() if pk in refreshed})
    return updated


def _expected_delivery_update(expected_delivery: Mapping[int, date]) -> None:
    """One UPDATE per distinct date, touching only the shipments whose date changed."""
    by_date: dict[date, list[int]] = {}
    for pk, eta in expected_delivery.items():
        by_date.setdefault(eta, []).append(pk)
    for eta, pks in by_date.items():
        Shipment.objects.filter(pk__in=pks).exclude(expected_delivery=eta).update(expected_delivery=eta)


@lru_cache(maxsize=1024)
def _taxonomy(tag: str, subtag: str) -> tuple[str, str]:
    """normalize_tag and normalize_subtag, memoized: a few pairs arrive hundreds of thousands of times."""
    normalized = normalize_tag(tag)
    return normalized.value, normalize_subtag(normalized, subtag)


# What a summary is made of, aggregated over a set of events: the rebuild reads all of a shipment's events,
# the merge only those just inserted. One definition, so the two cannot drift apart.
_FACTS = """array_agg(ARRAY[tag, subtag] ORDER BY checkpoint_at DESC, id DESC) AS latest,
    max(checkpoint_at) AS last_event_at,
    max(checkpoint_at) FILTER (WHERE tag = ANY(%(progress)s)) AS last_progress_at,
    min(checkpoint_at) FILTER (WHERE subtag = %(acceptance)s) AS acceptance_at,
    min(checkpoint_at) FILTER (WHERE tag = ANY(%(progress)s)) AS first_progress_at,
    min(checkpoint_at) FILTER (WHERE tag = %(delivered)s) AS first_delivered_at"""


def _next_poll(latest_tag: str) -> str:
    """SQL for a shipment's next poll once `latest_tag` (an SQL expression) is its status: delivered parcels
    stop polling; one that is no longer delivered (returned, lost after all), or whose polling had stopped
    after a long silence (tracking.ingest.POLL_SILENCE_LIMIT) and has news again, resumes now. The same rule as
    the portable refresh's `next_poll_at` Case, for the rebuild and the merge alike."""
    return (
        f"CASE WHEN {latest_tag} = %(delivered)s THEN NULL "
        "WHEN s.status = %(delivered)s OR s.next_poll_at IS NULL THEN %(now)s ELSE s.next_poll_at END"
    )


# One pass over the shipments' events (the (shipment, checkpoint_at) index), grouped, instead of seven
# correlated subqueries per shipment: the same rules as the portable version above; the latest checkpoint's
# tag and subtag come from one ordered aggregate (one sort per shipment, not two). The planner cannot
# estimate the grouped subquery's size; `s.id = ANY(...)` lets it probe the primary key for the shipments
# instead of scanning the whole table to hash-join them. The estimates join the grouped rows (a hash of at
# most a chunk's ids), not the shipments: joined there, with that low row estimate, the planner would loop
# over the unnest once per shipment.
_REFRESH_BY_AGGREGATE = f"""
UPDATE {Shipment._meta.db_table} s SET
    status = e.latest[1][1],
    substatus = e.latest[1][2],
    last_event_at = e.last_event_at,
    last_progress_at = e.last_progress_at,
    accepted_at = COALESCE(e.acceptance_at, e.first_progress_at),
    delivered_at = CASE WHEN e.latest[1][1] = %(delivered)s THEN e.first_delivered_at END,
    next_poll_at = {_next_poll("e.latest[1][1]")},
    next_check_at = %(now)s,
    expected_delivery = COALESCE(e.eta, s.expected_delivery)
FROM (
    SELECT a.*, v.eta
    FROM (
        SELECT
            shipment_id,
            {_FACTS}
        FROM {TrackingEvent._meta.db_table}
        WHERE shipment_id = ANY(%(ids)s::bigint[])
        GROUP BY shipment_id
    ) a
    LEFT JOIN unnest(%(eta_ids)s::bigint[], %(etas)s::date[]) AS v(id, eta) ON v.id = a.shipment_id
) e
WHERE s.id = e.shipment_id AND s.id = ANY(%(ids)s::bigint[])
"""  # noqa: S608 - fixed identifiers only
# A shipment with no events at all (refreshed by hand) gets what the portable version gives it.
_REFRESH_WITHOUT_EVENTS = f"""
UPDATE {Shipment._meta.db_table} s SET
    last_event_at = NULL, last_progress_at = NULL, accepted_at = NULL, delivered_at = NULL,
    next_check_at = %(now)s
WHERE s.id = ANY(%(ids)s::bigint[])
    AND NOT EXISTS (SELECT 1 FROM {TrackingEvent._meta.db_table} e WHERE e.shipment_id = s.id)
"""  # noqa: S608 - fixed identifiers only


def _summaries_refresh_aggregate(ids: list[int], now: datetime, expected_delivery: Mapping[int, date]) -> int:
    etas = [(pk, expected_delivery[pk]) for pk in ids if pk in expected_delivery]
    params = {  # arrays as literals: see portal.db.array_literal
        "eta_ids": array_literal(pk for pk, _ in etas),
        "etas": array_literal(eta for _, eta in etas),
        "ids": array_literal(ids),
        "now": now,
        "progress": [tag.value for tag in PROGRESS_TAGS],
        "acceptance": ACCEPTANCE_SUBTAG,
        "delivered": Tag.DELIVERED.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(_REFRESH_BY_AGGREGATE, params)
        updated = cursor.rowcount
        if updated < len(ids):
            cursor.execute(_REFRESH_WITHOUT_EVENTS, params)
            updated += cursor.rowcount
    return updated


# The PostgreSQL ingest in one statement: insert the staged events that are new, and fold exactly those into
# their shipments' stored summaries, the same rules as shipments_summary_refresh without reading the
# shipments' older events again (first acceptance and first delivery read them only where the stored summary
# cannot tell). Folding into the stored row rather than recomputing also keeps two workers ingesting one
# parcel at once right: the second UPDATE waits for the first, then merges into the row the first committed,
# where a recomputation would write the aggregate of a snapshot taken before the first committed.
# All parts of a WITH see the same snapshot: `o` (older events) does not see the rows `ins` inserts.
_EVENTS = TrackingEvent._meta.db_table
_NEWER = "(s.last_event_at IS NULL OR n.last_event_at >= s.last_event_at)"  # the new events hold the latest
_LATEST_TAG = f"CASE WHEN {_NEWER} THEN n.latest[1][1] ELSE s.status END"
_INSERT_MERGING_BASE = f"""
WITH ins AS (
    INSERT INTO {_EVENTS} ({", ".join(_EVENT_COLUMNS)})
    {{source}}
    ON CONFLICT (shipment_id, dedupe_key) DO NOTHING
    RETURNING id, shipment_id, checkpoint_at, tag, subtag, dedupe_key
), n AS (
    SELECT
        shipment_id,
        count(*) AS added,
        {_FACTS}
    FROM ins
    GROUP BY shipment_id
    ORDER BY shipment_id  -- shipments locked in id order, as every worker does: no deadlock between two
), merged AS (
    UPDATE {Shipment._meta.db_table} s SET
        status = {_LATEST_TAG},
        substatus = CASE WHEN {_NEWER} THEN n.latest[1][2] ELSE s.substatus END,
        last_event_at = GREATEST(s.last_event_at, n.last_event_at),
        last_progress_at = GREATEST(s.last_progress_at, n.last_progress_at),
        -- the first acceptance scan, else the first progress: the stored value does not say which it was
        accepted_at = CASE
            WHEN s.accepted_at IS NULL THEN COALESCE(n.acceptance_at, n.first_progress_at)
            WHEN n.acceptance_at <= s.accepted_at THEN n.acceptance_at
            WHEN n.acceptance_at IS NULL AND (n.first_progress_at IS NULL OR n.first_progress_at >= s.accepted_at)
                THEN s.accepted_at
            ELSE COALESCE(
                LEAST(n.acceptance_at, (
                    SELECT min(o.checkpoint_at) FROM {_EVENTS} o
                    WHERE o.shipment_id = s.id AND o.subtag = %(acceptance)s
                )),
                LEAST(s.accepted_at, n.first_progress_at)
            )
        END,
        -- the first delivery scan while the latest checkpoint is a delivery
        delivered_at = CASE WHEN {_LATEST_TAG} = %(delivered)s THEN
            CASE
                WHEN s.delivered_at IS NOT NULL THEN LEAST(s.delivered_at, n.first_delivered_at)
                WHEN s.last_event_at IS NULL THEN n.first_delivered_at
                ELSE LEAST(n.first_delivered_at, (
                    SELECT min(o.checkpoint_at) FROM {_EVENTS} o
                    WHERE o.shipment_id = s.id AND o.tag = %(delivered)s
                ))
            END
        END,
        next_poll_at = {_next_poll(_LATEST_TAG)},
        next_check_at = %(now)s,
        expected_delivery = COALESCE(v.eta, s.expected_delivery)
    FROM n LEFT JOIN unnest(%(eta_ids)s::bigint[], %(etas)s::date[]) AS v(id, eta) ON v.id = n.shipment_id
    WHERE s.id = n.shipment_id
)
"""  # noqa: S608 - fixed identifiers only
_STAGED = f"SELECT {', '.join(_EVENT_COLUMNS)} FROM tracking_event_stage"  # noqa: S608 - fixed identifiers
_ARRAYS = (  # one array per column of _EVENT_COLUMNS, in order
    "SELECT * FROM unnest(%(c0)s::bigint[], %(c1)s::timestamptz[], %(c2)s::text[], %(c3)s::text[], "
    "%(c4)s::text[], %(c5)s::text[], %(c6)s::text[], %(c7)s::text[], %(c8)s::text[], %(c9)s::timestamptz[])"
)
_BY_SHIPMENT, _BY_EVENT = "SELECT shipment_id, added FROM n", "SELECT shipment_id, dedupe_key FROM ins"
_INSERT_MERGING_STAGED = _INSERT_MERGING_BASE.format(source=_STAGED) + _BY_SHIPMENT
_INSERT_MERGING_STAGED_KEYS = _INSERT_MERGING_BASE.format(source=_STAGED) + _BY_EVENT
_INSERT_MERGING_ARRAYS = _INSERT_MERGING_BASE.format(source=_ARRAYS) + _BY_SHIPMENT
_INSERT_MERGING_ARRAYS_KEYS = _INSERT_MERGING_BASE.format(source=_ARRAYS) + _BY_EVENT
