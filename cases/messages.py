# ruff: noqa: RUF001  (full-width punctuation is correct in the Chinese texts)
"""Buyer messages: templates with placeholders, rendering, the outbox, and proactive messages.

A message is rendered and snapshotted when it is queued, in the same transaction that records first contact
on the case; it leaves through the outbox (queued BuyerMessage rows) after commit. The delivery task claims
rows with SKIP LOCKED, so several workers never send one message twice at once, and a message that keeps
failing is retried with backoff, then marked failed on the case's timeline.

What a template may say (`PLACEHOLDERS`, `template_placeholders`, `template_errors`) is checked in
`cases.validators`, which `MessageTemplate.clean()` uses too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from string import Formatter
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from cases.choices import (
    DEFAULT_PROACTIVE_TYPES,
    OPEN_STATUSES,
    CaseEventKind,
    CaseStatus,
    MessageChannel,
    MessageLanguage,
    MessageStatus,
    StorefrontEventType,
)
from cases.models import BuyerMessage, Case, CaseEvent, MessageTemplate, StorePolicy
from cases.outbox import event_emit
from cases.selectors import template_store_ids_for_user
from cases.validators import template_placeholders, template_validate
from cases.workflow import (
    BulkResult,
    CaseWorkflowError,
    actor_role_require,
    case_copy_back,
    case_first_contact,
    case_lock,
    cases_bulk_apply,
)
from portal.choices import Platform
from portal.db import skip_locked
from portal.models import Store
from portal.tasks import wake
from tracking.carriers import carrier_name
from tracking.models import Shipment, TrackingEvent

log = logging.getLogger(__name__)

DELIVER_TASK = "cases.tasks.deliver_messages"
MISSING = "—"
MAX_ATTEMPTS = 5
BACKOFF = timedelta(minutes=1)  # 1, 2, 4, 8 minutes between the five attempts

# The oversold / out-of-stock options, worded in the template's language.
OPTION_WORDING: Mapping[str, Mapping[str, str]] = {
    "en": {
        "wait": "wait for the restock, expected by {date}",
        "swap": "swap it for {items}",
        "refund_coupon": "a full refund plus a coupon for your next order",
        "refund": "a full refund",
        "wait_none": "waiting for a restock is not possible: there is no restock date yet",
        "swap_none": "no similar item is in stock to swap for right now",
    },
    "zh-hans": {
        "wait": "等待补货，预计 {date} 前到货发出",
        "swap": "换成 {items}",
        "refund_coupon": "全额退款，并赠送一张下次可用的优惠券",
        "refund": "全额退款",
        "wait_none": "暂无补货日期，无法等待补货",
        "swap_none": "目前没有可替换的同类商品",
    },
    "ms": {
        "wait": "tunggu stok baharu, dijangka sebelum {date}",
        "swap": "tukar kepada {items}",
        "refund_coupon": "bayaran balik penuh serta baucar untuk pesanan seterusnya",
        "refund": "bayaran balik penuh",
        "wait_none": "menunggu stok baharu tidak dapat ditawarkan: belum ada tarikh stok baharu",
        "swap_none": "tiada item serupa dalam stok untuk ditukar buat masa ini",
    },
    "th": {
        "wait": "รอสินค้าเข้าใหม่ คาดว่าภายในวันที่ {date}",
        "swap": "เปลี่ยนเป็น {items}",
        "refund_coupon": "คืนเงินเต็มจำนวน พร้อมคูปองส่วนลดสำหรับคำสั่งซื้อครั้งถัดไป",
        "refund": "คืนเงินเต็มจำนวน",
        "wait_none": "ยังไม่มีกำหนดสินค้าเข้าใหม่ จึงไม่สามารถรอสินค้าได้",
        "swap_none": "ขณะนี้ไม่มีสินค้าใกล้เคียงให้เปลี่ยน",
    },
    "vi": {
        "wait": "chờ hàng về, dự kiến trước ngày {date}",
        "swap": "đổi sang {items}",
        "refund_coupon": "hoàn tiền toàn bộ kèm mã giảm giá cho đơn hàng tiếp theo",
        "refund": "hoàn tiền toàn bộ",
        "wait_none": "chưa có ngày hàng về nên không thể chờ hàng",
        "swap_none": "hiện không có sản phẩm tương tự để đổi",
    },
    "id": {
        "wait": "menunggu stok baru, diperkirakan sebelum {date}",
        "swap": "tukar dengan {items}",
        "refund_coupon": "pengembalian dana penuh plus kupon untuk pesanan berikutnya",
        "refund": "pengembalian dana penuh",
        "wait_none": "belum ada tanggal stok baru, jadi menunggu tidak bisa ditawarkan",
        "swap_none": "saat ini tidak ada barang serupa untuk ditukar",
    },
}


# {new_eta} of a parcel the carrier has given no expected delivery date (a stalled parcel often has none):
# said plainly in the template's language, never a bare dash in a message that goes out by itself.
ETA_UNKNOWN: Mapping[str, str] = {
    "en": "not confirmed yet; we will tell you as soon as the carrier gives one",
    "zh-hans": "暂未确定（快递给出后我们会第一时间告知您）",
    "ms": "belum disahkan; kami akan maklumkan sebaik sahaja kurier memberikannya",
    "th": "ยังไม่ได้รับการยืนยัน เราจะแจ้งให้ทราบทันทีที่บริษัทขนส่งแจ้งมา",
    "vi": "chưa được xác nhận; chúng tôi sẽ báo bạn ngay khi hãng vận chuyển cung cấp",
    "id": "belum dikonfirmasi; kami akan segera mengabari begitu kurir memberikannya",
}


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str
    language: str
    channel: str
    missing: tuple[str, ...] = ()  # placeholders that had no value and rendered as MISSING


# --- templates ------------------------------------------------------------------------------------


# --- the template library: writes -----------------------------------------------------------------


def _template_manage_require(actor: AbstractBaseUser, store_id: int | None) -> None:
    """PermissionDenied unless the actor may change templates of the store (None: the global defaults,
    which only superusers change)."""
    if actor.is_superuser:
        return
    if store_id is None:
        raise PermissionDenied(
            _(
                "Only a superuser changes the global default templates. Duplicate it into your store to edit it."
            )
        )
    if store_id not in template_store_ids_for_user(actor):
        raise PermissionDenied(_("Only the store's supervisors and admins manage its templates."))


def _name_taken() -> ValidationError:
    return ValidationError(
        {"name": _("The store already has a template of this name for this case type, language and channel.")}
    )


def template_save(
    *, actor: AbstractBaseUser, template: MessageTemplate | None = None, data: Mapping[str, Any]
) -> MessageTemplate:
    """Create a message template (`template=None`) or change one, from `data`: store (a Store, or None for a
    global default), case_type, language, channel, name, subject, body, is_active. The subject is kept for
    the email channel only. Nothing is deleted here: a template is switched off with is_active=False, and
    messages already sent keep their own snapshot of the text.

    Raises PermissionDenied when the actor does not manage the template's store or the store it moves to
    (global defaults: superusers only), ValidationError by field for an unknown placeholder, malformed text
    or a name the store already uses. Locks the template row while changing it."""
    store = data.get("store")
    _template_manage_require(actor, store.pk if store is not None else None)
    if template is not None:
        _template_manage_require(actor, template.store_id)
    channel = data["channel"]
    subject = (data.get("subject") or "").strip() if channel == MessageChannel.EMAIL else ""
    body = data["body"]
    template_validate(subject=subject, body=body)
    with transaction.atomic():
        if template is None:
            row = MessageTemplate()
        else:
            row = MessageTemplate.objects.select_for_update().get(pk=template.pk)
        row.store = store
        row.case_type, row.language, row.channel = data["case_type"], data["language"], channel
        row.name, row.subject, row.body = data["name"].strip(), subject, body
        row.is_active = bool(data.get("is_active", True))
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            raise _name_taken() from None
    return row


def template_duplicate(
    *, actor: AbstractBaseUser, template: MessageTemplate, store: Store
) -> MessageTemplate:
    """Copy a template (typically a global default) into one of the actor's stores, active, so the store
    can edit its own version; the store's own template is picked before the global one from then on. The
    copy keeps the name, or takes "(copy)", "(copy 2)", ... when the store already uses it. Raises
    PermissionDenied when the actor does not manage the store (or cannot see the template)."""
    _template_manage_require(actor, store.pk)
    if template.store_id is not None:
        _template_manage_require(actor, template.store_id)
    taken = set(
        MessageTemplate.objects.filter(
            store=store, case_type=template.case_type, language=template.language, channel=template.channel
        ).values_list("name", flat=True)
    )
    name, n = template.name, 1
    while name in taken:
        suffix = _("(copy)") if n == 1 else _("(copy %(n)d)") % {"n": n}
        name = f"{template.name[: 120 - len(suffix) - 1]} {suffix}"
        n += 1
    try:
        with transaction.atomic():
            return MessageTemplate.objects.create(
                store=store, case_type=template.case_type, language=template.language,
                channel=template.channel, name=name, subject=template.subject, body=template.body,
                is_active=True,
            )  # fmt: skip
    except IntegrityError:
        raise _name_taken() from None


# --- rendering ------------------------------------------------------------------------------------


def _shipment_for(case: Case) -> Shipment | None:
    if case.shipment_id is not None:
        return case.shipment
    if case.order_id is None:
        return None
    return case.order.shipments.order_by("-created_at", "-id").first()


def _latest_checkpoint(case: Case, shipment: Shipment | None) -> str:
    if shipment is None:
        return ""
    event = (
        TrackingEvent.objects.filter(shipment=shipment)
        .order_by("-checkpoint_at", "-id")
        .only("checkpoint_at", "raw_text", "location", "subtag")
        .first()
    )
    if event is None:
        return ""
    local = timezone.localtime(event.checkpoint_at, case.store.tzinfo)
    text = (event.raw_text or event.subtag).strip()
    if event.location and event.location not in text:
        text = f"{text}, {event.location}"
    return f"{local:%Y-%m-%d %H:%M} {text}"


def _options(facts: Mapping[str, Any], language: str) -> dict[str, str]:
    wording = OPTION_WORDING.get(language, OPTION_WORDING["en"])
    values: dict[str, str] = {}
    for option in facts.get("options") or []:
        if not isinstance(option, dict):
            continue
        key, path = str(option.get("key", "")).lower(), option.get("path")
        available = bool(option.get("available"))
        if path == "wait":
            # An option the buyer cannot take is said so in words: a bare dash in a message reads as broken.
            until = option.get("until") if available else None
            values[f"option_{key}"] = wording["wait"].format(date=until) if until else wording["wait_none"]
        elif path == "swap":
            names = [
                str(choices[0].get("sku_name") or choices[0].get("sku_code"))
                for choices in (option.get("swap_for") or {}).values()
                if choices
            ]
            values[f"option_{key}"] = (
                wording["swap"].format(items=", ".join(names))
                if available and names
                else wording["swap_none"]
            )
        elif path in ("refund_coupon", "refund") and available:
            values[f"option_{key}"] = wording[path]
    return values


def case_placeholder_values(case: Case, *, language: str = "en") -> dict[str, str]:
    """Every placeholder's value for the case; empty string where the case has none."""
    order, shipment = case.order, _shipment_for(case)
    eta = shipment.expected_delivery if shipment is not None else None
    values = {
        "buyer_name": order.buyer_name if order else "",
        "order_id": order.platform_order_id if order else "",
        "tracking_number": shipment.tracking_number if shipment else "",
        "carrier": carrier_name(shipment.carrier, language=language) if shipment else "",
        "latest_checkpoint": _latest_checkpoint(case, shipment),
        "new_eta": eta.isoformat()
        if eta
        else (ETA_UNKNOWN.get(language, ETA_UNKNOWN["en"]) if shipment else ""),
        "restock_date": str(case.facts.get("restock_eta") or ""),
        "option_a": "",
        "option_b": "",
        "option_c": "",
        "store_name": case.store.name,
    }
    values.update(_options(case.facts, language))
    return values


