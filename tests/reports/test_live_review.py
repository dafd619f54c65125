"""The post-live review: written by the schedule at +48 h (not before, once, one email to the store's
supervisors and admins) and by the command; its figures against the hand-built session of test_live; its
recommendations only when the numbers support them; the page, the PDF and the comparison."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from io import StringIO
from smtplib import SMTPException

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import translation

from cases.models import Compensation, Complaint
from cases.reporting import review as review_module
from cases.reporting.models import LiveReview, ParcelDay
from cases.reporting.review import live_review_write, review_figures, review_recommendations
from cases.reporting.tasks import live_reviews_due
from cases.services import case_raise
from cases.texts import Text
from tests.concurrency import at_once
from tests.factories import add_line, make_membership, make_order, make_shipment, make_sku, make_user
from tests.reports.test_live import START, build_session
from tracking.models import LiveSession

DUE = START + timedelta(hours=2) + timedelta(hours=48)  # the session ended at START + 2 h
FIRST_DAY = date(2026, 3, 9)  # START is 14:00 on 9 March in Kuala Lumpur


@pytest.fixture
def people(store, other_store):
    """Who is told: the store's supervisor and admin with an address; not its agent, not a supervisor without
    an address, not the other store's supervisor."""
    users = {}
    for name, role, shop, email in [
        ("sue", "supervisor", store, "sue@example.com"),
        ("ada", "admin", store, "ada@example.com"),
        ("al", "agent", store, "al@example.com"),
        ("nomail", "supervisor", store, ""),
        ("otto", "supervisor", other_store, "otto@example.com"),
    ]:
        user = make_user(name)
        user.email = email
        user.save(update_fields=["email"])
        make_membership(user=user, store=shop, role=role)
        users[name] = user
    return users


def _session(built):
    return LiveSession.objects.select_related("store").get(pk=built.session.pk)


# --- written by the schedule and by the command --------------------------------------------------------


@pytest.mark.django_db
def test_the_schedule_writes_the_review_48_hours_after_the_end_once_and_emails_the_supervisors_once(
    store, people
):
    built = build_session(store)

    assert live_reviews_due(now=DUE - timedelta(minutes=1)) == {"written": 0, "notified": 0}
    assert not LiveReview.objects.exists()

    assert live_reviews_due(now=DUE) == {"written": 1, "notified": 1}
    review = LiveReview.objects.get(live_session=built.session)
    assert review.written_by is None and review.written_at == DUE and review.notified_at == DUE
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == ["ada@example.com", "sue@example.com"]
    assert "Payday live" in message.subject
    assert f"http://127.0.0.1:8000/reports/live/{built.session.pk}/review/" in message.body

    assert live_reviews_due(now=DUE + timedelta(minutes=15)) == {"written": 0, "notified": 0}
    assert LiveReview.objects.count() == 1 and len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_failed_email_is_sent_by_the_next_run_and_only_then(store, people, monkeypatch):
    build_session(store)

    def down(**kwargs):
        raise SMTPException("mail server down")

    monkeypatch.setattr(review_module, "send_mail", down)
    with pytest.raises(SMTPException):
        live_reviews_due(now=DUE)
    review = LiveReview.objects.get()
    assert review.notified_at is None  # written, not yet told

    monkeypatch.undo()
    assert live_reviews_due(now=DUE + timedelta(minutes=15)) == {"written": 0, "notified": 1}
    assert len(mail.outbox) == 1
    assert live_reviews_due(now=DUE + timedelta(minutes=30)) == {"written": 0, "notified": 0}


@pytest.mark.django_db
def test_a_session_still_live_or_ended_less_than_48_hours_ago_gets_no_review(store):
    LiveSession.objects.create(store=store, title="On air", host="Mei", started_at=DUE - timedelta(hours=1))
    LiveSession.objects.create(
        store=store, title="Just ended", host="Mei", started_at=DUE - timedelta(hours=50),
        ended_at=DUE - timedelta(hours=47),
    )  # fmt: skip

    assert live_reviews_due(now=DUE)["written"] == 0


