from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from cases.models import Case, CaseEvent
from cases.review import order_review_evaluate
from cases.texts import Text, case_summary, event_message
from tests.factories import make_order

REPORTS = "%(carrier)s reports %(subtag)s on parcel %(number)s at %(place)s: %(text)s"


def test_a_text_renders_in_the_language_asked_and_survives_a_round_trip_through_json():
    text = Text(REPORTS, carrier="zto", subtag="Exception_013", number="JT1", place="Shah Alam", text="Lost")

    assert str(text) == "ZTO Express reports shipment lost on parcel JT1 at Shah Alam: Lost"
    assert text.render("zh-hans") == "中通快递 报告包裹 JT1 在 Shah Alam 包裹丢失：Lost"
    assert Text.from_data(text.as_data()) == text


def test_nested_texts_are_joined_and_translated_part_by_part():
    reasons = [Text("%(count)s orders to one address in one live session", count=3), Text("payment flagged")]
    text = Text("Held for review: %(reasons)s.", reasons=reasons)

    assert str(text) == "Held for review: 3 orders to one address in one live session; payment flagged."
    assert (
        Text.from_data(text.as_data()).render("zh-hans").startswith("暂停发货待审核：同一场直播中有 3 个订单")
    )


def test_unknown_or_missing_text_data_falls_back_to_the_stored_words():
    assert Text.from_data(None) is None
    assert Text.from_data({"msgid": 5}) is None
    case = Case(summary="Written before texts existed", facts={})
    assert case_summary(case) == "Written before texts existed"
    event = CaseEvent(message="A note an agent typed", data={})
    assert event_message(event) == "A note an agent typed"
    # Parameters that no longer fit the message (renamed since it was written): the stored words, no error.
    stale = CaseEvent(
        message="Stored words", data={"text": {"msgid": "Parcel %(number)s lost.", "params": {}}}
    )
    assert event_message(stale) == "Stored words"


@pytest.mark.django_db
def test_a_rule_written_summary_and_timeline_read_in_the_readers_language(agent_client, store):
    order = make_order(store=store, street="", district="")
    order_review_evaluate(store=store, order_ids=[order.pk])
    case = Case.objects.get(order=order)
    assert (
        case.summary == "Held for review: address too vague to deliver (no street, no district)."
    )  # stored English

    english = agent_client.get(reverse("cases:detail", args=[case.pk])).content.decode()
    chinese = agent_client.get(reverse("cases:detail", args=[case.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans")
    queue = agent_client.get(reverse("cases:list"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert "address too vague to deliver" in english and "Order held from shipping until reviewed." in english
    body = chinese.content.decode()
    assert "暂停发货待审核：地址过于模糊，无法派送（缺少街道和区）。" in body
    assert "订单已暂停发货，等待审核。" in body
    assert "暂停发货待审核" in queue
    with translation.override("en"):
        assert case_summary(case).startswith("Held for review")