def template_fill(
    text: str, values: Mapping[str, str], missing: set[str] | None = None, *, blank: str = MISSING
) -> str:
    """`text` with its placeholders replaced by `values`; one without a value becomes `blank` (and its name is
    added to `missing`)."""
    out: list[str] = []
    for literal, name, _spec, _conversion in Formatter().parse(text or ""):
        out.append(literal)
        if name is not None:
            value = values.get(name) or ""
            if not value and missing is not None:
                missing.add(name)
            out.append(value or blank)
    return "".join(out)


def template_render(*, template: MessageTemplate, case: Case, channel: str | None = None) -> RenderedMessage:
    """The template filled from the case. A placeholder without a value renders as MISSING (and is listed
    in `missing`); an unknown placeholder raises MessageTemplateError. Reads only."""
    template_placeholders(template.subject)
    template_placeholders(template.body)
    values = case_placeholder_values(case, language=template.language)
    missing: set[str] = set()
    channel = channel or template.channel
    subject = template_fill(template.subject, values, missing) if channel == MessageChannel.EMAIL else ""
    body = template_fill(template.body, values, missing)
    return RenderedMessage(
        subject=subject, body=body, language=template.language, channel=channel,
        missing=tuple(sorted(missing)),
    )  # fmt: skip


def message_preview(*, case: Case, template: MessageTemplate, channel: str | None = None) -> RenderedMessage:
    """What `message_send` would send, without writing anything."""
    _check_template(case, template)
    return template_render(template=template, case=case, channel=channel)