@pytest.mark.django_db
def test_the_command_writes_one_now_and_replaces_the_older_one(store, people):
    built = build_session(store)
    out = StringIO()

    call_command("live_review", str(built.session.pk), stdout=out)
    first = LiveReview.objects.get()
    assert "Payday live" in out.getvalue() and "14 orders" in out.getvalue()
    assert first.figures["orders"]["count"] == 14

    add_line(
        order=make_order(store=store, live_session=built.session, placed_at=START), sku=make_sku(store=store)
    )
    call_command("live_review", str(built.session.pk), stdout=StringIO())
    again = LiveReview.objects.get()
    assert again.pk == first.pk and again.figures["orders"]["count"] == 15
    assert again.written_at >= first.written_at
    assert mail.outbox == []  # the command writes; the schedule tells (once)

    with pytest.raises(CommandError, match="No live session with id 999999"):
        call_command("live_review", "999999")


@pytest.mark.django_db
def test_a_review_written_early_by_the_command_is_announced_once_and_not_rewritten(store, people):
    built = build_session(store)
    call_command("live_review", str(built.session.pk), stdout=StringIO())
    written_at = LiveReview.objects.get().written_at

    assert live_reviews_due(now=DUE) == {"written": 0, "notified": 1}
    assert LiveReview.objects.get().written_at == written_at
    assert len(mail.outbox) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_workers_write_one_review_and_send_one_email(store, people):
    if connection.vendor != "postgresql":
        pytest.skip("real concurrency needs PostgreSQL")
    build_session(store)

    results = at_once(*[lambda: live_reviews_due(now=DUE)] * 4)

    assert sum(r["written"] for r in results) == 1
    assert sum(r["notified"] for r in results) == 1
    assert LiveReview.objects.count() == 1 and len(mail.outbox) == 1


# --- the figures ---------------------------------------------------------------------------------------


def _add_money_and_complaints(built) -> None:
    store = built.session.store
    orders = built.orders
    base = {"store": store, "currency": "MYR", "proposed_at": START}
    executed = {"status": "executed", "approved_at": START, "executed_at": START}
    case_p1, case_s12 = built.cases["damaged_p1"], built.cases["oversold_s12"]
    Compensation.objects.create(**base, **executed, case=case_p1, order=orders["s1"], kind="coupon", amount="5.00",
                                idempotency_key="c1")  # fmt: skip
    Compensation.objects.create(**base, **executed, case=case_s12, order=orders["s12"], kind="full_refund",
                                amount="10.00", idempotency_key="c2")  # fmt: skip
    # Proposed (nothing paid yet) and failed: neither counts.
    Compensation.objects.create(**base, case=case_p1, order=orders["s1"], kind="coupon", amount="3.00",
                                idempotency_key="c3")  # fmt: skip
    Compensation.objects.create(**base, case=case_p1, order=orders["s1"], kind="coupon", amount="4.00",
                                status="failed", idempotency_key="c4")  # fmt: skip
    complaint = {"store": store, "channel": "chat", "text": "...", "received_at": START + timedelta(days=1)}
    Complaint.objects.create(**complaint, order=orders["s1"], category="quality", label="damaged")
    Complaint.objects.create(**complaint, order=orders["s2"], category="not_received")
    Complaint.objects.create(**complaint, order=orders["s3"])


