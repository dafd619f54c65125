"""Bodies of the cases API: what the storefront sends about cases and events, and what it is answered."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

from cases.outbox import CaseSnapshot
from tracking.storefront import Time

EventType = Literal[
    "case.created", "case.updated", "case.resolved", "message.requested", "order.held", "order.released"
]
Text = Annotated[str, msgspec.Meta(max_length=5000)]


class CaseListOut(msgspec.Struct):
    """One page of cases; pass `next_cursor` as `after` for the next (null: this was the last page)."""

    results: list[CaseSnapshot]
    next_cursor: str | None


class OrderSummary(msgspec.Struct):
    platform_order_id: str
    status: str
    buyer_name: str
    amount: str
    currency: str
    placed_at: datetime
    ship_by: datetime
    live_session: str | None


class CheckpointSummary(msgspec.Struct):
    at: datetime
    tag: str
    subtag: str
    text: str
    location: str


class ParcelSummary(msgspec.Struct):
    carrier: str
    tracking_number: str
    status: str
    substatus: str
    booked_at: datetime | None
    accepted_at: datetime | None
    last_event_at: datetime | None
    last_progress_at: datetime | None
    delivered_at: datetime | None
    expected_delivery: date | None
    last_checkpoint: CheckpointSummary | None


class SlaOut(msgspec.Struct):
    """The SLA clocks: `due_at` is first contact's deadline until the buyer is contacted, then resolution's.
    `paused_since` is set while the case waits on the buyer (the clocks stop)."""

    due_at: datetime
    first_contact_due_at: datetime | None
    resolution_due_at: datetime | None
    first_contact_at: datetime | None
    paused_since: datetime | None
    overdue: bool


class TimelineEntryOut(msgspec.Struct):
    id: int
    at: datetime
    kind: str
    actor: str
    message: str


class CaseDetailOut(msgspec.Struct):
    """A case with its order, its parcel, its SLA clocks, what the rule saw (`facts`), its compensation and
    its timeline."""

    case: CaseSnapshot
    order: OrderSummary | None
    parcel: ParcelSummary | None
    sla: SlaOut
    facts: dict[str, Any]
    compensations: list[CompensationOut]
    timeline: list[TimelineEntryOut]


class NoteIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An internal note (never shown to the buyer)."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]


class BuyerReplyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The buyer's answer on the platform: their text, and for an oversold or out-of-stock case the option
    they chose. `external_id` (the platform's message id) makes a resent reply count once."""

    text: Text = ""
    option: Literal["wait", "swap", "refund"] | None = None
    received_at: Time | None = None
    external_id: Annotated[str, msgspec.Meta(max_length=100)] = ""


class EventOut(msgspec.Struct):
    """An event for the storefront; pushed to webhook endpoints with the same body."""

    id: int
    type: str
    created_at: datetime
    store: str
    data: dict[str, Any]


class EventListOut(msgspec.Struct):
    results: list[EventOut]
    next_cursor: str | None


class AckIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`delivered`: the storefront acted on the event. `failed`: it could not (the reason shows on the case;
    a buyer message it could not post is marked failed)."""

    status: Literal["delivered", "failed"] = "delivered"
    reason: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class EventStatusOut(msgspec.Struct):
    id: int
    type: str
    status: Literal["pending", "delivered", "failed"]
    delivered_at: datetime | None
    failed_at: datetime | None
    failure_reason: str


class EndpointIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A URL to POST the store's events to. `event_types` empty: every type."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    event_types: Annotated[list[EventType], msgspec.Meta(max_length=20)] = []
    description: Annotated[str, msgspec.Meta(max_length=200)] = ""


class EndpointPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What is omitted is kept. `roll_secret`: a new signing secret, answered once; the old one stops."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None
    event_types: Annotated[list[EventType], msgspec.Meta(max_length=20)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    is_active: bool | None = None
    roll_secret: bool = False


class EndpointOut(msgspec.Struct):
    id: int
    url: str
    description: str
    event_types: list[str]
    is_active: bool
    secret_hint: str
    created_at: datetime
    secret: str | None = msgspec.field(default=None)


class EndpointListOut(msgspec.Struct):
    results: list[EndpointOut]


class AttemptOut(msgspec.Struct):
    at: datetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str
    error: str


class DeliveryOut(msgspec.Struct):
    """One event sent to the endpoint: its state, and every attempt, newest first."""

    id: int
    event_id: int
    event_type: str
    status: str
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    log: list[AttemptOut]


class DeliveryListOut(msgspec.Struct):
    results: list[DeliveryOut]
    next_cursor: str | None


class CompensationOut(msgspec.Struct):
    """A compensation on a case: what it gives, its state, and the platform's result."""

    id: int
    case_id: int
    order_id: str
    kind: str
    status: str
    amount: str
    currency: str
    percent: str | None
    valid_until: date | None
    sku: str | None
    quantity: int
    replaces_tracking_number: str | None
    new_tracking_number: str | None
    note: str
    reason: str
    proposed_at: datetime
    approved_at: datetime | None
    executed_at: datetime | None
    platform_reference: str
    failure_reason: str