# Shown in a template's preview when none of the user's stores has a case of that type yet.
SAMPLE_VALUES: Mapping[str, str] = {
    "buyer_name": "Nur Aisyah",
    "order_id": "580000012345",
    "tracking_number": "JT5000001234567",
    "carrier": "jtexpress-my",
    "latest_checkpoint": "2026-01-05 14:20 Arrived at sorting centre, Shah Alam",
    "new_eta": "2026-01-08",
    "restock_date": "2026-01-12",
    "store_name": "Your Store",
}


def template_preview(*, template: MessageTemplate, case: Case | None) -> RenderedMessage:
    """The template (saved or not) filled from `case`, or from SAMPLE_VALUES when there is no case, with
    the placeholders that had no value. Reads only; raises MessageTemplateError for an unknown placeholder
    or malformed text."""
    if case is not None:
        return template_render(template=template, case=case)
    template_placeholders(template.subject)
    template_placeholders(template.body)
    wording = OPTION_WORDING.get(template.language, OPTION_WORDING["en"])
    values = {
        **SAMPLE_VALUES,
        "option_a": wording["wait"].format(date=SAMPLE_VALUES["restock_date"]),
        "option_b": wording["swap"].format(items="Matte Lipstick 02"),
        "option_c": wording["refund_coupon"],
    }
    missing: set[str] = set()
    subject = (
        template_fill(template.subject, values, missing) if template.channel == MessageChannel.EMAIL else ""
    )
    body = template_fill(template.body, values, missing)
    return RenderedMessage(
        subject=subject, body=body, language=template.language, channel=template.channel,
        missing=tuple(sorted(missing)),
    )  # fmt: skip