@pytest.mark.django_db
def test_the_figures_match_the_hand_count(store, other_store):
    built = build_session(store)
    _add_money_and_complaints(built)
    # The store's usual, from the rollups: J&T 5 of 100 parcels in the 28 days before the session's first day.
    ParcelDay.objects.create(store=store, day=FIRST_DAY - timedelta(days=3), carrier="jtexpress-my", parcels=100,
                             exceptional=5)  # fmt: skip
    ParcelDay.objects.create(store=store, day=FIRST_DAY - timedelta(days=29), carrier="jtexpress-my", parcels=50,
                             exceptional=50)  # fmt: skip
    ParcelDay.objects.create(store=store, day=FIRST_DAY, carrier="jtexpress-my", parcels=50, exceptional=50)
    ParcelDay.objects.create(store=store, day=FIRST_DAY - timedelta(days=3), carrier="jtexpress-my",
                             case_type="lost", parcels=5, exceptional=0)  # fmt: skip
    ParcelDay.objects.create(store=other_store, day=FIRST_DAY - timedelta(days=3), carrier="flash-express",
                             parcels=10, exceptional=10)  # fmt: skip

    figures = review_figures(_session(built), now=DUE)

    assert figures["orders"] == {"count": 14, "cancelled": 1, "amount": "140.00"}
    oversold = figures["oversold"]
    assert oversold["orders"] == 2 and oversold["units"] == 3
    assert oversold["choices"] == {"wait": 0, "swap": 0, "refund": 1, "none": 1}
    assert [(s["sku"], s["allocation"], s["units"], s["over"]) for s in oversold["skus"]] == [
        ("SERUM", 10, 12, 2), ("MASK", None, 4, 1),
    ]  # fmt: skip
    # Booking (placing, for p4) to first scan: 2 h, 4 h 59 min, 26 h.
    assert figures["dispatch"] == {
        "parcels": 4, "scanned": 3, "median_hours": 5.0, "p90_hours": 21.8, "within_24h": 2,
        "within_24h_share": 0.5, "late_scanned": 1, "late_share": 0.25,
        "late_unshipped": 11,  # at +50 h every unshipped order is past its ship-by (placed + 48 h at most)
    }  # fmt: skip
    assert figures["usual_source"] == "rollup"
    carriers = {row["carrier"]: row for row in figures["carriers"]}
    assert (carriers["jtexpress-my"]["parcels"], carriers["jtexpress-my"]["exceptional"]) == (2, 2)
    assert (carriers["jtexpress-my"]["rate"], carriers["jtexpress-my"]["slow_pickup"]) == (1.0, 2)
    assert (carriers["jtexpress-my"]["usual_parcels"], carriers["jtexpress-my"]["usual_rate"]) == (100, 0.05)
    assert (carriers["flash-express"]["parcels"], carriers["flash-express"]["exceptional"]) == (2, 1)
    assert (carriers["flash-express"]["slow_pickup"], carriers["flash-express"]["usual_rate"]) == (0, None)
    assert figures["complaints"] == [
        {"category": "damaged", "count": 1}, {"category": "not_received", "count": 1},
        {"category": "other", "count": 1},
    ]  # fmt: skip
    assert figures["compensation"] == {
        "by_kind": [
            {"kind": "coupon", "currency": "MYR", "count": 1, "amount": "5.00"},
            {"kind": "full_refund", "currency": "MYR", "count": 1, "amount": "10.00"},
        ],
        "count": 2, "total": "15.00",
    }  # fmt: skip
    cases = built.cases
    assert figures["problems"] == [
        {"type": "oversold", "dimension": "sku", "key": "SERUM", "name": "Glow serum", "count": 2,
         "case_ids": [cases["oversold_s11"].pk, cases["oversold_s12"].pk]},
        {"type": "pickup_overdue", "dimension": "carrier", "key": "jtexpress-my", "name": "jtexpress-my", "count": 2,
         "case_ids": [cases["pickup_p2"].pk, cases["pickup_p3"].pk]},
        {"type": "damaged", "dimension": "carrier", "key": "flash-express", "name": "flash-express", "count": 1,
         "case_ids": [cases["damaged_p1"].pk]},
    ]  # fmt: skip


