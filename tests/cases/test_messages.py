from __future__ import annotations

import inspect
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection

import cases.engine
from cases.choices import CaseType
from cases.engine import SweepResult, findings_apply
from cases.message_defaults import DEFAULT_TEMPLATES, default_templates_ensure
from cases.messages import (
    MAX_ATTEMPTS,
    MISSING,
    language_candidates,
    message_preview,
    message_send,
    messages_bulk_send,
    messages_deliver,
    proactive_message_for,
    template_render,
)
from cases.models import BuyerMessage, Case, CaseEvent, MessageTemplate, StorefrontEvent, StorePolicy
from cases.policy import DEFAULTS
from cases.rules import Finding
from cases.services import case_raise
from cases.validators import PLACEHOLDERS, MessageTemplateError, policy_errors, template_validate
from cases.workflow import CaseWorkflowError
from tests.concurrency import at_once
from tests.factories import make_membership, make_order, make_shipment, make_store, make_user
from tracking.models import TrackingEvent

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
EVERYTHING = " | ".join(f"{name}={{{name}}}" for name in PLACEHOLDERS)
OPTIONS = [
    {"key": "A", "path": "wait", "available": True, "until": "2026-11-28"},
    {"key": "B", "path": "swap", "available": True,
     "swap_for": {"LIP-03": [{"sku_id": 9, "sku_code": "LIP-04", "sku_name": "Velvet Lip Tint 04"}]}},
    {"key": "C", "path": "refund_coupon", "available": True},
]  # fmt: skip