# --- sending --------------------------------------------------------------------------------------


def _check_template(case: Case, template: MessageTemplate) -> None:
    if template.store_id is not None and template.store_id != case.store_id:
        raise CaseWorkflowError(_("That template belongs to another store."))
    if not template.is_active:
        raise CaseWorkflowError(_("That template is switched off."))


def _recipient(case: Case, channel: str) -> str:
    order = case.order
    if order is None:
        raise CaseWorkflowError(_("This case has no order, so no buyer to write to."))
    if channel == MessageChannel.EMAIL:
        if not order.buyer_email:
            raise CaseWorkflowError(_("The buyer has no email address; use the storefront channel."))
        return order.buyer_email
    return order.buyer_platform_id


def message_send(
    *,
    case: Case,
    template: MessageTemplate,
    actor: AbstractBaseUser | None,
    channel: MessageChannel | str | None = None,
    now: datetime | None = None,
    idempotency_key: str | None = None,
) -> BuyerMessage:
    """Render the template for the case, snapshot the text on a queued BuyerMessage, record first contact
    on the case (its SLA moves on to resolution) and a MESSAGE_QUEUED event, in one transaction that locks
    the case; the outbox is woken after commit. `actor=None` means the system (a proactive message).

    Idempotent per `idempotency_key`: a second call with the same key returns the first message and writes
    nothing. Raises PermissionDenied (actor not in the store) or CaseWorkflowError (closed case, no buyer
    email for email, template of another store or switched off, unknown placeholder).
    """
    now = now or timezone.now()
    channel = MessageChannel(channel or template.channel)
    if actor is not None:
        actor_role_require(actor, case.store_id)
    _check_template(case, template)
    key = idempotency_key or f"manual:{uuid.uuid4().hex}"
    with transaction.atomic():
        locked = case_lock(case)
        existing = BuyerMessage.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return existing
        if locked.status == CaseStatus.CLOSED:
            raise CaseWorkflowError(_("The case is closed; reopen it to write to the buyer."))
        recipient = _recipient(case, channel)
        rendered = template_render(template=template, case=case, channel=channel)
        try:
            with transaction.atomic():
                message = BuyerMessage.objects.create(
                    case=locked, template=template, channel=channel, language=rendered.language,
                    recipient=recipient, subject=rendered.subject[:255], body=rendered.body,
                    created_at=now, next_attempt_at=now, created_by=actor, idempotency_key=key,
                )  # fmt: skip
        except IntegrityError:
            existing = BuyerMessage.objects.filter(idempotency_key=key).first()
            if existing is None:
                raise
            return existing
        fields = case_first_contact(locked, now=now)
        if fields:
            locked.save(update_fields=[*fields, "updated_at"])
        CaseEvent.objects.create(
            case=locked, kind=CaseEventKind.MESSAGE_QUEUED, actor=actor, created_at=now,
            message=rendered.body[:500],
            data={
                "message_id": message.pk, "template_id": template.pk, "template": template.name,
                "channel": channel.value, "language": rendered.language, "first_contact": bool(fields),
                "proactive": actor is None,
            },
        )  # fmt: skip
        wake(DELIVER_TASK)
    case_copy_back(case, locked)
    return message