@pytest.mark.django_db
def test_without_rollup_rows_the_usual_is_counted_from_the_raw_parcels_of_the_28_days(store):
    built = build_session(store)
    noon = datetime.combine(FIRST_DAY, time(12), tzinfo=store.tzinfo)
    parcels = []
    for days_before in (1, 2, 27, 28):
        order = make_order(store=store, placed_at=noon - timedelta(days=days_before, hours=2))
        parcels.append(
            make_shipment(order=order, carrier="flash-express", booked_at=noon - timedelta(days=days_before))
        )
    case_raise(type="lost", order=parcels[0].order, shipment=parcels[0])
    outside = make_order(store=store, placed_at=noon - timedelta(days=30))
    case_raise(type="lost", order=outside, shipment=make_shipment(order=outside, carrier="flash-express",
                                                                  booked_at=noon - timedelta(days=29)))  # fmt: skip

    figures = review_figures(_session(built), now=DUE)

    assert figures["usual_source"] == "raw"
    flash = next(row for row in figures["carriers"] if row["carrier"] == "flash-express")
    assert (flash["usual_parcels"], flash["usual_exceptional"], flash["usual_rate"]) == (4, 1, 0.25)


# --- the recommendations -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_hand_built_session_only_supports_its_oversold_recommendations(store):
    built = build_session(store)

    review = live_review_write(session=built.session, now=DUE)

    assert [r["kind"] for r in review.recommendations] == ["oversold", "oversold"]
    first = review.recommendations[0]
    assert set(first) == {"kind", "msgid", "params"}  # a message id and its numbers, not a sentence
    assert first["params"] == {"units": 2, "sku": "Glow serum", "allocation": 10}
    assert str(Text.from_data(first)).startswith("Oversold 2 units of Glow serum past its allocation of 10")


def _figures(**overrides) -> dict:
    figures = {
        "session": {"ship_from": "Kuala Lumpur"},
        "damage_lanes": [],
        "oversold": {"skus": [], "choices": {"wait": 0, "swap": 0, "refund": 0, "none": 0}},
        "carriers": [],
        "dispatch": {"parcels": 0, "late_scanned": 0, "late_share": None},
    }
    figures.update(overrides)
    return figures


def _carrier(**fields) -> dict:
    row = {"carrier": "flash-express", "parcels": 100, "exceptional": 0, "rate": 0.0, "slow_pickup": 0,
           "slow_share": 0.0, "usual_rate": None}  # fmt: skip
    row.update(fields)
    return row


def test_nothing_is_recommended_when_nothing_passes_a_threshold():
    assert review_recommendations(_figures()) == []


def test_a_damaged_lane_is_recommended_from_three_parcels_and_five_percent():
    lane = {"carrier": "flash-express", "sku": "OIL", "name": "Olive oil 1L (glass)", "destination": "Penang",
            "parcels": 40, "damaged": 3}  # fmt: skip
    below_count = {**lane, "damaged": 2, "parcels": 10}  # 20 %, but two parcels
    below_rate = {**lane, "sku": "CAN", "damaged": 3, "parcels": 61}  # three parcels, 4.9 %

    found = review_recommendations(_figures(damage_lanes=[lane, below_count, below_rate]))

    assert [r["kind"] for r in found] == ["damage"]
    assert str(Text.from_data(found[0])) == (
        "Flash Express damaged 7.5% of parcels with Olive oil 1L (glass) on the Kuala Lumpur → Penang lane "
        "(3 of 40): change the packaging or the carrier."
    )


def test_slow_pickups_are_recommended_from_a_fifth_of_a_carriers_parcels():
    found = review_recommendations(_figures(carriers=[
        _carrier(carrier="flash-express", slow_pickup=42, slow_share=0.42),
        _carrier(carrier="jtexpress-my", slow_pickup=19, slow_share=0.19),
        _carrier(carrier="poslaju", parcels=9, slow_pickup=9, slow_share=1.0),  # too few parcels to say
    ]))  # fmt: skip

    assert [(r["kind"], r["params"]["carrier"]) for r in found] == [("slow_pickup", "flash-express")]
    assert str(Text.from_data(found[0])).startswith(
        "42% of Flash Express parcels were first scanned more than 24 h after booking (42 of 100)"
    )


