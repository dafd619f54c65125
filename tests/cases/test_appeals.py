"""Appeals: scenarios as data, the checklist from files and facts, the deadline, the export rules, the
packet (its manifest matches its files, the same inputs give the same bytes), the outcome, another
store's appeals, and the pickup-delay watchdog."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from cases.appeals import (
    SCENARIOS,
    appeal_checklist,
    appeal_create,
    appeal_scenarios_ensure,
    scenarios_for_store,
)
from cases.evidence import evidence_add, evidence_tombstone
from cases.models import Appeal, AppealScenario, CustodyEntry
from cases.packet import packet_stream
from tests.evidence_files import jpeg, pdf, png
from tests.factories import make_case, make_membership, make_order, make_shipment, make_store, make_user
from tracking.models import TrackingEvent

NO_SHOW = "tts-late-dispatch-b"


@pytest.fixture
def supervisor(store):
    user = make_user("sue")
    make_membership(user=user, store=store, role="supervisor")
    return user


def add(case, data: bytes, name: str, kind: str, actor):
    return evidence_add(case=case, upload=io.BytesIO(data), name=name, kind=kind, actor=actor)


def no_show_case(store, **order_fields):
    """A pickup booked in time that the carrier never came for: the seed's worst morning."""
    from cases.services import case_raise

    order = make_order(store=store, **order_fields)
    parcel = make_shipment(order=order, booked_at=order.placed_at + timedelta(hours=1), accepted_at=None)
    TrackingEvent.objects.create(
        shipment=parcel, checkpoint_at=order.placed_at + timedelta(hours=1), tag="InfoReceived",
        raw_code="10", raw_text="电子面单已生成 Shipping label created", source="push",
        dedupe_key="as-evt-1", received_at=order.placed_at + timedelta(hours=1),
    )  # fmt: skip
    case, _ = case_raise(type="pickup_overdue", order=order, shipment=parcel, summary="Carrier did not come")
    return case


def scenario(code: str) -> AppealScenario:
    appeal_scenarios_ensure()
    return AppealScenario.objects.get(store__isnull=True, code=code)


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def export(client, appeal, **data) -> bytes:
    response = client.post(reverse("cases:appeal_export", args=[appeal.pk]), data)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "application/zip"
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="appeal-{appeal.store.code}-{appeal.pk}.zip"'
    )
    return b"".join(response.streaming_content)


# --- scenarios ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_scenarios_are_data_per_platform_and_a_store_adds_its_own(store, other_store):
    # migrate ships them; an install that lost them gets them back
    assert AppealScenario.objects.filter(store__isnull=True).count() == len(SCENARIOS)
    AppealScenario.objects.all().delete()
    assert appeal_scenarios_ensure() == len(SCENARIOS)
    assert appeal_scenarios_ensure() == 0  # idempotent
    codes = {s.code for s in scenarios_for_store(store)}
    assert {f"tts-late-dispatch-{x}" for x in "abcde"} | {
        "tts-seller-fault-cancellation",
        "carrier-claim",
    } <= codes
    assert not any(code.startswith("shopee") for code in codes)
    shopee = make_store(code="shopee-my", platform="shopee")
    assert {"shopee-late-shipment", "shopee-non-fulfilment", "shopee-failed-pickup", "carrier-claim"} <= {
        s.code for s in scenarios_for_store(shopee)
    }
    own = AppealScenario.objects.create(
        store=store, platform="tiktok_shop", code="tts-warehouse-flood", name="Our warehouse flooded",
        required=["notice", "cctv_still"], window_days=3,
    )  # fmt: skip
    assert own in scenarios_for_store(store) and own not in scenarios_for_store(other_store)
    AppealScenario.objects.filter(code="tts-late-dispatch-e").update(is_active=False)
    assert "tts-late-dispatch-e" not in {s.code for s in scenarios_for_store(store)}


# --- the checklist and the deadline ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_checklist_counts_live_files_and_system_facts(store, agent):
    case = no_show_case(store)
    appeal = appeal_create(store=store, scenario=scenario(NO_SHOW), cases=[case], actor=agent)

    checklist = appeal_checklist(appeal)
    state = {item.code: item.met for item in checklist.items}
    assert state == {
        "booking_confirmation": False, "carrier_chat": False, "booking_time": True, "acceptance_gap": True,
        "cctv_still": False, "call_record": False, "buyer_contacted": False,
    }  # fmt: skip
    assert checklist.percent == 50 and not checklist.complete

    add(case, pdf(), "booking.pdf", "booking_confirmation", agent)
    chat = add(case, b"carrier: no truck today\n", "chat.txt", "carrier_chat", agent)
    assert appeal_checklist(appeal).complete
    evidence_tombstone(evidence=chat, actor=agent, reason="Wrong chat")
    assert [item.code for item in appeal_checklist(appeal).missing] == ["carrier_chat"]