# --- proactive messages ---------------------------------------------------------------------------


def language_candidates(*codes: str | None) -> list[str]:
    """Template languages to try, best first, for the given language codes (buyer's, store's), ending
    with English. zh, zh-CN, zh_Hans ... map to zh-hans; ms-MY to ms; `in` (old Indonesian) to id."""
    out: list[str] = []
    for code in (*codes, MessageLanguage.EN):
        value = (code or "").strip().lower().replace("_", "-")
        if not value:
            continue
        if value.startswith("zh"):
            value = MessageLanguage.ZH_HANS
        elif value not in MessageLanguage.values:
            value = {"in": "id"}.get(value.split("-")[0], value.split("-")[0])
        if value in MessageLanguage.values and value not in out:
            out.append(value)
    return out


def proactive_types_for(store_id: int) -> set[str]:
    types = StorePolicy.objects.filter(store_id=store_id).values_list("proactive_types", flat=True).first()
    return set(DEFAULT_PROACTIVE_TYPES if types is None else types)


def proactive_template_for(
    case: Case, *, cache: dict[tuple, tuple[MessageTemplate | None, str]] | None = None
) -> tuple[MessageTemplate | None, str]:
    """The template (and channel) a proactive message for the case uses: the buyer's language first, then
    the store's, then English; the store's own template before a global one; the storefront channel unless
    the store is the seller's own site and the buyer has an email. `cache` (a dict the caller keeps for one
    sweep) remembers the choice per store, case type, languages and channels: one query per combination."""
    order = case.order
    languages = language_candidates(order.buyer_language, case.store.default_language)
    channels = [MessageChannel.STOREFRONT]
    if order.buyer_email:
        if case.store.platform == Platform.OWN_SITE:
            channels.insert(0, MessageChannel.EMAIL)
        else:
            channels.append(MessageChannel.EMAIL)
    key = (case.store_id, case.type, tuple(languages), tuple(channels))
    if cache is not None and key in cache:
        return cache[key]
    chosen = _proactive_template_pick(case, languages, channels)
    if cache is not None:
        cache[key] = chosen
    return chosen


def _proactive_template_pick(
    case: Case, languages: list[str], channels: list[str]
) -> tuple[MessageTemplate | None, str]:
    candidates = MessageTemplate.objects.filter(
        Q(store_id=case.store_id) | Q(store__isnull=True),
        case_type=case.type, is_active=True, language__in=languages, channel__in=channels,
    )  # fmt: skip
    ranked = sorted(
        candidates,
        key=lambda t: (languages.index(t.language), channels.index(t.channel), t.store_id is None, t.pk),
    )
    if not ranked:
        return None, channels[0]
    return ranked[0], ranked[0].channel


def proactive_key(case: Case) -> str:
    return f"proactive:{case.pk}"


def proactive_message_for(
    case: Case,
    now: datetime | None = None,
    *,
    proactive_types: Collection[str] | None = None,
    template_cache: dict | None = None,
) -> BuyerMessage | None:
    """Queue the proactive message for a case a rule just raised, if the store's policy marks its type
    proactive and a template exists. Once per case, however often it is called (idempotency key
    `proactive:<case id>`). Returns the new message, or None when nothing was sent. Never raises for a
    case it cannot write about (no order, no template, no address): it logs and returns None.
    `proactive_types`: the store's proactive case types when the caller has them (the sweeper's policy book);
    looked up otherwise. `template_cache`: see proactive_template_for."""
    if case.order_id is None or case.status not in OPEN_STATUSES:
        return None
    if proactive_types is None:
        proactive_types = proactive_types_for(case.store_id)
    if case.type not in proactive_types:
        return None
    key = proactive_key(case)
    if BuyerMessage.objects.filter(idempotency_key=key).exists():
        return None
    template, channel = proactive_template_for(case, cache=template_cache)
    if template is None:
        log.debug("no proactive template for case %s (%s)", case.pk, case.type)
        return None
    try:
        return message_send(
            case=case, template=template, actor=None, channel=channel, now=now, idempotency_key=key
        )
    except CaseWorkflowError as exc:
        log.warning("proactive message for case %s not sent: %s", case.pk, exc)
        return None


