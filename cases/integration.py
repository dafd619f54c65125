"""What a store's storefront does to cases through its API key: notes, the buyer's replies, acknowledged
events; and the store's webhook endpoints, which its admins also manage on the store page.

An API key acts for the store, not for a person: its timeline entries have no actor and name the key
(`data["api_key"]`). Every function takes objects already scoped to the key's store (the selectors' job).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cases.choices import (
    BuyerChoice,
    CaseEventKind,
    CaseStatus,
    CaseType,
    MessageStatus,
    StorefrontEventType,
)
from cases.compensation import compensation_taken
from cases.models import BuyerMessage, Case, CaseEvent, StorefrontEvent, WebhookEndpoint
from cases.outbox import case_event_emit, endpoint_secret_new, url_refusal
from cases.workflow import NOTE_MAX_LENGTH, case_lock, sla_resume
from portal.models import ApiKey, Store
from tracking.storefront import times_errors, utc

log = logging.getLogger(__name__)

STOCK_CHOICE_TYPES = (CaseType.OVERSOLD, CaseType.OUT_OF_STOCK)
REASON_MAX_LENGTH = 1000
ENDPOINTS_MAX = 10


class IntegrationError(ValidationError):
    """Refused input, by field ({field: message}); nothing was written."""


def _api_data(key: ApiKey, **data: object) -> dict[str, object]:
    return {"source": "api", "api_key": key.name, "api_key_prefix": key.prefix, **data}


def case_note_add_by_key(*, case: Case, key: ApiKey, text: str, now: datetime | None = None) -> CaseEvent:
    """An internal note from the storefront (never shown to the buyer)."""
    text = (text or "").strip()
    if not text:
        raise IntegrationError({"text": _("Write something in the note.")})
    if len(text) > NOTE_MAX_LENGTH:
        raise IntegrationError(
            {"text": _("A note is at most %(max)d characters.") % {"max": NOTE_MAX_LENGTH}}
        )
    return CaseEvent.objects.create(
        case=case,
        kind=CaseEventKind.NOTE,
        created_at=now or timezone.now(),
        message=text,
        data=_api_data(key),
    )


def buyer_reply_record(
    *,
    case: Case,
    key: ApiKey | None = None,
    actor: AbstractBaseUser | None = None,
    text: str = "",
    option: str | None = None,
    received_at: datetime | None = None,
    external_id: str = "",
    now: datetime | None = None,
) -> CaseEvent:
    """The buyer answered on the platform: the storefront passes it on (`key`), or an agent who heard it
    records it (`actor`, by chat or phone). Lands on the timeline; a case waiting
    on the buyer goes back to In progress and its SLA clocks run again (moved on by the pause); for an
    oversold or out-of-stock case, the option the buyer chose (wait, swap, refund) becomes the case's
    `buyer_choice`, the outcome reports count. Emits case.updated. Locks the case.

    Idempotent on `external_id` (the platform's message id): the same reply again returns the first entry."""
    now = now or timezone.now()
    text = (text or "").strip()
    errors: dict[str, str] = {}
    if not text and not option:
        errors["text"] = _("Send the buyer's text, the option they chose, or both.")
    if len(text) > NOTE_MAX_LENGTH:
        errors["text"] = _("A reply is at most %(max)d characters.") % {"max": NOTE_MAX_LENGTH}
    if option and option not in BuyerChoice.values:
        errors["option"] = _("One of: %(options)s.") % {"options": ", ".join(BuyerChoice.values)}
    elif option and case.type not in STOCK_CHOICE_TYPES:
        errors["option"] = _(
            "Only oversold and out-of-stock cases offer the buyer options; send the text alone."
        )
    errors.update(times_errors({"received_at": received_at}))
    if errors:
        raise IntegrationError(errors)
    received_at = utc(received_at)
    with transaction.atomic():
        locked = case_lock(case)
        if external_id:
            earlier = CaseEvent.objects.filter(
                case=locked, kind=CaseEventKind.BUYER_REPLIED, data__external_id=external_id
            ).first()
            if earlier is not None:
                return earlier
        fields = {"updated_at"}
        received = {
            "option": option or "",
            "external_id": external_id,
            "received_at": (received_at or now).isoformat(),
        }
        data = _api_data(key, **received) if key is not None else {"source": "agent", **received}
        if locked.status == CaseStatus.WAITING_BUYER:
            fields.update(sla_resume(locked, now=now))
            locked.status = CaseStatus.IN_PROGRESS
            fields.add("status")
            data["status"] = {"from": CaseStatus.WAITING_BUYER, "to": CaseStatus.IN_PROGRESS}
        if option:
            locked.buyer_choice, locked.buyer_choice_at = option, received_at or now
            fields.update({"buyer_choice", "buyer_choice_at"})
        locked.save(update_fields=sorted(fields))
        entry = CaseEvent.objects.create(
            case=locked,
            kind=CaseEventKind.BUYER_REPLIED,
            actor=actor,
            created_at=now,
            message=text,
            data=data,
        )
        case_event_emit(locked, StorefrontEventType.CASE_UPDATED, key=entry.pk, now=now)
    for name in ("status", "sla_paused_at", "first_contact_due_at", "resolution_due_at", "due_at",
                 "buyer_choice", "buyer_choice_at", "updated_at"):  # fmt: skip
        setattr(case, name, getattr(locked, name))
    return entry


def event_ack(
    *, event: StorefrontEvent, key: ApiKey, delivered: bool, reason: str = "", now: datetime | None = None
) -> StorefrontEvent:
    """The storefront took the event (delivered) or could not act on it (failed, with its reason). A failed
    event shows on its case's timeline; a buyer message it could not post is marked failed, so the agent
    knows the buyer did not hear from us. Acknowledging again with the same outcome changes nothing; an
    acknowledged event cannot change its outcome (a 4xx says so)."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not delivered and not reason:
        raise IntegrationError({"reason": _("Say why the event failed: the agent sees it on the case.")})
    if len(reason) > REASON_MAX_LENGTH:
        raise IntegrationError({"reason": _("At most %(max)d characters.") % {"max": REASON_MAX_LENGTH}})
    with transaction.atomic():
        locked = StorefrontEvent.objects.select_for_update().get(pk=event.pk)
        if locked.delivered_at is not None or locked.failed_at is not None:
            if (locked.delivered_at is not None) == delivered:
                return locked
            raise IntegrationError(
                {"status": _("This event was already acknowledged as %(outcome)s.")
                 % {"outcome": "delivered" if locked.delivered_at else "failed"}}
            )  # fmt: skip
        if delivered:
            locked.delivered_at = now
            locked.save(update_fields=["delivered_at"])
            compensation_id = (
                (locked.payload.get("compensation") or {}).get("id")
                if isinstance(locked.payload, dict)
                else None
            )
            if locked.kind == StorefrontEventType.COMPENSATION_APPROVED and compensation_id:
                compensation_taken(compensation_id=compensation_id, store_id=locked.store_id, now=now)
            return locked
        locked.failed_at, locked.failure_reason = now, reason
        locked.save(update_fields=["failed_at", "failure_reason"])
        if locked.case_id is not None:
            CaseEvent.objects.create(
                case_id=locked.case_id, kind=CaseEventKind.STOREFRONT_FAILED, created_at=now, message=reason,
                data=_api_data(key, event_id=locked.pk, event_type=locked.kind),
            )  # fmt: skip
        message_id = (
            (locked.payload.get("message") or {}).get("id") if isinstance(locked.payload, dict) else None
        )
        if locked.kind == StorefrontEventType.MESSAGE_REQUESTED and message_id:
            BuyerMessage.objects.filter(pk=message_id, case__store_id=locked.store_id).update(
                status=MessageStatus.FAILED, last_error=f"Storefront: {reason}"[:2000], next_attempt_at=None
            )
    return locked


# --- webhook endpoints ---------------------------------------------------------------------------------


def _endpoint_clean(*, url: str, event_types: Sequence[str]) -> tuple[str, list[str]]:
    errors: dict[str, str] = {}
    url = (url or "").strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        errors["url"] = _("Enter an http or https URL.")
    else:
        refusal = url_refusal(url)
        if refusal:
            errors["url"] = refusal
    unknown = [kind for kind in event_types if kind not in StorefrontEventType.values]
    if unknown:
        errors["event_types"] = _("Unknown event types: %(unknown)s. Known: %(known)s.") % {
            "unknown": ", ".join(unknown), "known": ", ".join(StorefrontEventType.values)}  # fmt: skip
    if errors:
        raise IntegrationError(errors)
    return url, list(dict.fromkeys(event_types))


def endpoint_create(
    *,
    store: Store,
    url: str,
    event_types: Sequence[str] = (),
    description: str = "",
    actor: AbstractBaseUser | None = None,
) -> WebhookEndpoint:
    """A new endpoint with a fresh signing secret (the caller shows it once). It receives the events made
    from now on. At most ENDPOINTS_MAX per store."""
    url, event_types = _endpoint_clean(url=url, event_types=event_types)
    with transaction.atomic():
        list(Store.objects.select_for_update().filter(pk=store.pk).values_list("pk", flat=True))
        if WebhookEndpoint.objects.filter(store=store).count() >= ENDPOINTS_MAX:
            raise IntegrationError(
                {"url": _("A store has at most %(max)d webhook endpoints.") % {"max": ENDPOINTS_MAX}}
            )
        endpoint = WebhookEndpoint.objects.create(
            store=store, url=url, event_types=event_types, description=(description or "").strip()[:200],
            secret=endpoint_secret_new(), created_by=actor,
        )  # fmt: skip
    log.info("store %s: webhook endpoint %s added", store.code, url)
    return endpoint


def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
    roll_secret: bool = False,
) -> WebhookEndpoint:
    """Change what is given; `roll_secret` makes a new signing secret (the old one stops at once)."""
    clean_url, clean_types = _endpoint_clean(
        url=endpoint.url if url is None else url,
        event_types=endpoint.event_types if event_types is None else event_types,
    )
    endpoint.url, endpoint.event_types = clean_url, clean_types
    if description is not None:
        endpoint.description = description.strip()[:200]
    if is_active is not None:
        endpoint.is_active = is_active
    if roll_secret:
        endpoint.secret = endpoint_secret_new()
    endpoint.save()
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Remove the endpoint and its delivery log; events stay (they may still be pulled)."""
    endpoint.delete()