@pytest.mark.django_db
def test_the_deadline_counts_from_the_earliest_ship_by_or_the_penalty_date(store, agent):
    placed = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
    early, late = (
        no_show_case(store, placed_at=placed),
        no_show_case(store, placed_at=placed + timedelta(hours=5)),
    )
    appeal = appeal_create(store=store, scenario=scenario(NO_SHOW), cases=[late, early], actor=agent)
    assert appeal.deadline == early.order.ship_by + timedelta(days=7)

    shopee = make_store(code="shopee-my", platform="shopee")
    seller = make_user("shopee-agent")
    make_membership(user=seller, store=shopee)
    case = no_show_case(shopee)
    penalty = appeal_create(
        store=shopee, scenario=scenario("shopee-late-shipment"), cases=[case], actor=seller,
        penalty_date=date(2026, 11, 20),
    )  # fmt: skip
    # five days from midnight of the penalty's day, where the store is (Kuala Lumpur, UTC+8)
    assert penalty.deadline == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_the_appeal_page_shows_the_checklist_meter_deadline_and_what_to_upload_next(agent_client, store):
    case = no_show_case(store)
    with time_machine.travel(case.order.ship_by - timedelta(hours=2), tick=False):
        appeal = appeal_create(
            store=store, scenario=scenario(NO_SHOW), cases=[case], actor=agent_client.agent
        )
        agent_client.force_login(agent_client.agent)  # two days on: the morning's session has expired idle
        page = agent_client.get(reverse("cases:appeal", args=[appeal.pk])).content.decode()
    assert "50% complete" in page
    assert 'data-item="booking_confirmation"' in page and 'class="missing" data-item="carrier_chat"' in page
    assert "Next: upload the Booking confirmation" in page
    assert "The platform's deadline" in page and "(in 1\xa0week" in page


# --- building from the queue and from the case -------------------------------------------------------------


@pytest.mark.django_db
def test_an_appeal_is_built_for_a_selection_of_cases(agent_client, store):
    cases = [no_show_case(store) for _ in range(3)]
    ids = [case.pk for case in cases]

    form = agent_client.get(reverse("cases:appeal_new"), {"ids": ids})
    assert form.status_code == 200 and "covering 3 cases" in form.content.decode()
    chosen = scenario(NO_SHOW)
    response = agent_client.post(reverse("cases:appeal_new"), {"ids": ids, "scenario": chosen.pk})

    appeal = Appeal.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("cases:appeal", args=[appeal.pk])
    assert sorted(appeal.cases.values_list("pk", flat=True)) == ids
    assert appeal.created_by == agent_client.agent and appeal.status == "draft"
    case_page = agent_client.get(reverse("cases:detail", args=[cases[0].pk])).content.decode()
    assert reverse("cases:appeal", args=[appeal.pk]) in case_page


@pytest.mark.django_db
def test_building_refuses_a_scenario_of_another_platform_and_a_bad_date(agent_client, store):
    case = no_show_case(store)
    shopee = scenario("shopee-late-shipment")
    wrong = agent_client.post(reverse("cases:appeal_new"), {"ids": [case.pk], "scenario": shopee.pk})
    assert wrong.status_code == 400 and "Pick a scenario" in wrong.content.decode()
    bad = agent_client.post(
        reverse("cases:appeal_new"),
        {"ids": [case.pk], "scenario": scenario(NO_SHOW).pk, "penalty_date": "20/11/2026"},
    )
    assert bad.status_code == 400 and "not a date" in bad.content.decode()
    assert not Appeal.objects.exists()


