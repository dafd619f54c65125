"""Buyer complaints in: classified in the buyer's language, recorded once, routed to the right case, the
small-damage coupon once per order, batch incidents from quality complaints, the triage queue."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from cases.choices import CaseEventKind, CaseType, CompensationOrigin, Priority
from cases.complaints import classifier, intake
from cases.complaints.intake import ComplaintError, complaint_receive
from cases.models import Case, CaseEvent, Compensation, Complaint, StorePolicy
from cases.services import case_raise
from tests.api import Api
from tests.factories import (
    add_line,
    make_membership,
    make_order,
    make_shipment,
    make_sku,
    make_store,
    make_user,
)

# Plain examples per language: the classifier must get these right (the held-out figures are in the report).
FIXED = [
    ("en", "where is my parcel?? ordered 2 weeks ago still nothing", "not_received"),
    ("en", "the oil bottle leaked all over the box", "damaged"),
    ("en", "you sent 1.8 L, I paid for 5 L", "wrong_item"),
    ("en", "there are bugs in the rice", "quality"),
    ("zh-hans", "我的快递到底什么时候到啊，等了十天了", "not_received"),
    ("zh-hans", "瓶子碎了，油漏得整个箱子都是", "damaged"),
    ("zh-hans", "米里有虫子，怎么吃", "quality"),
    ("zh-hant", "包裹還沒收到，物流一直沒更新", "not_received"),
    ("zh-hant", "能幫我開統編發票嗎", "other"),
    ("th", "ยังไม่ได้รับของเลยค่ะ สั่งไปนานแล้ว", "not_received"),
    ("th", "ขวดแตก น้ำมันรั่วเต็มกล่องเลย", "damaged"),
    ("ms", "barang tak sampai lagi dah seminggu", "not_received"),
    ("ms", "botol minyak bocor dalam kotak", "damaged"),
    ("id", "paket belum nyampe kak, resi gak gerak", "not_received"),
    ("id", "ada kutu di berasnya kak", "quality"),
    ("vi", "shop ơi em chưa nhận được hàng", "not_received"),
    ("vi", "chai dầu bị vỡ, chảy hết ra hộp", "damaged"),
]


@pytest.mark.parametrize(
    ("language", "text", "category"), FIXED, ids=[f"{lang}-{cat}" for lang, _t, cat in FIXED]
)
def test_the_classifier_reads_each_language(language, text, category):
    reading = classifier.classify(text)

    assert (reading.category, reading.language) == (category, language)
    assert reading.words  # the words that decided it, to show the agent
    assert all(part in classifier.normalize(text) for word in reading.words for part in word.split())


def test_the_shipped_model_was_trained_on_the_corpus_in_the_repository():
    manifest = classifier.manifest()
    assert manifest["corpus_sha256"] == classifier.corpus_digest(), "run `python manage.py train_classifier`"
    assert manifest["held_out"]["macro_f1"] > 0.8
    examples = classifier.corpus()
    assert all(sum(1 for e in examples if e.label == label) >= 150 for label in classifier.CATEGORIES)


def test_a_model_whose_bytes_do_not_match_its_checksum_is_not_loaded(tmp_path):
    (tmp_path / "classifier.npz").write_bytes(classifier.MODEL_FILE.read_bytes()[:-10] + b"0123456789")
    (tmp_path / "manifest.json").write_text(classifier.MANIFEST_FILE.read_text())

    with pytest.raises(classifier.ClassifierUnavailable, match="checksum"):
        classifier.load(tmp_path)


def test_the_report_command_scores_a_held_out_split(tmp_path, capsys, monkeypatch):
    from django.core.management import call_command

    lines = [json.dumps({"text": e.text, "label": e.label, "lang": e.lang}, ensure_ascii=False)
             for e in classifier.corpus()[::6]]  # fmt: skip
    (tmp_path / "small.jsonl").write_text("\n".join(lines), encoding="utf-8")
    monkeypatch.setattr(classifier, "CORPUS_DIR", tmp_path)

    call_command("classifier_report")

    out = capsys.readouterr().out
    assert "macro-F1" in out and "Confusion" in out
    assert all(f"  {lang}" in out for lang in ("en", "th", "vi", "zh-hans"))


# --- intake and routing --------------------------------------------------------------------------------


@pytest.fixture
def order(store):
    sku = make_sku(store=store, code="RICE-5KG", name="Rice 5kg")
    order = make_order(store=store, amount="32.90", buyer_platform_id="buyer-1")
    add_line(order=order, sku=sku, lot="L2611")
    make_shipment(order=order)
    return order


@pytest.mark.django_db
def test_a_complaint_through_the_api_opens_its_case_and_a_resend_is_the_same_complaint(store, order):
    api = Api(store)
    body = {"order_id": order.platform_order_id, "text": "the oil bottle leaked all over the box 😡",
            "channel": "chat", "external_id": "msg-1", "received_at": "2026-11-13T10:02:00+08:00"}  # fmt: skip

    first = api.post("complaints", body)
    again = api.post("complaints", body)

    assert first.status_code == 201 and again.status_code == 200
    data = first.json()
    assert data["classification"]["category"] == "damaged" and data["routed"] == "opened"
    assert data["case"]["type"] == "damaged"
    assert again.json()["id"] == data["id"]
    assert Complaint.objects.count() == 1 and Case.objects.filter(type="damaged").count() == 1
    case = Case.objects.get(type="damaged")
    first_entries = list(CaseEvent.objects.filter(case=case).order_by("created_at", "pk")[:2])
    assert [e.kind for e in first_entries] == [CaseEventKind.RAISED, CaseEventKind.COMPLAINT]
    assert "leaked" in first_entries[0].message and "leaked" in first_entries[1].message


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 100_000}, "text"),
        ({"order_id": "NO-SUCH-ORDER"}, "order_id"),
        ({"channel": "pigeon"}, "channel"),
        ({"attachments": ["javascript:alert(1)"]}, "attachments"),
        ({"received_at": "2026-11-13 10:00"}, "received_at"),
        ({"surprise": 1}, "surprise"),
    ],
    ids=["empty", "blank", "100kb", "unknown-order", "channel", "attachment", "naive-time", "unknown-field"],
)
def test_bad_complaints_are_a_clear_400_and_write_nothing(store, order, body, field):
    payload = {"order_id": order.platform_order_id, "text": "where is my parcel", **body}

    response = Api(store).post("complaints", payload)

    assert response.status_code == 400, response.content
    assert field in json.dumps(response.json()["errors"])
    assert not Complaint.objects.exists() and not Case.objects.filter(type__in=["not_received"]).exists()


@pytest.mark.django_db
def test_another_store_s_order_is_not_found_there(store, order):
    response = Api(make_store(code="intruder")).post(
        "complaints", {"order_id": order.platform_order_id, "text": "hi"}
    )

    assert response.status_code == 400 and "No order" in response.json()["detail"]
    assert not Complaint.objects.exists()


@pytest.mark.django_db
def test_html_in_a_complaint_is_kept_as_text_and_shown_as_text(store, order, agent_client):
    text = '<script>alert("x")</script><b>the oil bottle leaked</b>'
    data = Api(store).post("complaints", {"order_id": order.platform_order_id, "text": text}).json()
    case_id = data["case"]["id"]

    page = agent_client.get(reverse("cases:detail", args=[case_id])).content.decode()

    assert Complaint.objects.get().text == text
    assert "<script>alert" not in page and "&lt;script&gt;" in page


@pytest.mark.django_db
def test_classify_answers_without_recording(store):
    response = Api(store).post("complaints/classify", {"text": "barang dah sampai tapi kurang satu botol"})

    assert response.status_code == 200
    assert response.json()["category"] == "missing_item" and response.json()["language"] == "ms"
    assert not Complaint.objects.exists()


@pytest.mark.django_db
def test_where_is_my_parcel_joins_the_stalled_parcel_s_case_and_marks_it_chased(store, order):
    parcel = order.shipments.get()
    stalled, _ = case_raise(type=CaseType.STALLED_IN_TRANSIT, order=order, shipment=parcel,
                            priority=Priority.NORMAL, summary="stalled")  # fmt: skip

    result = complaint_receive(order=order, text="where is my parcel?? ordered 2 weeks ago still nothing")

    stalled.refresh_from_db()
    assert result.complaint.case_id == stalled.pk and result.complaint.routed == "joined"
    assert stalled.priority == Priority.HIGH and "buyer_chased_at" in stalled.facts
    entry = CaseEvent.objects.get(case=stalled, kind=CaseEventKind.COMPLAINT)
    assert "first_contact_minutes_left" in entry.data
    assert Case.objects.filter(order=order).count() == 1


@pytest.mark.django_db
def test_without_an_open_parcel_case_not_received_opens_one_on_the_order(store, order):
    result = complaint_receive(order=order, text="where is my parcel?? ordered 2 weeks ago still nothing")

    case = result.complaint.case
    assert (case.type, case.shipment_id, result.complaint.routed) == (CaseType.NOT_RECEIVED, None, "opened")
    assert case.first_contact_due_at == case.opened_at + timedelta(hours=24)  # the store's SLA


@pytest.mark.django_db
def test_the_same_buyer_writing_twice_in_a_day_is_one_case(store, order):
    now = timezone.now()
    first = complaint_receive(order=order, text="the oil bottle leaked all over the box", received_at=now)
    second = complaint_receive(
        order=order, text="hello?? any reply about my order", received_at=now + timedelta(hours=5)
    )
    later = complaint_receive(
        order=order, text="you sent 1.8 L, I paid for 5 L", received_at=now + timedelta(days=2)
    )

    assert second.complaint.case_id == first.complaint.case_id
    assert later.complaint.case_id != first.complaint.case_id  # a new matter, two days on
    assert Case.objects.filter(order=order).count() == 2


@pytest.mark.django_db
def test_the_small_damage_coupon_is_proposed_exactly_once_per_order(store, order):
    StorePolicy.objects.create(
        store=store, small_damage_coupon=Decimal("5.00"), small_damage_order_max=Decimal("50")
    )

    complaint_receive(order=order, text="the oil bottle leaked all over the box")
    complaint_receive(
        order=order, text="bottle cracked, oil everywhere", received_at=timezone.now() + timedelta(days=3)
    )

    coupons = Compensation.objects.filter(order=order, origin=CompensationOrigin.AUTO_SMALL_DAMAGE)
    assert coupons.count() == 1 and coupons.get().amount == Decimal("5.00")
    big = make_order(store=store, amount="300.00")
    make_shipment(order=big)
    complaint_receive(order=big, text="the oil bottle leaked all over the box")
    assert not Compensation.objects.filter(order=big).exists()  # above the store's small-order threshold


@pytest.mark.django_db
def test_ten_quality_complaints_on_one_lot_open_one_incident_and_the_eleventh_joins_it(store):
    sku = make_sku(store=store, code="RICE-5KG", name="Rice 5kg")
    orders = []
    for _ in range(11):
        order = make_order(store=store, amount="32.90")
        add_line(order=order, sku=sku, lot="L2611")
        orders.append(order)
    now = timezone.now()
    texts = ["there are bugs in the rice", "weevils crawling in the rice bag", "beras ada kutu", "米里有虫子，怎么吃",
             "rice smells mouldy and has worms", "ข้าวสารมีมอดเต็มเลย", "gạo có mọt", "ada kutu di berasnya kak",
             "found insects in the rice, disgusting", "米里面全是小黑虫", "the rice has bugs again!!"]  # fmt: skip

    for index, (order, text) in enumerate(zip(orders[:10], texts, strict=False)):
        complaint_receive(order=order, text=text, received_at=now - timedelta(minutes=30 - index))
    incident = Case.objects.get(type=CaseType.QUALITY_BATCH)
    assert incident.children.count() == 10

    eleventh = complaint_receive(order=orders[10], text=texts[10])

    assert Case.objects.filter(type=CaseType.QUALITY_BATCH).count() == 1
    assert eleventh.complaint.case.parent_id == incident.pk
    assert incident.children.count() == 11


@pytest.mark.django_db
def test_an_unsure_complaint_waits_in_triage_and_the_agent_s_label_routes_it(
    store, order, agent_client, monkeypatch
):
    monkeypatch.setattr(intake, "confidence_threshold", lambda: 0.999)  # nothing is sure enough
    result = complaint_receive(order=order, text="hmm about my order")
    assert result.complaint.needs_triage and result.complaint.case_id is None

    page = agent_client.get(reverse("cases:triage")).content.decode()
    assert "hmm about my order" in page
    response = agent_client.post(
        reverse("cases:triage_label", args=[result.complaint.pk]), {"category": "other"}
    )

    assert response.status_code == 302
    complaint = Complaint.objects.get()
    assert (complaint.label, complaint.labelled_by, complaint.needs_triage) == (
        "other",
        agent_client.agent,
        False,
    )
    assert complaint.case.type == CaseType.ENQUIRY
    export = agent_client.get(reverse("cases:triage_export"))
    lines = [json.loads(line) for line in b"".join(export.streaming_content).decode().splitlines()]
    assert lines == [{"text": "hmm about my order", "label": "other", "lang": complaint.language or "en"}]


@pytest.mark.django_db
def test_without_a_model_every_complaint_goes_to_triage(store, order, monkeypatch):
    def unavailable(text):
        raise classifier.ClassifierUnavailable("no model")

    monkeypatch.setattr(classifier, "classify", unavailable)

    result = complaint_receive(order=order, text="where is my parcel")

    assert result.complaint.needs_triage and result.complaint.case_id is None


@pytest.mark.django_db
def test_an_agent_logs_a_phone_complaint_on_the_case_page(store, order, agent_client):
    parcel = order.shipments.get()
    case, _ = case_raise(type=CaseType.STALLED_IN_TRANSIT, order=order, shipment=parcel, summary="stalled")
    page = agent_client.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert 'id="log-complaint"' in page

    response = agent_client.post(
        reverse("cases:complaint_log", args=[order.pk]),
        {"text": "瓶子碎了，油漏得整个箱子都是", "channel": "phone"},
    )

    complaint = Complaint.objects.get()
    assert (complaint.channel, complaint.created_by, complaint.language) == (
        "phone",
        agent_client.agent,
        "zh-hans",
    )
    assert response.status_code == 302 and response["Location"] == reverse(
        "cases:detail", args=[complaint.case_id]
    )
    other_order = make_order(store=make_store(code="elsewhere"))
    assert (
        agent_client.post(reverse("cases:complaint_log", args=[other_order.pk]), {"text": "x"}).status_code
        == 404
    )


@pytest.mark.django_db
def test_a_message_id_reused_for_another_order_is_refused(store, order):
    complaint_receive(order=order, text="where is my parcel", external_id="m-1")
    other = make_order(store=store)

    with pytest.raises(ComplaintError, match="already recorded"):
        complaint_receive(order=other, text="where is my parcel", external_id="m-1")


@pytest.mark.django_db
def test_agents_of_other_stores_cannot_label(store, order, client):
    result = complaint_receive(order=order, text="x", external_id="t-1")
    Complaint.objects.filter(pk=result.complaint.pk).update(needs_triage=True, case=None)
    outsider = make_user("outsider")
    make_membership(user=outsider, store=make_store(code="outside"))
    client.force_login(outsider)

    assert (
        client.post(
            reverse("cases:triage_label", args=[result.complaint.pk]), {"category": "other"}
        ).status_code
        == 404
    )


@pytest.mark.django_db
def test_the_buyer_s_photos_logged_with_a_complaint_become_evidence_on_its_case(store, order, agent_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from cases.models import Evidence
    from tests.evidence_files import jpeg

    photo = SimpleUploadedFile("leak.jpg", jpeg(), content_type="image/jpeg")
    fake = SimpleUploadedFile("evil.jpg", b"<?php system($_GET['x']); ?>", content_type="image/jpeg")

    response = agent_client.post(
        reverse("cases:complaint_log", args=[order.pk]),
        {"text": "the oil bottle leaked all over the box", "channel": "chat", "photos": [photo, fake]},
    )

    complaint = Complaint.objects.get()
    assert response.status_code == 302
    evidence = Evidence.objects.get(case=complaint.case)
    assert (evidence.kind, evidence.original_name) == ("damage_photo", "leak.jpg")
    page = agent_client.get(response["Location"]).content.decode()
    assert "evil.jpg" in page  # the refused file is named, with its reason


@pytest.mark.django_db
@pytest.mark.parametrize(
    "back", ["/\\evil.example/", "//evil.example/", "https://evil.example/", "javascript:x"]
)
def test_a_refused_complaint_never_sends_the_agent_off_site(order, agent_client, back):
    response = agent_client.post(reverse("cases:complaint_log", args=[order.pk]), {"text": "", "next": back})

    assert response.status_code == 302 and response["Location"] == reverse("cases:list")
    assert not Complaint.objects.exists()


@pytest.mark.django_db
def test_a_refused_complaint_goes_back_to_the_case_page(order, agent_client):
    back = reverse("cases:list") + "?type=lost"
    response = agent_client.post(reverse("cases:complaint_log", args=[order.pk]), {"text": "", "next": back})

    assert response.status_code == 302 and response["Location"] == back