def test_a_carrier_is_named_when_its_exceptions_run_well_above_its_usual():
    found = review_recommendations(_figures(carriers=[
        _carrier(carrier="flash-express", exceptional=9, rate=0.09, usual_rate=0.03),  # 3x and +6 points
        _carrier(carrier="jtexpress-my", exceptional=4, rate=0.04, usual_rate=0.03),  # not 1.5x
        _carrier(carrier="poslaju", exceptional=2, rate=0.02, usual_rate=0.005),  # 4x, +1.5 points only
        _carrier(carrier="citylink", exceptional=9, rate=0.09, usual_rate=None),  # no usual to compare to
    ]))  # fmt: skip

    assert [(r["kind"], r["params"]["carrier"]) for r in found] == [("carrier_exceptions", "flash-express")]
    assert "(9 of 100), against 3% usually" in str(Text.from_data(found[0]))


def test_late_dispatch_and_refund_heavy_answers_are_recommended_past_their_thresholds():
    figures = _figures(
        dispatch={"parcels": 50, "late_scanned": 2, "late_share": 0.04},
        oversold={"skus": [], "choices": {"wait": 1, "swap": 1, "refund": 3, "none": 7}},
    )

    assert sorted(r["kind"] for r in review_recommendations(figures)) == ["late_dispatch", "refunds"]
    figures["dispatch"] = {"parcels": 50, "late_scanned": 1, "late_share": 0.02}
    figures["oversold"]["choices"] = {"wait": 2, "swap": 1, "refund": 2, "none": 0}
    assert review_recommendations(figures) == []


@pytest.mark.django_db
def test_the_packaging_recommendation_is_drawn_from_damaged_cases_by_carrier_sku_and_destination(store):
    store.ship_from = "Kuala Lumpur"
    store.save(update_fields=["ship_from"])
    oil = make_sku(store=store, code="OIL", name="Olive oil (glass)")
    rice = make_sku(store=store, code="RICE", name="Rice 5kg")
    session = LiveSession.objects.create(store=store, title="Grain and oil", host="Mei", started_at=START,
                                         ended_at=START + timedelta(hours=2))  # fmt: skip
    for n in range(12):
        order = make_order(
            store=store, live_session=session, placed_at=START, province="Penang", city="George Town"
        )
        add_line(order=order, sku=oil if n < 10 else rice)
        parcel = make_shipment(order=order, carrier="flash-express", booked_at=START + timedelta(hours=1),
                               accepted_at=START + timedelta(hours=2))  # fmt: skip
        if n in (0, 1, 2, 10):
            case_raise(type="damaged", order=order, shipment=parcel)

    review = live_review_write(session=session, now=DUE)

    damage = [r for r in review.recommendations if r["kind"] == "damage"]
    assert len(damage) == 1  # oil: 3 of 10; rice: 1 of 2, too few to say
    assert damage[0]["params"] == {
        "carrier": "flash-express", "percent": 30, "sku": "Olive oil (glass)", "damaged": 3, "parcels": 10,
        "destination": "Penang", "origin": "Kuala Lumpur",
    }  # fmt: skip
    with translation.override("zh-hans"):
        assert Text.from_data(damage[0]).render()  # renders in another language (Chinese once translated)


# --- the pages -----------------------------------------------------------------------------------------


@pytest.fixture
def sue_client(client, people):
    client.force_login(people["sue"])
    return client