# --- exporting -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_incomplete_appeal_is_not_exported_unless_a_supervisor_says_why(
    agent_client, store, supervisor, client
):
    case = no_show_case(store)
    appeal = appeal_create(store=store, scenario=scenario(NO_SHOW), cases=[case], actor=agent_client.agent)
    url = reverse("cases:appeal_export", args=[appeal.pk])

    refused = agent_client.post(url, follow=True)
    assert "Missing for this scenario: Booking confirmation, Carrier chat log" in refused.content.decode()
    not_theirs = agent_client.post(url, {"override_reason": "Platform wants it today"}, follow=True)
    assert "Only a supervisor" in not_theirs.content.decode()
    assert not CustodyEntry.objects.filter(action="export").exists()

    client.force_login(supervisor)
    packet = read_zip(export(client, appeal, override_reason="Platform closes the window tonight"))

    appeal.refresh_from_db()
    assert appeal.override_reason == "Platform closes the window tonight" and appeal.override_by == supervisor
    manifest = json.loads(packet["manifest.json"])
    assert manifest["appeal"]["complete"] is False
    assert manifest["appeal"]["exported_incomplete_because"] == "Platform closes the window tonight"


@pytest.mark.django_db
def test_the_packet_holds_manifest_summary_system_evidence_and_the_files_it_names(agent_client, store):
    agent = agent_client.agent
    case = no_show_case(store)
    photo, booking = jpeg(), pdf()
    add(case, booking, "booking.pdf", "booking_confirmation", agent)
    add(case, b"10:02 carrier: no truck today\n", "chat.txt", "carrier_chat", agent)
    add(case, photo, "door.jpg", "cctv_still", agent)
    withdrawn = add(case, png(), "wrong.png", "other", agent)
    evidence_tombstone(evidence=withdrawn, actor=agent, reason="Another order")
    appeal = appeal_create(store=store, scenario=scenario(NO_SHOW), cases=[case], actor=agent)

    packet = read_zip(export(agent_client, appeal))

    order = case.order.platform_order_id
    assert sorted(packet) == sorted([
        "manifest.json", "summary.pdf", "system/tracking.csv", "system/messages.csv", "system/timeline.csv",
        "system/compensation.csv", f"files/{order}_01_booking_confirmation.pdf",
        f"files/{order}_02_carrier_chat.txt", f"files/{order}_03_cctv_still.jpg",
    ])  # fmt: skip
    manifest = json.loads(packet["manifest.json"])
    for item in manifest["files"]:  # every hash in the manifest is the file's in the ZIP
        assert hashlib.sha256(packet[item["path"]]).hexdigest() == item["sha256"]
        assert len(packet[item["path"]]) == item["size"]
    assert [f["number"] for f in manifest["files"]] == [1, 2, 3]
    assert packet[f"files/{order}_03_cctv_still.jpg"] == photo
    assert (
        manifest["files"][2]["capture_time_from"] == "exif" and manifest["files"][0]["uploaded_by"] == "alice"
    )
    assert manifest["store"] == {"code": store.code, "name": store.name, "platform": "tiktok_shop"}
    assert manifest["appeal"]["scenario"] == NO_SHOW and manifest["appeal"]["complete"] is True
    (entry,) = manifest["cases"]
    assert entry["order_id"] == order and entry["tracking_number"] == case.shipment.tracking_number
    assert entry["booked_at"] and entry["first_acceptance_scan"] is None and entry["ship_by"]
    assert manifest["exported_by"] == "alice" and manifest["exported_at"]
    assert packet["summary.pdf"].startswith(b"%PDF")
    tracking = list(csv.DictReader(io.StringIO(packet["system/tracking.csv"].decode("utf-8-sig"))))
    assert tracking[0]["carrier_text"] == "电子面单已生成 Shipping label created"
    assert tracking[0]["carrier_code"] == "10" and tracking[0]["provider_event_key"] == "as-evt-1"
    timeline = packet["system/timeline.csv"].decode("utf-8-sig")
    assert "Appeal started" in timeline and "Evidence withdrawn: wrong.png" in timeline
    # custody: each file exported, and the packet
    exported = CustodyEntry.objects.filter(action="export")
    assert (
        exported.filter(evidence__isnull=False).count() == 3 and exported.filter(appeal=appeal).count() == 4
    )
    assert not withdrawn.custody.filter(action="export").exists()
    appeal.refresh_from_db()
    assert appeal.status == "exported" and appeal.exported_by == agent