class BrokenBackend(BaseEmailBackend):
    """An SMTP server that is down: every send raises."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("smtp.example.invalid:587 refused the connection")


def _template(store=None, *, body=EVERYTHING, subject="", channel="storefront", language="en", **fields):
    return MessageTemplate.objects.create(
        store=store, case_type=fields.pop("case_type", "stalled_in_transit"), language=language,
        channel=channel, name=fields.pop("name", "Test"), subject=subject, body=body, **fields,
    )  # fmt: skip


def _case(store, *, type="stalled_in_transit", facts=None, **order_fields):
    order_fields.setdefault("platform_order_id", "580000000777")
    order = make_order(store=store, buyer_name="Siti Aminah", **order_fields)
    shipment = make_shipment(
        order=order, carrier="jtexpress-my", tracking_number=f"JT5000{order.platform_order_id}",
        expected_delivery=date(2026, 11, 24),
    )  # fmt: skip
    case, _ = case_raise(type=type, order=order, shipment=shipment, facts=facts or {}, now=T0)
    return case


def _checkpoint(shipment, at, text, location=""):
    return TrackingEvent.objects.create(
        shipment=shipment, checkpoint_at=at, tag="InTransit", subtag="InTransit_001", raw_text=text,
        location=location, source="aftership", dedupe_key=f"{at.isoformat()}-{text}",
    )  # fmt: skip


# --- templates and rendering ----------------------------------------------------------------------


@pytest.mark.django_db
def test_every_placeholder_is_filled_from_the_case(store):
    case = _case(store, facts={"restock_eta": "2026-11-28", "options": OPTIONS})
    _checkpoint(case.shipment, T0 - timedelta(hours=30), "Picked up")
    _checkpoint(case.shipment, T0 - timedelta(hours=14), "Arrived at sorting hub", "Shah Alam")

    rendered = template_render(template=_template(), case=case)

    assert rendered.body == (
        "buyer_name=Siti Aminah | order_id=580000000777 | tracking_number=JT5000580000000777 | carrier=J&T Express"
        " | latest_checkpoint=2026-11-19 20:00 Arrived at sorting hub, Shah Alam"  # 12:00 UTC in UTC+8
        " | new_eta=2026-11-24 | restock_date=2026-11-28"
        " | option_a=wait for the restock, expected by 2026-11-28 | option_b=swap it for Velvet Lip Tint 04"
        " | option_c=a full refund plus a coupon for your next order | store_name=Test Shop"
    )
    assert rendered.missing == ()
    assert rendered.subject == ""  # the storefront has no subject


@pytest.mark.django_db
def test_the_options_are_worded_in_the_templates_language(store):
    case = _case(store, facts={"options": OPTIONS})
    body = "A) {option_a}\nB) {option_b}\nC) {option_c}"
    rendered = template_render(template=_template(body=body, language="zh-hans"), case=case)
    assert (
        rendered.body
        == "A) 等待补货，预计 2026-11-28 前到货发出\nB) 换成 Velvet Lip Tint 04\nC) 全额退款，并赠送一张下次可用的优惠券"
    )


@pytest.mark.django_db
def test_missing_values_render_as_a_dash_not_a_crash(store):
    order = make_order(store=store)
    case, _ = case_raise(type="oversold", order=order, now=T0)  # no shipment, no facts

    rendered = template_render(template=_template(case_type="oversold"), case=case)

    assert f"tracking_number={MISSING}" in rendered.body
    assert f"latest_checkpoint={MISSING}" in rendered.body
    assert f"option_b={MISSING}" in rendered.body
    assert set(rendered.missing) == {
        "tracking_number", "carrier", "latest_checkpoint", "new_eta", "restock_date",
        "option_a", "option_b", "option_c",
    }  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "wait", "swap"),
    [("en", "waiting for a restock is not possible: there is no restock date yet",
      "no similar item is in stock to swap for right now"),
     ("zh-hans", "暂无补货日期，无法等待补货", "目前没有可替换的同类商品")],
)  # fmt: skip
def test_an_option_the_buyer_cannot_take_is_said_so_in_words(store, language, wait, swap):
    facts = {
        "options": [
            {**OPTIONS[0], "available": False, "until": None},
            {**OPTIONS[1], "available": False},
            OPTIONS[2],
        ]
    }
    template = _template(body="A) {option_a}\nB) {option_b}", language=language)

    rendered = template_render(template=template, case=_case(store, facts=facts))

    assert rendered.body == f"A) {wait}\nB) {swap}"
    assert rendered.missing == ()


@pytest.mark.django_db
def test_email_renders_the_subject_too(store):
    case = _case(store)
    template = _template(channel="email", subject="Order {order_id}: an update")
    assert template_render(template=template, case=case).subject == "Order 580000000777: an update"


def test_a_template_naming_an_unknown_placeholder_is_refused_with_the_known_ones():
    with pytest.raises(ValidationError) as refused:
        template_validate(subject="Hi {buyer}", body="Your parcel {tracking_no} is late, {buyer_name}.")
    errors = refused.value.message_dict
    assert "{buyer}" in errors["subject"][0]
    assert "Unknown placeholder(s): {tracking_no}." in errors["body"][0]
    assert "Known placeholders: {buyer_name}, {order_id}, {tracking_number}" in errors["body"][0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("Hello {buyer_name", "unbalanced braces"),
        ("Hello }", "unbalanced braces"),
        ("Hello {}", "not a placeholder"),
        ("Hello {order_id.upper}", "not a placeholder"),
        ("Hello {buyer_name!r}", "not a placeholder"),
        ("Hello {buyer_name:>20}", "not a placeholder"),
        ("", "Write the message"),
    ],
)
def test_malformed_templates_are_refused(body, message):
    with pytest.raises(ValidationError, match=message):
        template_validate(body=body)


def test_literal_braces_are_allowed():
    template_validate(body="Use code {{SORRY10}} at checkout, {buyer_name}.")


@pytest.mark.django_db
def test_saving_a_template_through_full_clean_refuses_unknown_placeholders(store):
    template = MessageTemplate(
        store=store, case_type="lost", language="en", channel="storefront", name="x", body="{coupon_code}"
    )
    with pytest.raises(ValidationError, match="coupon_code"):
        template.full_clean()


@pytest.mark.django_db
def test_rendering_a_template_that_slipped_past_validation_is_refused_too(store):
    template = _template(body="Hi {nickname}")  # created without full_clean
    with pytest.raises(MessageTemplateError, match=r"Unknown placeholder\(s\): \{nickname\}"):
        template_render(template=template, case=_case(store))


# --- preview and send -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_preview_writes_nothing(store, django_assert_max_num_queries):
    case = _case(store)
    template = _template(body="Hi {buyer_name}, {latest_checkpoint}")
    before = Case.objects.filter(pk=case.pk).values().get()
    events = CaseEvent.objects.count()

    with django_assert_max_num_queries(4):
        preview = message_preview(case=case, template=template)

    assert preview.body == f"Hi Siti Aminah, {MISSING}"
    assert Case.objects.filter(pk=case.pk).values().get() == before
    assert CaseEvent.objects.count() == events
    assert not BuyerMessage.objects.exists()


@pytest.mark.django_db
def test_sending_snapshots_the_text_and_records_first_contact(
    store, agent, django_capture_on_commit_callbacks
):
    case = _case(store)
    template = _template(body="Sorry {buyer_name}, your parcel {tracking_number} is delayed.")
    now = T0 + timedelta(hours=3)

    with django_capture_on_commit_callbacks() as callbacks:
        message = message_send(case=case, template=template, actor=agent, now=now)

    assert len(callbacks) == 1  # the outbox wake-up, after commit
    template.body = "Completely different words"
    template.save()
    message.refresh_from_db()
    assert message.body == "Sorry Siti Aminah, your parcel JT5000580000000777 is delayed."
    assert (message.status, message.channel, message.language, message.created_by) == (
        "queued", "storefront", "en", agent)  # fmt: skip
    case.refresh_from_db()
    assert case.first_contact_at == now
    assert case.due_at == case.resolution_due_at == T0 + timedelta(hours=72)
    event = case.events.get(kind="message_queued")
    assert event.actor == agent and event.data["message_id"] == message.pk and event.data["first_contact"]


@pytest.mark.django_db
def test_a_second_message_does_not_move_first_contact(store, agent):
    case = _case(store)
    template = _template(body="Hi {buyer_name}")
    message_send(case=case, template=template, actor=agent, now=T0 + timedelta(hours=1))
    message_send(case=case, template=template, actor=agent, now=T0 + timedelta(hours=5))
    case.refresh_from_db()
    assert case.first_contact_at == T0 + timedelta(hours=1)
    assert BuyerMessage.objects.filter(case=case).count() == 2


@pytest.mark.django_db
def test_the_same_idempotency_key_sends_once(store, agent):
    case = _case(store)
    template = _template(body="Hi")
    first = message_send(case=case, template=template, actor=agent, idempotency_key="ui:abc")
    second = message_send(case=case, template=template, actor=agent, idempotency_key="ui:abc")
    assert first.pk == second.pk
    assert case.events.filter(kind="message_queued").count() == 1


@pytest.mark.django_db
def test_email_needs_the_buyers_address(store, agent):
    case = _case(store, buyer_email="")
    with pytest.raises(CaseWorkflowError, match="no email address"):
        message_send(case=case, template=_template(channel="email", body="Hi"), actor=agent)
    assert not BuyerMessage.objects.exists()


@pytest.mark.django_db
def test_another_stores_template_or_case_is_refused(store, other_store, agent):
    case = _case(store)
    with pytest.raises(CaseWorkflowError, match="another store"):
        message_send(case=case, template=_template(other_store, body="Hi"), actor=agent)
    outsider = make_user("bob")
    make_membership(user=outsider, store=other_store)
    with pytest.raises(PermissionDenied):
        message_send(case=case, template=_template(body="Hi"), actor=outsider)
    assert not BuyerMessage.objects.exists()


@pytest.mark.django_db
def test_a_closed_case_gets_no_message(store, agent):
    case = _case(store)
    Case.objects.filter(pk=case.pk).update(status="closed", resolution="delivered", resolved_at=T0)
    with pytest.raises(CaseWorkflowError, match="closed"):
        message_send(case=case, template=_template(body="Hi"), actor=agent)


# --- the outbox -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_email_message_lands_in_the_mailbox_once(store, agent):
    case = _case(store, buyer_email="siti@example.com")
    template = _template(channel="email", subject="Order {order_id}", body="Hi {buyer_name}")
    message = message_send(case=case, template=template, actor=agent, now=T0)

    result = messages_deliver(now=T0 + MINUTE)
    messages_deliver(now=T0 + 2 * MINUTE)

    assert result.sent == 1
    assert len(mail.outbox) == 1
    assert (mail.outbox[0].to, mail.outbox[0].subject, mail.outbox[0].body) == (
        ["siti@example.com"], "Order 580000000777", "Hi Siti Aminah")  # fmt: skip
    message.refresh_from_db()
    assert (message.status, message.attempts, message.sent_at) == ("sent", 1, T0 + MINUTE)
    assert case.events.filter(kind="message_sent").count() == 1


@pytest.mark.django_db
def test_a_storefront_message_becomes_an_outbound_storefront_event(store, agent):
    case = _case(store, buyer_platform_id="tt-buyer-42")
    message = message_send(case=case, template=_template(body="Hi {buyer_name}"), actor=agent, now=T0)

    messages_deliver(now=T0)
    messages_deliver(now=T0)

    event = StorefrontEvent.objects.get(kind="message.requested")
    assert (event.store, event.case, event.delivered_at) == (store, case, None)
    assert event.payload == {"message": {
        "id": message.pk, "case_id": case.pk, "order_id": "580000000777",
        "buyer_platform_id": "tt-buyer-42", "language": "en", "subject": "", "body": "Hi Siti Aminah",
    }}  # fmt: skip
    assert mail.outbox == []
    assert case.events.filter(kind="message_sent").count() == 1


@pytest.mark.django_db
def test_a_failing_send_is_retried_with_backoff_then_marked_failed(store, agent, settings):
    settings.EMAIL_BACKEND = "tests.cases.test_messages.BrokenBackend"
    case = _case(store, buyer_email="siti@example.com")
    message = message_send(case=case, template=_template(channel="email", body="Hi"), actor=agent, now=T0)

    at = T0
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result = messages_deliver(now=at)
        message.refresh_from_db()
        assert message.attempts == attempt
        assert "ConnectionRefusedError" in message.last_error
        if attempt < MAX_ATTEMPTS:
            assert (result.retrying, message.status) == (1, "queued")
            waits.append(message.next_attempt_at - at)
            assert messages_deliver(now=message.next_attempt_at - timedelta(seconds=1)).retrying == 0
            at = message.next_attempt_at
    assert waits == [MINUTE, 2 * MINUTE, 4 * MINUTE, 8 * MINUTE]
    assert (result.failed, message.status, message.sent_at) == (1, "failed", None)
    failed = case.events.get(kind="message_failed")
    assert failed.data == {"message_id": message.pk, "channel": "email", "attempts": MAX_ATTEMPTS}
    assert messages_deliver(now=at + timedelta(days=1)).failed == 0  # a failed message is left alone
    assert not case.events.filter(kind="message_sent").exists()


@pytest.mark.django_db
def test_the_delivery_task_drains_the_outbox(store, agent):
    from cases.tasks import deliver_messages

    case = _case(store)
    message_send(case=case, template=_template(body="Hi"), actor=agent)
    assert deliver_messages() == {"sent": 1, "retrying": 0, "failed": 0}


# --- proactive messages ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_proactive_message_goes_out_once_per_case(store):
    default_templates_ensure()
    case = _case(store)

    first = proactive_message_for(case, now=T0 + MINUTE)
    second = proactive_message_for(case, now=T0 + 2 * MINUTE)

    assert first is not None and second is None
    message = BuyerMessage.objects.get(case=case)
    assert (message.idempotency_key, message.created_by, message.channel) == (
        f"proactive:{case.pk}", None, "storefront")  # fmt: skip
    assert "Siti Aminah" in message.body and "580000000777" in message.body
    case.refresh_from_db()
    assert case.first_contact_at == T0 + MINUTE
    assert case.events.get(kind="message_queued").data["proactive"] is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("buyer_language", "store_language", "expected"),
    [("ms-MY", "en", "ms"), ("zh-CN", "en", "zh-hans"), ("zh_Hans", "ms", "zh-hans"), ("fr", "th", "th"),
     ("", "vi", "vi"), ("fr", "de", "en"), ("in", "en", "id")],
)  # fmt: skip
def test_the_proactive_message_speaks_the_buyers_language(store, buyer_language, store_language, expected):
    default_templates_ensure()
    store.default_language = store_language
    store.save()
    case = _case(store, buyer_language=buyer_language)

    message = proactive_message_for(case, now=T0)

    assert message.language == expected
    assert message.template.language == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("buyer_language", "unknown"),
    [("en", "the new expected delivery date is not confirmed yet; we will tell you as soon as the carrier gives one."),
     ("zh-CN", "预计送达时间为 暂未确定（快递给出后我们会第一时间告知您）。")],
)  # fmt: skip
def test_a_stalled_parcel_with_no_expected_date_is_told_so_plainly_never_a_dash(
    store, buyer_language, unknown
):
    default_templates_ensure()
    case = _case(store, buyer_language=buyer_language)
    case.shipment.expected_delivery = None
    case.shipment.save(update_fields=["expected_delivery"])
    _checkpoint(case.shipment, T0 - timedelta(hours=14), "Arrived at sorting hub", "Shah Alam")

    message = proactive_message_for(case, now=T0)

    assert unknown in message.body
    assert MISSING not in message.body


@pytest.mark.django_db
def test_a_known_expected_date_is_given_as_the_date(store):
    default_templates_ensure()
    message = proactive_message_for(_case(store), now=T0)
    assert "the new expected delivery date is 2026-11-24." in message.body


@pytest.mark.django_db
def test_a_stores_own_template_beats_the_global_default(store):
    default_templates_ensure()
    own = _template(store, body="Maaf {buyer_name}!", name="Ours")
    message = proactive_message_for(_case(store), now=T0)
    assert message.template == own and message.body == "Maaf Siti Aminah!"


@pytest.mark.django_db
def test_an_own_site_buyer_with_an_email_gets_an_email(db):
    default_templates_ensure()
    shop = make_store(code="own", platform="own_site")
    message = proactive_message_for(_case(shop, buyer_email="siti@example.com"), now=T0)
    assert message.channel == "email" and message.recipient == "siti@example.com" and message.subject


@pytest.mark.django_db
def test_no_proactive_message_for_a_type_the_policy_does_not_mark(store):
    default_templates_ensure()
    no_update = _case(store, type="no_update", platform_order_id="1")
    assert proactive_message_for(no_update, now=T0) is None  # not proactive by default
    StorePolicy.objects.create(store=store, proactive_types=["no_update"])
    assert proactive_message_for(_case(store, platform_order_id="2"), now=T0) is None
    assert proactive_message_for(no_update, now=T0) is not None


@pytest.mark.django_db
def test_no_template_means_no_proactive_message_and_no_error(store):
    assert proactive_message_for(_case(store), now=T0) is None
    assert not BuyerMessage.objects.exists()


@pytest.mark.django_db
@pytest.mark.skipif(
    "proactive_message_for" not in inspect.getsource(cases.engine),
    reason="cases/engine.py findings_apply is wired to proactive_message_for by the lead",
)
def test_the_rule_refiring_sends_the_proactive_message_exactly_once(store):
    default_templates_ensure()
    order = make_order(store=store)
    shipment = make_shipment(order=order)
    finding = Finding(type=CaseType.STALLED_IN_TRANSIT, since=T0, summary="No progress for 12 h")

    for minutes in (0, 1, 2):
        open_cases = {c.type: c for c in Case.objects.filter(shipment=shipment, status="new")}
        findings_apply(
            order=order, shipment=shipment, evaluated=[CaseType.STALLED_IN_TRANSIT],
            findings={CaseType.STALLED_IN_TRANSIT: finding}, open_cases=open_cases, thresholds=DEFAULTS,
            now=T0 + minutes * MINUTE, result=SweepResult(),
        )  # fmt: skip

    case = Case.objects.get(shipment=shipment)
    assert BuyerMessage.objects.filter(case=case).count() == 1
    assert case.first_contact_at == T0


# --- seeds and policy -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_default_templates_cover_every_case_type_and_are_idempotent(store):
    created = default_templates_ensure()
    assert created > 0
    assert default_templates_ensure() == 0
    assert MessageTemplate.objects.count() == created
    for case_type in CaseType.values:
        for language in ("en", "zh-hans"):
            for channel in ("storefront", "email"):
                assert MessageTemplate.objects.filter(
                    store=None, case_type=case_type, language=language, channel=channel
                ).exists(), (case_type, language, channel)
    for case_type in ("stalled_in_transit", "delivery_failed", "oversold"):
        for language in ("ms", "th", "vi", "id"):
            assert MessageTemplate.objects.filter(case_type=case_type, language=language).count() == 2
    for template in MessageTemplate.objects.all():
        template.full_clean()
    assert set(DEFAULT_TEMPLATES) == set(CaseType.values)


@pytest.mark.django_db
def test_every_default_template_renders_for_a_real_case(store):
    default_templates_ensure()
    case = _case(store, facts={"restock_eta": "2026-11-28", "options": OPTIONS})
    for template in MessageTemplate.objects.all():
        rendered = template_render(template=template, case=case)
        assert "{" not in rendered.body and rendered.body.strip()


def test_language_candidates_end_in_english():
    assert language_candidates("zh-TW", "ms") == ["zh-hans", "ms", "en"]
    assert language_candidates(None, "") == ["en"]


@pytest.mark.django_db
def test_the_policy_refuses_unknown_proactive_types(store):
    policy = StorePolicy(store=store, proactive_types=["stalled_in_transit", "alien_abduction"])
    assert "alien_abduction" in policy_errors(policy)["proactive_types"]


@pytest.mark.django_db
def test_bulk_send_writes_to_the_actors_cases_only(store, other_store, agent):
    template = _template(body="Hi {buyer_name}")
    mine = [_case(store, platform_order_id=str(n)) for n in range(3)]
    theirs = _case(other_store, platform_order_id="99")

    result = messages_bulk_send(case_ids=[c.pk for c in mine] + [theirs.pk], template=template, actor=agent)

    assert result.changed == 3
    assert result.refused == {theirs.pk: "No such case."}
    assert BuyerMessage.objects.filter(case__in=mine).count() == 3
    assert not BuyerMessage.objects.filter(case=theirs).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")
def test_two_outbox_workers_never_send_one_message_twice():
    shop = make_store(code="outbox-race")
    template = _template(body="Hi {buyer_name}")
    cases = [_case(shop, platform_order_id=str(n)) for n in range(30)]
    for case in cases:
        message_send(case=case, template=template, actor=None, now=T0)

    def work() -> None:
        messages_deliver(now=T0 + MINUTE)

    at_once(work, work, work)

    assert StorefrontEvent.objects.filter(kind="message.requested").count() == 30
    assert CaseEvent.objects.filter(kind="message_sent").count() == 30
    assert set(BuyerMessage.objects.values_list("status", "attempts")) == {("sent", 1)}


@pytest.mark.django_db
def test_the_template_picker_offers_the_stores_own_and_the_global_ones_for_the_cases_type(store, other_store):
    from cases.selectors import message_templates_for_case

    default_templates_ensure()
    own = _template(store, body="Hi", name="Ours")
    _template(other_store, body="Hi", name="Theirs")
    _template(store, body="Hi", name="Off", is_active=False)
    _template(store, body="Hi", name="Other type", case_type="lost")

    offered = list(message_templates_for_case(_case(store)))

    assert offered[0] == own
    assert {t.case_type for t in offered} == {"stalled_in_transit"}
    assert {t.store_id for t in offered} == {store.pk, None}
    assert "Off" not in {t.name for t in offered}