Amount = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9]{1,10}(\.[0-9]{1,2})?$", description='A decimal string, e.g. "5.00".')
]


class CompensationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A compensation the storefront proposes (a platform-initiated refund, say); an agent or a supervisor
    approves it within their limits. Send an `Idempotency-Key`: it is the proposal's key."""

    kind: Literal["coupon", "partial_refund", "full_refund", "reship", "swap", "gift", "wait_bonus"]
    amount: Amount | None = None
    percent: Amount | None = None
    valid_until: date | None = None
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    quantity: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    replaces_tracking_number: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    reason: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class ParcelIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    carrier: Annotated[
        str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    ]
    tracking_number: Annotated[
        str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
    ]


class CompensationResultIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The platform's result: `executed` with its reference (a reship with its new parcel), or `failed`
    with the reason the agent reads. Sending the same result again changes nothing."""

    status: Literal["executed", "failed"]
    reference: Annotated[str, msgspec.Meta(max_length=100)] = ""
    reason: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    shipment: ParcelIn | None = None


class EvidenceOut(msgspec.Struct):
    """A file of evidence on a case, as stored: its hash, size and type read from its bytes, and when it
    was captured (from the photo's EXIF data, the time entered, or the upload time: `capture_time_from`)."""

    id: int
    case_id: int
    kind: str
    original_name: str
    sha256: str
    size: int
    content_type: str
    captured_at: datetime
    capture_time_from: str
    uploaded_at: datetime
    withdrawn_at: datetime | None


class EvidenceListOut(msgspec.Struct):
    """Every file of a case, in upload order, withdrawn ones with their `withdrawn_at`."""

    results: list[EvidenceOut]


# --- complaints ------------------------------------------------------------------------------------------

ComplaintChannelName = Literal["chat", "after_sales", "phone", "email", "review", "other"]
Url = Annotated[str, msgspec.Meta(max_length=1000, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$")]


class ComplaintIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A buyer's complaint about one of the store's orders. `external_id` (the platform's message or
    after-sales request id) makes a resent complaint count once."""

    order_id: Annotated[
        str, msgspec.Meta(min_length=1, max_length=64, description="The platform's order id.")
    ]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=5000, description="The buyer's words.")]
    channel: ComplaintChannelName = "chat"
    external_id: Annotated[str, msgspec.Meta(max_length=100)] = ""
    attachments: Annotated[
        list[Url], msgspec.Meta(max_length=10, description="The files' URLs on the platform.")
    ] = []
    received_at: Time | None = None


class ClassifyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]


class ClassificationOut(msgspec.Struct):
    """What the text is about: the category, how sure the model is, the language, and the words that
    decided it. Below `threshold` a complaint goes to the triage queue."""

    category: str | None
    confidence: float
    language: str
    words: list[str]
    needs_triage: bool
    threshold: float


class ComplaintCaseOut(msgspec.Struct):
    id: int
    type: str
    status: str
    priority: str


class ComplaintOut(msgspec.Struct):
    """The complaint as recorded and routed: `routed` is `opened` (a new case), `joined` (an open case of the
    order), or null (waiting in triage for an agent to name its category)."""

    id: int
    order_id: str
    external_id: str
    channel: str
    received_at: datetime
    classification: ClassificationOut
    category: str | None
    routed: str | None
    case: ComplaintCaseOut | None