@pytest.mark.django_db
def test_two_exports_of_the_same_appeal_are_byte_identical(agent_client, store):
    agent = agent_client.agent
    cases = [no_show_case(store) for _ in range(2)]
    add(cases[0], pdf(), "booking.pdf", "booking_confirmation", agent)
    add(cases[1], b"carrier: no truck\n", "chat.txt", "carrier_chat", agent)
    add(cases[1], jpeg(), "door.jpg", "cctv_still", agent)
    appeal = appeal_create(store=store, scenario=scenario(NO_SHOW), cases=cases, actor=agent)

    with time_machine.travel(datetime(2026, 11, 14, 3, 0, tzinfo=UTC), tick=False):
        first = export(agent_client, appeal)
        second = export(agent_client, appeal)

    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        names = archive.namelist()
    assert names[:2] == ["manifest.json", "summary.pdf"]


@pytest.mark.django_db
def test_a_chinese_stores_summary_is_in_chinese(store, agent):
    store.default_language = "zh-hans"
    store.save()
    case = no_show_case(store)
    appeal = appeal_create(store=store, scenario=scenario(NO_SHOW), cases=[case], actor=agent)
    packet = read_zip(b"".join(packet_stream(appeal, exporter=agent, now=timezone.now())))
    assert b"STSong-Light" in packet["summary.pdf"]


@pytest.mark.django_db
def test_the_packet_is_streamed_in_chunks(store, agent):
    case = no_show_case(store)
    for n in range(3):
        add(case, jpeg(size=(600, 400), color=(n * 60, 10, 10)), f"p{n}.jpg", "cctv_still", agent)
    appeal = appeal_create(store=store, scenario=scenario(NO_SHOW), cases=[case], actor=agent)
    chunks = list(packet_stream(appeal, exporter=agent, now=timezone.now()))
    assert len(chunks) > 5
    read_zip(b"".join(chunks))


# --- the outcome ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_outcome_is_recorded_for_the_reports(agent_client, store):
    case = no_show_case(store)
    appeal = appeal_create(store=store, scenario=scenario(NO_SHOW), cases=[case], actor=agent_client.agent)
    url = reverse("cases:appeal_outcome", args=[appeal.pk])

    agent_client.post(url, {"submitted": "1"})
    appeal.refresh_from_db()
    assert appeal.status == "submitted" and appeal.submitted_at
    bad = agent_client.post(url, {"decision": "won", "penalty_avoided": "lots"}, follow=True)
    assert "not an amount" in bad.content.decode()
    agent_client.post(url, {"decision": "partial", "penalty_avoided": "180.50"})
    appeal.refresh_from_db()
    assert (appeal.status, appeal.decision, str(appeal.penalty_avoided)) == ("decided", "partial", "180.50")
    unknown = agent_client.post(url, {"decision": "maybe"}, follow=True)
    assert "Unknown decision" in unknown.content.decode()


# --- another store's appeals --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_stores_appeal_and_packet_are_404(agent_client, store, other_store):
    owner = make_user("bob")
    make_membership(user=owner, store=other_store)
    theirs = no_show_case(other_store)
    add(theirs, pdf(), "booking.pdf", "booking_confirmation", owner)
    appeal = appeal_create(store=other_store, scenario=scenario(NO_SHOW), cases=[theirs], actor=owner)

    assert agent_client.get(reverse("cases:appeal", args=[appeal.pk])).status_code == 404
    assert agent_client.post(reverse("cases:appeal_export", args=[appeal.pk])).status_code == 404
    outcome = agent_client.post(reverse("cases:appeal_outcome", args=[appeal.pk]), {"decision": "lost"})
    assert outcome.status_code == 404
    mine_by_id = no_show_case(store)
    adding = agent_client.post(
        reverse("cases:appeal_cases_add", args=[appeal.pk]),
        {"references": mine_by_id.order.platform_order_id},
    )
    assert adding.status_code == 404 and appeal.cases.count() == 1
    assert (
        str(appeal.pk)
        not in agent_client.get(reverse("cases:appeal_list")).content.decode().split("appeals/")[1:]
    )
    # their case ids are ignored when building ours
    mine = no_show_case(store)
    agent_client.post(
        reverse("cases:appeal_new"), {"ids": [theirs.pk, mine.pk], "scenario": scenario(NO_SHOW).pk}
    )
    built = Appeal.objects.exclude(pk=appeal.pk).get()
    assert list(built.cases.values_list("pk", flat=True)) == [mine.pk]
    only_theirs = agent_client.get(reverse("cases:appeal_new"), {"ids": [theirs.pk]})
    assert only_theirs.status_code == 302
    appeal.refresh_from_db()
    assert appeal.decision == "" and not CustodyEntry.objects.filter(action="export").exists()