# --- the outbox -----------------------------------------------------------------------------------


@dataclass
class DeliveryResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: dict[int, str] = field(default_factory=dict)


def _claim_next(now: datetime) -> BuyerMessage | None:
    due = skip_locked(
        BuyerMessage.objects.filter(status=MessageStatus.QUEUED, next_attempt_at__lte=now).order_by(
            "next_attempt_at", "id"
        )
    )
    return due.select_related("case", "case__order", "case__store").first()


def _deliver(message: BuyerMessage, *, now: datetime) -> None:
    case = message.case
    if message.channel == MessageChannel.EMAIL:
        subject = (
            message.subject or f"{case.store.name}: {case.order.platform_order_id if case.order else ''}"
        )
        send_mail(subject, message.body, None, [message.recipient], fail_silently=False)
        return
    event_emit(
        store_id=case.store_id, kind=StorefrontEventType.MESSAGE_REQUESTED, case_id=case.pk, now=now,
        dedupe_key=f"{StorefrontEventType.MESSAGE_REQUESTED}:{message.pk}",
        data={
            "message": {
                "id": message.pk,
                "case_id": case.pk,
                "order_id": case.order.platform_order_id if case.order else "",
                "buyer_platform_id": message.recipient,
                "language": message.language,
                "subject": message.subject,
                "body": message.body,
            }
        },
    )  # fmt: skip


def messages_deliver(*, now: datetime | None = None, limit: int = 200) -> DeliveryResult:
    """Send queued messages that are due, one row claimed and committed at a time (SKIP LOCKED on
    PostgreSQL, so workers share the outbox). Email goes through Django's send_mail; a storefront message
    becomes a StorefrontEvent row. A failure is retried with exponential backoff; after MAX_ATTEMPTS the
    message is marked failed. Every outcome writes MESSAGE_SENT or MESSAGE_FAILED on the case.

    At-least-once for email (a crash between the send and the commit re-sends), exactly once for the
    storefront (the event row commits with the status)."""
    result = DeliveryResult()
    for _n in range(limit):
        at = now or timezone.now()
        with transaction.atomic():
            message = _claim_next(at)
            if message is None:
                break
            message.attempts += 1
            try:
                with transaction.atomic():
                    _deliver(message, now=at)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:2000]
                result.errors[message.pk] = error
                message.last_error = error
                if message.attempts >= MAX_ATTEMPTS:
                    message.status = MessageStatus.FAILED
                    message.next_attempt_at = None
                    result.failed += 1
                    CaseEvent.objects.create(
                        case_id=message.case_id, kind=CaseEventKind.MESSAGE_FAILED, actor=message.created_by,
                        created_at=at, message=error,
                        data={"message_id": message.pk, "channel": message.channel, "attempts": message.attempts},
                    )  # fmt: skip
                else:
                    message.next_attempt_at = at + BACKOFF * 2 ** (message.attempts - 1)
                    result.retrying += 1
                message.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
                continue
            message.status, message.sent_at, message.next_attempt_at = MessageStatus.SENT, at, None
            message.save(update_fields=["attempts", "status", "sent_at", "next_attempt_at"])
            CaseEvent.objects.create(
                case_id=message.case_id, kind=CaseEventKind.MESSAGE_SENT, actor=message.created_by,
                created_at=at, message=message.body[:500],
                data={"message_id": message.pk, "channel": message.channel, "attempts": message.attempts},
            )  # fmt: skip
            result.sent += 1
    return result


# --- bulk -----------------------------------------------------------------------------------------


def messages_bulk_send(
    *,
    case_ids: Iterable[int],
    template: MessageTemplate,
    actor: AbstractBaseUser,
    channel: MessageChannel | str | None = None,
    now: datetime | None = None,
) -> BulkResult:
    """message_send over many cases in one transaction, scoped to the actor's stores; each refusal is
    reported (a case of another store as not found, an email case without address, ...)."""
    now = now or timezone.now()

    def send(case: Case) -> bool:
        message_send(case=case, template=template, actor=actor, channel=channel, now=now)
        return True

    return cases_bulk_apply(case_ids, actor=actor, apply=send)
