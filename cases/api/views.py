"""The storefront's reads of cases and events, its notes and the buyer's replies, its acknowledgements, and
the store's webhook endpoints. Thin: validate, call a selector or a service, answer."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.request import Request

from cases.api.structs import (
    AckIn,
    AttemptOut,
    BuyerReplyIn,
    CaseDetailOut,
    CaseListOut,
    CheckpointSummary,
    ClassificationOut,
    ClassifyIn,
    CompensationIn,
    CompensationOut,
    CompensationResultIn,
    ComplaintCaseOut,
    ComplaintIn,
    ComplaintOut,
    DeliveryListOut,
    DeliveryOut,
    EndpointIn,
    EndpointListOut,
    EndpointOut,
    EndpointPatch,
    EventListOut,
    EventOut,
    EventStatusOut,
    EvidenceListOut,
    EvidenceOut,
    NoteIn,
    OrderSummary,
    ParcelSummary,
    SlaOut,
    TimelineEntryOut,
)
from cases.choices import CaseStatus, CaseType, CompensationOrigin, EvidenceKind, StorefrontEventType
from cases.compensation import CompensationError, Proposal, Result, compensation_propose, compensation_result
from cases.complaints.intake import (
    ComplaintError,
    complaint_classify,
    complaint_receive,
    confidence_threshold,
)
from cases.evidence import EvidenceRefused, evidence_add
from cases.integration import (
    IntegrationError,
    buyer_reply_record,
    case_note_add_by_key,
    endpoint_create,
    endpoint_delete,
    endpoint_update,
    event_ack,
)
from cases.models import (
    Case,
    CaseEvent,
    Compensation,
    Complaint,
    EventDelivery,
    Evidence,
    StorefrontEvent,
    WebhookEndpoint,
)
from cases.outbox import PRIORITY_NAMES, case_snapshot, delivery_redeliver, envelope
from cases.selectors import (
    case_compensations,
    case_evidence,
    case_get_for_store,
    case_parcel_get,
    case_timeline,
    cases_for_store,
    compensation_get_for_store,
    delivery_get_for_endpoint,
    endpoint_deliveries,
    endpoint_get_for_store,
    endpoints_for_store,
    event_get_for_store,
    events_pending_for_store,
)
from cases.texts import SUMMARY_KEY, event_message
from portal.api.bodies import body, json_response
from portal.api.pagination import keyset_page, limit_param
from portal.api.problems import ApiError, validation_error
from portal.api.schema import IDEMPOTENCY_PARAMETER, POST, READ, WRITE, endpoint, path_param, query_param
from portal.api.views import StoreAPIView
from portal.uploads import NameKeepingDRFParser, sent_name
from tracking.selectors import latest_checkpoint, order_get_for_store, sku_get_for_store

CASE_ID = path_param("id", "The case's id.", int)
EVENT_ID = path_param("id", "The event's id.", int)
ENDPOINT_ID = path_param("id", "The webhook endpoint's id.", int)
DELIVERY_ID = path_param("delivery_id", "The delivery's id.", int)
LIMIT = query_param("limit", "Rows per page, 1 to 200 (default 50).", int)
AFTER = query_param("after", "The `next_cursor` of the previous page.")
TIMELINE_MAX = 200
_PRIORITIES = {name: value for value, name in PRIORITY_NAMES.items()}


def _refused(exc: IntegrationError) -> ApiError:
    return validation_error(
        (field, str(message)) for field, messages in exc.message_dict.items() for message in messages
    )


def _choice(request: Request, name: str, allowed: list[str]) -> str:
    value = request.query_params.get(name, "")
    if value and value not in allowed:
        raise validation_error([(name, f"One of: {', '.join(allowed)}.")])
    return value


def _time_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name, "")
    if not raw:
        return None
    try:
        value = parse_datetime(raw.replace(" ", "+"))
    except ValueError:
        value = None
    if value is None or timezone.is_naive(value):
        raise validation_error([(name, "An ISO 8601 time with its offset, e.g. 2026-11-12T08:00:00+08:00.")])
    return value


# --- cases ---------------------------------------------------------------------------------------------


class CaseListView(StoreAPIView):
    @endpoint(
        summary="List cases",
        operation_id="cases_list",
        description="The store's cases in the order they were opened (oldest first), so a client paging "
        "never misses or repeats one while new cases are raised. With `updated_after` the list is the "
        "changes feed instead: cases changed after that time, in the order they changed.",
        tags=["cases"],
        parameters=[
            query_param("type", "Case type.", enum=CaseType.values),
            query_param("status", "A status, or `open` for any open one.", enum=["open", *CaseStatus.values]),
            query_param("priority", "Priority.", enum=list(_PRIORITIES)),
            query_param("order", "The platform order id."),
            query_param("tracking_number", "A parcel's tracking number."),
            query_param("updated_after", "Only cases changed after this time (ISO 8601 with offset)."),
            LIMIT,
            AFTER,
        ],
        responses={200: (CaseListOut, "One page of cases.")},
        errors=READ,
    )
    def get(self, request: Request) -> HttpResponse:
        priority = _choice(request, "priority", list(_PRIORITIES))
        updated_after = _time_param(request, "updated_after")
        cases = cases_for_store(
            self.store,
            type=_choice(request, "type", CaseType.values),
            status=_choice(request, "status", ["open", *CaseStatus.values]),
            priority=_PRIORITIES[priority] if priority else None,
            platform_order_id=request.query_params.get("order", "")[:64],
            tracking_number=request.query_params.get("tracking_number", "")[:64],
            updated_after=updated_after,
        )
        order, kinds = (("updated_at", "id"), (datetime, int)) if updated_after else (("id",), (int,))
        page = keyset_page(
            cases, order=order, kinds=kinds, after=request.query_params.get("after"),
            limit=limit_param(request.query_params.get("limit")),
        )  # fmt: skip
        return json_response(
            CaseListOut(results=[case_snapshot(c) for c in page.rows], next_cursor=page.next_cursor)
        )


def _actor(entry: CaseEvent) -> str:
    if entry.actor_id is not None:
        return entry.actor.get_username()
    if isinstance(entry.data, dict) and entry.data.get("api_key"):
        return f"api:{entry.data['api_key']}"
    return "system"


def _case_detail(case: Case) -> CaseDetailOut:
    order = case.order
    parcel = None
    if case.shipment_id:
        shipment = case.shipment
        latest = latest_checkpoint(shipment)
        parcel = ParcelSummary(
            carrier=shipment.carrier, tracking_number=shipment.tracking_number, status=shipment.status,
            substatus=shipment.substatus, booked_at=shipment.booked_at, accepted_at=shipment.accepted_at,
            last_event_at=shipment.last_event_at, last_progress_at=shipment.last_progress_at,
            delivered_at=shipment.delivered_at, expected_delivery=shipment.expected_delivery,
            last_checkpoint=CheckpointSummary(
                at=latest.checkpoint_at, tag=latest.tag, subtag=latest.subtag, text=latest.raw_text,
                location=latest.location,
            ) if latest else None,
        )  # fmt: skip
    timeline = list(case_timeline(case).select_related("actor").order_by("-created_at", "-pk")[:TIMELINE_MAX])
    timeline.reverse()
    return CaseDetailOut(
        case=case_snapshot(case),
        order=OrderSummary(
            platform_order_id=order.platform_order_id, status=order.status, buyer_name=order.buyer_name,
            amount=f"{order.amount:.2f}", currency=order.currency, placed_at=order.placed_at,
            ship_by=order.ship_by,
            live_session=(order.live_session.external_id or None) if order.live_session_id else None,
        ) if order else None,
        parcel=parcel,
        sla=SlaOut(
            due_at=case.due_at, first_contact_due_at=case.first_contact_due_at,
            resolution_due_at=case.resolution_due_at, first_contact_at=case.first_contact_at,
            paused_since=case.sla_paused_at, overdue=case.is_overdue,
        ),
        facts={key: value for key, value in (case.facts or {}).items() if key != SUMMARY_KEY},
        compensations=[compensation_out(c) for c in case_compensations(case)],
        timeline=[
            TimelineEntryOut(id=e.pk, at=e.created_at, kind=e.kind, actor=_actor(e), message=event_message(e))
            for e in timeline
        ],
    )  # fmt: skip


class CaseView(StoreAPIView):
    @endpoint(
        summary="Read a case",
        operation_id="case_get",
        description="The case with its order, its parcel's tracking, its SLA clocks and its timeline "
        f"(the latest {TIMELINE_MAX} entries).",
        tags=["cases"],
        parameters=[CASE_ID],
        responses={200: (CaseDetailOut, "The case.")},
        errors=(404, 401, 429),
    )
    def get(self, request: Request, id: int) -> HttpResponse:
        return json_response(_case_detail(case_get_for_store(self.store, id)))


def _entry_out(entry: CaseEvent) -> TimelineEntryOut:
    return TimelineEntryOut(id=entry.pk, at=entry.created_at, kind=entry.kind, actor=_actor(entry),
                            message=event_message(entry))  # fmt: skip


class CaseNoteView(StoreAPIView):
    @endpoint(
        summary="Add a note to a case",
        operation_id="case_note_add",
        description="An internal note on the case's timeline, signed with the API key's name.",
        tags=["cases"],
        parameters=[CASE_ID, IDEMPOTENCY_PARAMETER],
        request=NoteIn,
        request_example={"text": "Buyer called the hotline; warehouse re-checking the parcel."},
        responses={201: (TimelineEntryOut, "The timeline entry.")},
        errors=(*POST, 404),
    )
    def post(self, request: Request, id: int) -> HttpResponse:
        data = body(request, NoteIn)
        case = case_get_for_store(self.store, id)
        try:
            entry = case_note_add_by_key(case=case, key=self.key, text=data.text)
        except IntegrationError as exc:
            raise _refused(exc) from None
        return json_response(_entry_out(entry), status=201)


class BuyerReplyView(StoreAPIView):
    @endpoint(
        summary="Pass on the buyer's reply",
        operation_id="case_buyer_reply_add",
        description="The buyer answered on the platform. The reply lands on the timeline; a case waiting on "
        "the buyer goes back to In progress and its SLA clocks run again. For an oversold or out-of-stock "
        "case, `option` records what the buyer chose (wait, swap, refund). Resending a reply with the same "
        "`external_id` records it once.",
        tags=["cases"],
        parameters=[CASE_ID, IDEMPOTENCY_PARAMETER],
        request=BuyerReplyIn,
        request_example={
            "text": "ok I will wait for the restock",
            "option": "wait",
            "external_id": "msg-88121",
        },
        responses={201: (TimelineEntryOut, "The timeline entry.")},
        errors=(*POST, 404),
    )
    def post(self, request: Request, id: int) -> HttpResponse:
        data = body(request, BuyerReplyIn)
        case = case_get_for_store(self.store, id)
        try:
            entry = buyer_reply_record(
                case=case, key=self.key, text=data.text, option=data.option, received_at=data.received_at,
                external_id=data.external_id,
            )  # fmt: skip
        except IntegrationError as exc:
            raise _refused(exc) from None
        return json_response(_entry_out(entry), status=201)


# --- events ------------------------------------------------------------------------------------------


class EventListView(StoreAPIView):
    @endpoint(
        summary="List pending events",
        operation_id="events_list",
        description="Events not yet acknowledged, oldest first: cases created, updated and resolved, buyer "
        "messages to post on the platform (`message.requested`), orders held and released by review. "
        "Acknowledge each (POST /events/{id}/ack) once acted on; unacknowledged events are listed again. "
        "Events delivered to a webhook endpoint count as acknowledged. Kept 30 days.",
        tags=["events"],
        parameters=[
            query_param("type", "Only events of this type (repeatable).", enum=StorefrontEventType.values),
            LIMIT,
            AFTER,
        ],
        responses={200: (EventListOut, "One page of events.")},
        errors=READ,
    )
    def get(self, request: Request) -> HttpResponse:
        kinds = request.query_params.getlist("type")
        unknown = [kind for kind in kinds if kind not in StorefrontEventType.values]
        if unknown:
            raise validation_error([("type", f"One of: {', '.join(StorefrontEventType.values)}.")])
        page = keyset_page(
            events_pending_for_store(self.store, kinds=kinds), order=("id",), kinds=(int,),
            after=request.query_params.get("after"), limit=limit_param(request.query_params.get("limit")),
        )  # fmt: skip
        return json_response(
            EventListOut(
                results=[EventOut(**envelope(event, self.store.code)) for event in page.rows],
                next_cursor=page.next_cursor,
            )
        )


def _event_status(event: StorefrontEvent) -> EventStatusOut:
    status = "delivered" if event.delivered_at else "failed" if event.failed_at else "pending"
    return EventStatusOut(
        id=event.pk, type=event.kind, status=status, delivered_at=event.delivered_at, failed_at=event.failed_at,
        failure_reason=event.failure_reason,
    )  # fmt: skip


class EventAckView(StoreAPIView):
    @endpoint(
        summary="Acknowledge an event",
        operation_id="event_ack",
        description="`delivered`: done, it leaves the pending list. `failed`: the storefront could not act on "
        "it; the reason shows on the case's timeline, and a buyer message it could not post is marked failed "
        "for the agent. Acknowledging again with the same outcome changes nothing.",
        tags=["events"],
        parameters=[EVENT_ID, IDEMPOTENCY_PARAMETER],
        request=AckIn,
        request_example={"status": "failed", "reason": "Buyer's chat is closed on the platform."},
        responses={200: (EventStatusOut, "The event's state.")},
        errors=(*POST, 404),
    )
    def post(self, request: Request, id: int) -> HttpResponse:
        data = body(request, AckIn)
        event = event_get_for_store(self.store, id)
        try:
            event = event_ack(
                event=event, key=self.key, delivered=data.status == "delivered", reason=data.reason
            )
        except IntegrationError as exc:
            raise _refused(exc) from None
        return json_response(_event_status(event))


# --- webhook endpoints -----------------------------------------------------------------------------


def _endpoint_out(endpoint_: WebhookEndpoint, *, secret: bool = False) -> EndpointOut:
    return EndpointOut(
        id=endpoint_.pk, url=endpoint_.url, description=endpoint_.description,
        event_types=list(endpoint_.event_types), is_active=endpoint_.is_active,
        secret_hint=endpoint_.masked_secret, created_at=endpoint_.created_at,
        secret=endpoint_.secret if secret else None,
    )  # fmt: skip


class EndpointListView(StoreAPIView):
    @endpoint(
        summary="List webhook endpoints",
        operation_id="webhook_endpoints_list",
        tags=["webhooks"],
        responses={200: (EndpointListOut, "The store's endpoints.")},
        errors=(401, 429),
    )
    def get(self, request: Request) -> HttpResponse:
        return json_response(
            EndpointListOut(results=[_endpoint_out(e) for e in endpoints_for_store(self.store)])
        )

    @endpoint(
        summary="Add a webhook endpoint",
        operation_id="webhook_endpoint_create",
        description="Events made from now on are POSTed to the URL as JSON, signed "
        '`Afterdesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body" with the secret>`, retried '
        "with backoff for 24 h until it answers 2xx. The signing secret is in this answer only.",
        tags=["webhooks"],
        parameters=[IDEMPOTENCY_PARAMETER],
        request=EndpointIn,
        request_example={
            "url": "https://shop.example.com/afterdesk/events",
            "event_types": ["message.requested"],
        },
        responses={201: (EndpointOut, "The endpoint, with its secret (shown once).")},
        errors=POST,
    )
    def post(self, request: Request) -> HttpResponse:
        data = body(request, EndpointIn)
        try:
            created = endpoint_create(
                store=self.store, url=data.url, event_types=data.event_types, description=data.description
            )
        except IntegrationError as exc:
            raise _refused(exc) from None
        return json_response(_endpoint_out(created, secret=True), status=201)


class EndpointView(StoreAPIView):
    @endpoint(
        summary="Read a webhook endpoint",
        operation_id="webhook_endpoint_get",
        tags=["webhooks"],
        parameters=[ENDPOINT_ID],
        responses={200: (EndpointOut, "The endpoint.")},
        errors=(404, 401, 429),
    )
    def get(self, request: Request, id: int) -> HttpResponse:
        return json_response(_endpoint_out(endpoint_get_for_store(self.store, id)))

    @endpoint(
        summary="Change a webhook endpoint",
        operation_id="webhook_endpoint_update",
        description="Change its URL, event types, description or whether it is active; `roll_secret` makes a "
        "new signing secret (in this answer only; the old one stops at once).",
        tags=["webhooks"],
        parameters=[ENDPOINT_ID],
        request=EndpointPatch,
        request_example={"is_active": False},
        responses={200: (EndpointOut, "The endpoint as it is now.")},
        errors=(*WRITE, 404),
    )
    def patch(self, request: Request, id: int) -> HttpResponse:
        data = body(request, EndpointPatch)
        found = endpoint_get_for_store(self.store, id)
        try:
            changed = endpoint_update(
                endpoint=found, url=data.url, event_types=data.event_types, description=data.description,
                is_active=data.is_active, roll_secret=data.roll_secret,
            )  # fmt: skip
        except IntegrationError as exc:
            raise _refused(exc) from None
        return json_response(_endpoint_out(changed, secret=data.roll_secret))

    @endpoint(
        summary="Remove a webhook endpoint",
        operation_id="webhook_endpoint_delete",
        description="With its delivery log. Events stay and can still be pulled.",
        tags=["webhooks"],
        parameters=[ENDPOINT_ID],
        responses={204: (None, "Removed.")},
        errors=(403, 404, 401, 429),
    )
    def delete(self, request: Request, id: int) -> HttpResponse:
        endpoint_delete(endpoint=endpoint_get_for_store(self.store, id))
        return HttpResponse(status=204)


def _delivery_out(delivery: EventDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.pk, event_id=delivery.event_id, event_type=delivery.event.kind, status=delivery.status,
        attempts=delivery.attempts, created_at=delivery.created_at, delivered_at=delivery.delivered_at,
        next_attempt_at=delivery.next_attempt_at, last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        log=[
            AttemptOut(at=a.at, status_code=a.status_code, latency_ms=a.latency_ms,
                       response_excerpt=a.response_excerpt, error=a.error)
            for a in delivery.attempt_log.all()
        ],
    )  # fmt: skip


class DeliveryListView(StoreAPIView):
    @endpoint(
        summary="An endpoint's delivery log",
        operation_id="webhook_endpoint_deliveries_list",
        description="Each event sent to the endpoint, newest first, with every attempt: response status, "
        "latency and the first 500 characters of the response.",
        tags=["webhooks"],
        parameters=[ENDPOINT_ID, LIMIT, AFTER],
        responses={200: (DeliveryListOut, "One page of deliveries.")},
        errors=(400, 404, 401, 429),
    )
    def get(self, request: Request, id: int) -> HttpResponse:
        found = endpoint_get_for_store(self.store, id)
        page = keyset_page(
            endpoint_deliveries(found), order=("-id",), kinds=(int,), after=request.query_params.get("after"),
            limit=limit_param(request.query_params.get("limit")),
        )  # fmt: skip
        return json_response(
            DeliveryListOut(results=[_delivery_out(d) for d in page.rows], next_cursor=page.next_cursor)
        )


class RedeliverView(StoreAPIView):
    @endpoint(
        summary="Send an event to the endpoint again",
        operation_id="webhook_delivery_redeliver",
        description="A delivered one (the receiver lost it) or a failed one (the receiver is fixed): sent "
        "within a minute, retried for 24 h.",
        tags=["webhooks"],
        parameters=[ENDPOINT_ID, DELIVERY_ID, IDEMPOTENCY_PARAMETER],
        responses={202: (DeliveryOut, "The delivery, due now.")},
        errors=(*POST, 404),
    )
    def post(self, request: Request, id: int, delivery_id: int) -> HttpResponse:
        delivery = delivery_get_for_endpoint(endpoint_get_for_store(self.store, id), delivery_id)
        delivery = delivery_redeliver(delivery=delivery)
        return json_response(_delivery_out(delivery), status=202)


# --- compensation --------------------------------------------------------------------------------------

COMPENSATION_ID = path_param("id", "The compensation's id.", int)


def compensation_out(c: Compensation) -> CompensationOut:
    return CompensationOut(
        id=c.pk, case_id=c.case_id, order_id=c.order.platform_order_id, kind=c.kind, status=c.status,
        amount=f"{c.amount:.2f}", currency=c.currency, percent=f"{c.percent:.2f}" if c.percent is not None else None,
        valid_until=c.valid_until, sku=c.sku.code if c.sku_id else None, quantity=c.quantity,
        replaces_tracking_number=c.replaces_shipment.tracking_number if c.replaces_shipment_id else None,
        new_tracking_number=c.shipment.tracking_number if c.shipment_id else None, note=c.note, reason=c.reason,
        proposed_at=c.proposed_at, approved_at=c.approved_at, executed_at=c.executed_at,
        platform_reference=c.platform_reference, failure_reason=c.failure_reason,
    )  # fmt: skip


def _compensation_refused(exc: Exception) -> ApiError:
    return validation_error([("", str(exc))])


class CaseCompensationsView(StoreAPIView):
    @endpoint(
        summary="Propose a compensation",
        operation_id="case_compensation_propose",
        description="The storefront proposes a compensation on a case (a refund the platform started, say); an "
        "agent or supervisor approves it within their limits, and the approval comes back as a "
        "`compensation.approved` event. The `Idempotency-Key` header is required: it is the proposal's key, so "
        "a resent proposal is made once. Refused with the reason when it would refund more than was paid, "
        "refund twice, reship a parcel already being reshipped, or exceed the store's coupons per case.",
        tags=["compensation"],
        parameters=[CASE_ID, IDEMPOTENCY_PARAMETER],
        request=CompensationIn,
        request_example={"kind": "partial_refund", "amount": "20.00", "reason": "Buyer kept the dented box"},
        responses={201: (CompensationOut, "Proposed (or the proposal made with this key before).")},
        errors=(*POST, 404),
    )
    def post(self, request: Request, id: int) -> HttpResponse:
        data = body(request, CompensationIn)
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise validation_error([("Idempotency-Key", "Required here: it is the proposal's key.")])
        case = case_get_for_store(self.store, id)
        sku = sku_get_for_store(self.store, data.sku) if data.sku else None
        replaces = None
        if data.replaces_tracking_number:
            replaces = case_parcel_get(case, data.replaces_tracking_number)
        proposal = Proposal(
            kind=data.kind, amount=data.amount, percent=data.percent, valid_until=data.valid_until, sku=sku,
            quantity=data.quantity, replaces_shipment=replaces, note=data.note, reason=data.reason,
        )  # fmt: skip
        try:
            compensation, _ = compensation_propose(
                case=case, proposal=proposal, actor=None, key=self.key, idempotency_key=f"api:{key}"[:100],
                origin=CompensationOrigin.STOREFRONT,
            )  # fmt: skip
        except CompensationError as exc:
            raise _compensation_refused(exc) from None
        return json_response(
            compensation_out(compensation_get_for_store(self.store, compensation.pk)), status=201
        )


class CompensationView(StoreAPIView):
    @endpoint(
        summary="Read a compensation",
        operation_id="compensation_get",
        tags=["compensation"],
        parameters=[COMPENSATION_ID],
        responses={200: (CompensationOut, "The compensation.")},
        errors=(404, 401, 429),
    )
    def get(self, request: Request, id: int) -> HttpResponse:
        return json_response(compensation_out(compensation_get_for_store(self.store, id)))


class CompensationResultView(StoreAPIView):
    @endpoint(
        summary="Report a compensation's result",
        operation_id="compensation_result",
        description="After executing an approved compensation on the platform (the `compensation.approved` "
        "event): `executed` with the platform's reference (a reship with its new parcel, which Afterdesk then "
        "tracks), or `failed` with the reason, which goes back to the agent; nothing is retried by itself. "
        "Sending the same result again changes nothing; another result for a settled one is refused.",
        tags=["compensation"],
        parameters=[COMPENSATION_ID, IDEMPOTENCY_PARAMETER],
        request=CompensationResultIn,
        request_example={"status": "executed", "reference": "TTS-RF-20261112-0042"},
        responses={200: (CompensationOut, "The compensation as it is now.")},
        errors=(*POST, 404),
    )
    def post(self, request: Request, id: int) -> HttpResponse:
        data = body(request, CompensationResultIn)
        compensation = compensation_get_for_store(self.store, id)
        result = Result(
            executed=data.status == "executed", reference=data.reference, reason=data.reason,
            carrier=data.shipment.carrier if data.shipment else "",
            tracking_number=data.shipment.tracking_number if data.shipment else "",
        )  # fmt: skip
        try:
            compensation_result(compensation=compensation, result=result, key=self.key)
        except CompensationError as exc:
            raise _compensation_refused(exc) from None
        return json_response(compensation_out(compensation_get_for_store(self.store, id)))


# --- evidence ------------------------------------------------------------------------------------------


def evidence_out(e: Evidence) -> EvidenceOut:
    return EvidenceOut(
        id=e.pk, case_id=e.case_id, kind=e.kind, original_name=e.original_name, sha256=e.sha256, size=e.size,
        content_type=e.content_type, captured_at=e.captured_at, capture_time_from=e.capture_source,
        uploaded_at=e.uploaded_at, withdrawn_at=e.tombstoned_at,
    )  # fmt: skip


EVIDENCE_UPLOAD = {
    "multipart/form-data": {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "One file: a photo, a PDF, a video, a recording or a text file."},
            "kind": {"type": "string", "enum": EvidenceKind.values},
            "captured_at": {"type": "string", "format": "date-time", "description": "When it was taken, if the file does not say (ISO 8601 with offset)."},
            "description": {"type": "string", "maxLength": 2000},
        },
        "required": ["file", "kind"],
    }
}  # fmt: skip


class CaseEvidenceView(StoreAPIView):
    parser_classes = [NameKeepingDRFParser]

    def body_limit(self) -> int:
        return settings.EVIDENCE_MAX_BYTES + 1024 * 1024  # the file and its form around it

    @endpoint(
        summary="A case's evidence",
        operation_id="case_evidence_list",
        description="Every file on the case in upload order, with its SHA-256, size, detected type and capture "
        "time; withdrawn files stay listed with `withdrawn_at`. The files themselves are served only in the "
        "portal, to signed-in members of the store.",
        tags=["evidence"],
        parameters=[CASE_ID],
        responses={200: (EvidenceListOut, "The case's files.")},
        errors=(404, 401, 429),
    )
    def get(self, request: Request, id: int) -> HttpResponse:
        case = case_get_for_store(self.store, id)
        return json_response(EvidenceListOut(results=[evidence_out(e) for e in case_evidence(case)]))

    @endpoint(
        summary="Add evidence to a case",
        operation_id="case_evidence_add",
        description="One file per request, multipart. Its type is read from its bytes and must match its name; "
        "HTML, SVG, scripts, programs, archives, PDFs with scripts and files that are two things at once are "
        "refused, as are empty files, files over the per-file limit (25 MB) and cases over theirs (200 MB). "
        "Stored with its SHA-256, immutable; every use is in the custody log.",
        tags=["evidence"],
        parameters=[CASE_ID, IDEMPOTENCY_PARAMETER],
        request_media=EVIDENCE_UPLOAD,
        responses={201: (EvidenceOut, "The file as stored.")},
        errors=(*POST, 404),
    )
    def post(self, request: Request, id: int) -> HttpResponse:
        case = case_get_for_store(self.store, id)
        upload = request.FILES.get("file")
        if upload is None:
            raise validation_error([("file", "Send one file in the `file` field (multipart/form-data).")])
        kind = request.data.get("kind", "")
        if kind not in EvidenceKind.values:
            raise validation_error([("kind", f"One of: {', '.join(EvidenceKind.values)}.")])
        captured = None
        if request.data.get("captured_at"):
            captured = parse_datetime(str(request.data["captured_at"]).replace(" ", "+"))
            if captured is None or timezone.is_naive(captured):
                raise validation_error([("captured_at", "An ISO 8601 time with its offset.")])
        try:
            evidence = evidence_add(
                case=case, upload=upload, name=sent_name(upload), kind=kind, key=self.key, captured_at=captured,
                description=str(request.data.get("description", ""))[:2000],
            )  # fmt: skip
        except EvidenceRefused as exc:
            raise validation_error([("file", str(exc))]) from None
        return json_response(evidence_out(evidence), status=201)


# --- complaints ------------------------------------------------------------------------------------------


def _classification_out(complaint_or_reading, *, needs_triage: bool) -> ClassificationOut:
    return ClassificationOut(
        category=complaint_or_reading.category or None,
        confidence=float(complaint_or_reading.confidence),
        language=complaint_or_reading.language,
        words=list(complaint_or_reading.words),
        needs_triage=needs_triage,
        threshold=confidence_threshold(),
    )


def _complaint_out(complaint: Complaint) -> ComplaintOut:
    case = complaint.case
    return ComplaintOut(
        id=complaint.pk,
        order_id=complaint.order.platform_order_id,
        external_id=complaint.external_id,
        channel=complaint.channel,
        received_at=complaint.received_at,
        classification=_classification_out(complaint, needs_triage=complaint.needs_triage),
        category=complaint.label or None,
        routed=complaint.routed or None,
        case=ComplaintCaseOut(
            id=case.pk,
            type=case.type,
            status=case.status,
            priority=PRIORITY_NAMES.get(case.priority, "normal"),
        )
        if case is not None
        else None,
    )


class ComplaintListView(StoreAPIView):
    @endpoint(
        summary="Pass on a buyer's complaint",
        operation_id="complaint_create",
        description="A buyer complained about an order (in the platform's chat, an after-sales request, a "
        "review). Afterdesk classifies it (not_received, damaged, wrong_item, missing_item, quality, other; "
        "in Chinese, English, Thai, Malay, Indonesian and Vietnamese) and routes it: a second message from "
        "the buyer within a day joins the case the first opened; a 'where is my parcel' joins the parcel's "
        "open case (marked buyer chased, priority up); otherwise it joins or opens the order's case of the "
        "matching type. A damaged complaint on a small order gets the store's automatic coupon; damaged and "
        "quality complaints count towards the batch's quality incident. Below the confidence threshold it "
        "waits for an agent in the triage queue (`routed` null). Resending the same `external_id` answers "
        "200 with the complaint recorded the first time.",
        tags=["complaints"],
        parameters=[IDEMPOTENCY_PARAMETER],
        request=ComplaintIn,
        request_example={
            "order_id": "577123456789012345",
            "text": "the oil bottle leaked all over the box 😡",
            "channel": "chat",
            "external_id": "msg-88130",
            "received_at": "2026-11-13T10:02:00+08:00",
        },
        responses={
            201: (ComplaintOut, "Recorded, classified and routed."),
            200: (ComplaintOut, "Recorded before with this external_id: the complaint as it was."),
        },
        errors=POST,
    )
    def post(self, request: Request) -> HttpResponse:
        data = body(request, ComplaintIn)
        try:
            order = order_get_for_store(self.store, data.order_id)
        except Http404:
            raise validation_error([("order_id", f"No order {data.order_id} in this store.")]) from None
        try:
            intake = complaint_receive(
                order=order, text=data.text, channel=data.channel, external_id=data.external_id,
                attachments=data.attachments, received_at=data.received_at,
            )  # fmt: skip
        except ComplaintError as exc:
            raise validation_error(exc.errors.items()) from None
        return json_response(_complaint_out(intake.complaint), status=201 if intake.created else 200)


class ClassifyView(StoreAPIView):
    @endpoint(
        summary="Classify a buyer's text",
        operation_id="complaint_classify",
        description="What a buyer's message is about, without recording anything: the storefront can pre-fill "
        "its own after-sales form with it. The same model and threshold as POST /complaints.",
        tags=["complaints"],
        request=ClassifyIn,
        request_example={"text": "barang dah sampai tapi kurang satu botol"},
        responses={200: (ClassificationOut, "The classification.")},
        errors=WRITE,
    )
    def post(self, request: Request) -> HttpResponse:
        data = body(request, ClassifyIn)
        reading = complaint_classify(data.text)
        if reading is None:
            raise ApiError("The classifier is not installed: complaints go to triage.", status=503,
                           code="classifier_unavailable")  # fmt: skip
        return json_response(
            _classification_out(reading, needs_triage=reading.confidence < confidence_threshold())
        )