# --- the pickup-delay watchdog ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_pickup_overdue_case_asks_for_the_booking_proof_and_the_chat_at_once(agent_client, store):
    case = no_show_case(store)
    url = reverse("cases:detail", args=[case.pk])

    page = agent_client.get(url).content.decode()
    assert "data-evidence-wanted" in page and "Booking confirmation" in page and "Carrier chat log" in page

    add(case, pdf(), "booking.pdf", "booking_confirmation", agent_client.agent)
    add(case, b"carrier: not today\n", "chat.txt", "carrier_chat", agent_client.agent)
    assert "data-evidence-wanted" not in agent_client.get(url).content.decode()
    other = make_case(store=store, type="stalled_in_transit")
    assert (
        "data-evidence-wanted"
        not in agent_client.get(reverse("cases:detail", args=[other.pk])).content.decode()
    )


@pytest.mark.django_db
def test_a_late_pickup_is_the_carriers_fault_only_with_the_booking_proof(agent_client, store):
    case = no_show_case(store)
    url = reverse("cases:resolve", args=[case.pk])
    body = {"resolution": "no_action", "fault_party": "carrier", "note": ""}

    refused = agent_client.post(url, body, HTTP_HX_REQUEST="true")
    assert refused.status_code == 400 and "booking confirmation first" in refused.content.decode()
    case.refresh_from_db()
    assert case.status != "resolved" and case.fault_party != "carrier"

    add(case, pdf(), "booking.pdf", "booking_confirmation", agent_client.agent)
    assert agent_client.post(url, body, HTTP_HX_REQUEST="true").status_code == 200
    case.refresh_from_db()
    assert (case.status, case.fault_party) == ("resolved", "carrier")


@pytest.mark.django_db
def test_the_case_page_costs_the_same_queries_with_files_and_appeals(agent_client, store):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    case = no_show_case(store)
    url = reverse("cases:detail", args=[case.pk])

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert agent_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    add(case, jpeg(), "one.jpg", "cctv_still", agent_client.agent)
    appeal_create(store=store, scenario=scenario(NO_SHOW), cases=[case], actor=agent_client.agent)
    one = queries()
    for n in range(5):
        add(case, png(size=(10 + n, 10)), f"p{n}.png", "other", agent_client.agent)
        appeal_create(store=store, scenario=scenario("carrier-claim"), cases=[case], actor=agent_client.agent)
    assert queries() == one


# --- a store's own scenarios, in the admin -----------------------------------------------------------------


@pytest.fixture
def staff_supervisor_client(client, supervisor):
    supervisor.is_staff = True
    supervisor.save(update_fields=["is_staff"])
    client.force_login(supervisor)
    return client


def _scenario_form(store_id, **overrides):
    data = {"store": store_id, "platform": "tiktok_shop", "code": "tts-flood", "name": "Warehouse flooded",
            "description": "", "required": '["notice", "cctv_still", "booking_time"]', "optional": "[]",
            "window_days": "3", "window_from": "penalty", "is_active": "on"}  # fmt: skip
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_a_supervisor_adds_a_scenario_and_unknown_items_are_refused(staff_supervisor_client, store):
    url = "/admin/cases/appealscenario/add/"
    bad = staff_supervisor_client.post(url, _scenario_form(store.pk, required='["notice", "selfie"]'))
    assert bad.status_code == 200 and "Unknown: selfie" in bad.content.decode()
    wrong_platform = staff_supervisor_client.post(url, _scenario_form(store.pk, platform="shopee"))
    assert "The store sells on TikTok Shop" in wrong_platform.content.decode()
    assert not AppealScenario.objects.filter(store=store).exists()

    assert staff_supervisor_client.post(url, _scenario_form(store.pk)).status_code == 302
    own = AppealScenario.objects.get(store=store)
    assert own.required == ["notice", "cctv_still", "booking_time"] and own in scenarios_for_store(store)


@pytest.mark.django_db
def test_the_shipped_scenarios_are_read_only_to_a_supervisor(staff_supervisor_client, store):
    shipped = scenario(NO_SHOW)
    url = f"/admin/cases/appealscenario/{shipped.pk}/change/"
    assert staff_supervisor_client.get(url).status_code == 200
    assert (
        staff_supervisor_client.post(url, _scenario_form("", code=NO_SHOW, window_days="90")).status_code
        == 403
    )
    shipped.refresh_from_db()
    assert shipped.window_days == 7