@pytest.mark.django_db
def test_the_review_page_shows_the_figures_recommendations_and_the_cases_behind_the_problems(
    sue_client, store
):
    built = build_session(store)
    live_review_write(session=built.session, now=DUE)

    response = sue_client.get(reverse("reports:live_review", args=[built.session.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Post-live review: Payday live" in body
    assert "Oversold 2 units of Glow serum past its allocation of 10" in body
    assert f'href="{reverse("cases:detail", args=[built.cases["pickup_p2"].pk])}"' in body
    assert 'data-key="dispatch.median">5.0 h<' in body
    assert reverse("reports:live_review_pdf", args=[built.session.pk]) in body


@pytest.mark.django_db
def test_before_it_is_written_the_review_page_says_when_it_will_be(sue_client, store):
    built = build_session(store)

    body = sue_client.get(reverse("reports:live_review", args=[built.session.pk])).content.decode()

    assert 'id="review-not-written"' in body and "2026-03-11 16:00" in body  # ended 16:00 local + 48 h
    assert sue_client.get(reverse("reports:live_review_pdf", args=[built.session.pk])).status_code == 404


def _cid_string(text: str) -> bytes:
    """`text` as reportlab writes it in a CID font (UCS-2 big-endian, unprintable bytes as octal escapes)."""
    return "".join(
        chr(b) if 32 <= b < 127 and chr(b) not in "()\\" else f"\\{b:03o}" for b in text.encode("utf-16-be")
    ).encode()


@pytest.mark.django_db
def test_the_pdf_is_a_pdf_with_the_title_in_english_and_in_chinese(sue_client, store):
    built = build_session(store)
    LiveSession.objects.filter(pk=built.session.pk).update(title="Payday live 发薪日直播")
    live_review_write(session=built.session, now=DUE)

    response = sue_client.get(reverse("reports:live_review_pdf", args=[built.session.pk]))

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert b"STSong-Light" in response.content
    assert _cid_string("Post-live review: Payday live 发薪日直播") in response.content

    LiveSession.objects.filter(pk=built.session.pk).update(title="Payday live")
    plain = sue_client.get(reverse("reports:live_review_pdf", args=[built.session.pk])).content
    assert plain.startswith(b"%PDF") and b"Post-live review: Payday live" in plain


@pytest.mark.django_db
def test_two_reviews_side_by_side(sue_client, store):
    first = build_session(store)
    second = build_session(store, start=START - timedelta(days=7))
    LiveSession.objects.filter(pk=second.session.pk).update(title="Last week")
    live_review_write(session=first.session, now=DUE)
    live_review_write(session=second.session, now=DUE)

    url = reverse("reports:live_compare") + f"?s={first.session.pk}&s={second.session.pk}"
    response = sue_client.get(url)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.index("Payday live") < body.index("Last week")
    assert body.count('data-session="') == 2
    assert '<th scope="row">Oversold orders</th><td class="num">2</td><td class="num">2</td>' in body


@pytest.mark.django_db
def test_the_comparison_refuses_one_session_and_hides_another_stores(sue_client, store, other_store):
    mine = build_session(store)
    theirs = build_session(other_store)
    live_review_write(session=mine.session, now=DUE)
    live_review_write(session=theirs.session, now=DUE)
    url = reverse("reports:live_compare")

    assert sue_client.get(f"{url}?s={mine.session.pk}").status_code == 400
    assert sue_client.get(f"{url}?s={mine.session.pk}&s=abc").status_code == 400
    assert sue_client.get(f"{url}?s={mine.session.pk}&s={theirs.session.pk}").status_code == 404


@pytest.mark.django_db
def test_agents_are_refused_the_review_and_its_pdf(agent_client, store):
    built = build_session(store)
    live_review_write(session=built.session, now=DUE)

    assert agent_client.get(reverse("reports:live_review", args=[built.session.pk])).status_code == 403
    assert agent_client.get(reverse("reports:live_review_pdf", args=[built.session.pk])).status_code == 403
    compare = reverse("reports:live_compare") + f"?s={built.session.pk}&s={built.session.pk}"
    assert agent_client.get(compare).status_code == 403


@pytest.mark.django_db
def test_the_review_page_reads_the_frozen_figures_in_a_fixed_number_of_queries(
    sue_client, store, django_assert_num_queries
):
    built = build_session(store)
    live_review_write(session=built.session, now=DUE)

    with django_assert_num_queries(5):  # session, user, membership, live session, review (by the schedule)
        sue_client.get(reverse("reports:live_review", args=[built.session.pk]))