@pytest.mark.django_db
def test_evidence_in_the_admin_is_read_only_and_opened_through_the_portal(admin_client, store, agent):
    evidence = add(no_show_case(store), png(), "a.png", "other", agent)
    page = admin_client.get(f"/admin/cases/evidence/{evidence.pk}/change/").content.decode()
    assert reverse("cases:evidence_file", args=[evidence.pk]) in page and "/media/" not in page
    assert admin_client.post(f"/admin/cases/evidence/{evidence.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/cases/custodyentry/").status_code == 200
    assert admin_client.get("/admin/cases/appeal/").status_code == 200


# --- adding the cases a penalty notice names ------------------------------------------------------------------


@pytest.mark.django_db
def test_cases_are_added_by_the_order_ids_and_tracking_numbers_of_a_penalty_notice(
    agent_client, store, other_store
):
    first = no_show_case(store)
    appeal = appeal_create(store=store, scenario=scenario(NO_SHOW), cases=[first], actor=agent_client.agent)
    by_order, by_parcel = no_show_case(store), no_show_case(store)
    # the same order also has a damaged case: the appeal takes the case of the type it covers
    from cases.services import case_raise

    case_raise(type="damaged", order=by_order.order, shipment=by_order.shipment, summary="Dented")
    theirs = no_show_case(other_store)
    notice = (
        f"{by_order.order.platform_order_id},\n{by_parcel.shipment.tracking_number} "
        f"{first.order.platform_order_id} 58099999999 {theirs.order.platform_order_id}"
    )

    response = agent_client.post(
        reverse("cases:appeal_cases_add", args=[appeal.pk]), {"references": notice}, follow=True
    )

    page = response.content.decode()
    assert "Added 2 cases." in page
    assert f"No case of this store for 2 of them: 58099999999, {theirs.order.platform_order_id}" in page
    assert sorted(appeal.cases.values_list("pk", flat=True)) == [first.pk, by_order.pk, by_parcel.pk]
    assert "3 cases" in page
    timeline = by_parcel.events.values_list("message", flat=True)
    assert any("Added to the appeal" in message for message in timeline)
    empty = agent_client.post(
        reverse("cases:appeal_cases_add", args=[appeal.pk]), {"references": " \n"}, follow=True
    )
    assert "Paste the order ids" in empty.content.decode()


@pytest.mark.django_db
def test_a_submitted_appeal_takes_no_more_cases(agent_client, store):
    from cases.appeals import appeal_outcome

    appeal = appeal_create(
        store=store, scenario=scenario(NO_SHOW), cases=[no_show_case(store)], actor=agent_client.agent
    )
    appeal_outcome(appeal=appeal, actor=agent_client.agent, submitted=True)
    late = no_show_case(store)
    response = agent_client.post(
        reverse("cases:appeal_cases_add", args=[appeal.pk]),
        {"references": late.order.platform_order_id},
        follow=True,
    )
    assert "was submitted to the platform" in response.content.decode()
    assert appeal.cases.count() == 1


@pytest.mark.django_db
def test_the_packets_messages_say_when_the_storefront_posted_each_to_the_buyer(store, agent):
    from cases.models import BuyerMessage, StorefrontEvent

    case = no_show_case(store)
    queued = timezone.now() - timedelta(hours=3)
    message = BuyerMessage.objects.create(
        case=case, channel="storefront", language="ms", recipient="", body="Maaf, kurier lewat.", status="sent",
        created_at=queued, sent_at=queued + timedelta(seconds=5),
    )  # fmt: skip
    StorefrontEvent.objects.create(
        store=store, case=case, kind="message.requested", payload={"message": {"id": message.pk}},
        dedupe_key=f"m-{message.pk}", created_at=queued, delivered_at=queued + timedelta(minutes=2),
    )  # fmt: skip
    appeal = appeal_create(store=store, scenario=scenario(NO_SHOW), cases=[case], actor=agent)

    packet = read_zip(b"".join(packet_stream(appeal, exporter=agent, now=timezone.now())))

    (row,) = csv.DictReader(io.StringIO(packet["system/messages.csv"].decode("utf-8-sig")))
    assert (
        row["body"] == "Maaf, kurier lewat." and row["sent_at"] == (queued + timedelta(seconds=5)).isoformat()
    )
    assert row["posted_to_buyer_at"] == (queued + timedelta(minutes=2)).isoformat()
