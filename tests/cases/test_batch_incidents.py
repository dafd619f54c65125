from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection, connections

from cases.batch import batch_evaluate, batches_sweep
from cases.models import Case, CaseEvent
from cases.services import case_raise
from tests.factories import (
    add_line,
    make_membership,
    make_order,
    make_shipment,
    make_sku,
    make_store,
    make_user,
)

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def serum(store):
    return make_sku(store=store, code="LUMI-VC-SER30", name="Lumi Vitamin C Glow Serum 30ml")


@pytest.fixture
def staff(store):
    for username, role in (
        ("sup", "supervisor"),
        ("adm", "admin"),
        ("agt", "agent"),
        ("noemail", "supervisor"),
    ):
        user = make_user(username)
        user.email = "" if username == "noemail" else f"{username}@shop.test"
        user.save()
        make_membership(user=user, store=store, role=role)


def _complaint(store, sku, *, at, lot="LOT-2611A", type="damaged", evaluate=True) -> Case:
    order = make_order(store=store, placed_at=at - timedelta(days=3))
    add_line(order=order, sku=sku, lot=lot)
    case, _ = case_raise(
        type=type, order=order, shipment=make_shipment(order=order), now=at, summary="Damaged"
    )
    if evaluate:
        batch_evaluate(case=case, now=at)
    return case


def _incidents():
    return Case.objects.filter(type="quality_batch")


@pytest.mark.django_db
def test_the_tenth_complaint_within_24h_raises_one_incident_linking_all_ten_and_the_eleventh_joins_it(
    store, serum, staff, django_capture_on_commit_callbacks
):
    quiet_buyer = make_order(store=store, placed_at=T0 - timedelta(days=3), status="shipped")
    add_line(order=quiet_buyer, sku=serum, lot="LOT-2611A")
    with django_capture_on_commit_callbacks(execute=True):
        complaints = [_complaint(store, serum, at=T0 + i * 2 * HOUR) for i in range(9)]
    assert not _incidents().exists()
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        tenth = _complaint(store, serum, at=T0 + 23 * HOUR)
    complaints.append(tenth)

    incident = _incidents().get()
    assert (incident.order, incident.sku, incident.lot, incident.priority) == (None, serum, "LOT-2611A", 40)
    assert set(incident.children.values_list("pk", flat=True)) == {c.pk for c in complaints}
    assert incident.facts["complaints"] == 10
    assert incident.facts["buyers_count"] == 11
    assert {b["order_id"] for b in incident.facts["buyers"]} == {c.order_id for c in complaints} | {
        quiet_buyer.pk
    }
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == ["adm@shop.test", "sup@shop.test"]
    assert "LOT-2611A" in mail.outbox[0].subject
    assert CaseEvent.objects.filter(case=incident, kind="raised").count() == 1
    assert CaseEvent.objects.filter(case=tenth, kind="updated", data__parent_id=incident.pk).exists()

    with django_capture_on_commit_callbacks(execute=True):
        eleventh = _complaint(store, serum, at=T0 + 30 * HOUR)

    assert _incidents().count() == 1
    eleventh.refresh_from_db()
    assert eleventh.parent_id == incident.pk
    incident.refresh_from_db()
    assert incident.children.count() == 11
    assert incident.facts["complaints"] == 11
    update = CaseEvent.objects.filter(case=incident, kind="updated").latest("id")
    assert update.data["complaints"] == {"from": 10, "to": 11}
    assert len(mail.outbox) == 1  # the incident was announced once


@pytest.mark.django_db
def test_nine_complaints_raise_nothing(store, serum, staff):
    for i in range(9):
        _complaint(store, serum, at=T0 + i * HOUR)

    assert batches_sweep(store=store, now=T0 + 9 * HOUR).raised == 0
    assert not _incidents().exists()
    assert not Case.objects.filter(parent__isnull=False).exists()


@pytest.mark.django_db
def test_complaints_outside_the_window_do_not_count(store, serum, staff):
    for i in range(5):
        _complaint(store, serum, at=T0 + i * HOUR)
    for i in range(5):
        _complaint(store, serum, at=T0 + 25 * HOUR + i * HOUR)

    assert not _incidents().exists()


@pytest.mark.django_db
def test_different_lots_are_different_batches(store, serum, staff):
    for i in range(5):
        _complaint(store, serum, at=T0 + i * HOUR, lot="LOT-2609C")
        _complaint(store, serum, at=T0 + i * HOUR, lot="LOT-2611A")
    assert not _incidents().exists()

    for i in range(5):
        _complaint(store, serum, at=T0 + 6 * HOUR + i * HOUR, lot="LOT-2609C")
        _complaint(store, serum, at=T0 + 6 * HOUR + i * HOUR, lot="LOT-2611A")

    incidents = {c.lot: c for c in _incidents()}
    assert set(incidents) == {"LOT-2609C", "LOT-2611A"}
    for lot, incident in incidents.items():
        assert incident.children.count() == 10
        assert set(incident.children.values_list("order__lines__lot", flat=True)) == {lot}


@pytest.mark.django_db
def test_other_case_types_are_not_complaints(store, serum, staff):
    cases = [_complaint(store, serum, at=T0 + i * HOUR, type="stalled_in_transit") for i in range(10)]

    assert batch_evaluate(case=cases[-1], now=T0 + 10 * HOUR) is None
    assert not _incidents().exists()


@pytest.mark.django_db
def test_the_sweep_opens_the_incident_the_engine_missed_and_a_second_sweep_changes_nothing(
    store, serum, staff, django_capture_on_commit_callbacks
):
    complaints = [_complaint(store, serum, at=T0 + i * HOUR, evaluate=False) for i in range(10)]

    with django_capture_on_commit_callbacks(execute=True):
        first = batches_sweep(store=store, now=T0 + 12 * HOUR)
    events = CaseEvent.objects.count()
    again = batches_sweep(store=store, now=T0 + 13 * HOUR)

    assert first.raised == 1
    assert set(_incidents().get().children.values_list("pk", flat=True)) == {c.pk for c in complaints}
    assert len(mail.outbox) == 1
    assert (again.raised, again.updated) == (0, 0)
    assert CaseEvent.objects.count() == events


@pytest.mark.django_db
def test_a_resolved_incidents_own_stragglers_do_not_open_a_new_one(store, serum, staff):
    for i in range(10):
        _complaint(store, serum, at=T0 + i * HOUR)
    _incidents().update(status="resolved", resolution="no_action", resolved_at=T0 + 11 * HOUR)

    late = _complaint(store, serum, at=T0 + 12 * HOUR)

    assert _incidents().count() == 1
    late.refresh_from_db()
    assert late.parent_id is None


@pytest.mark.django_db
def test_an_incident_opens_without_email_when_nobody_can_be_notified(
    store, serum, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(10):
            _complaint(store, serum, at=T0 + i * HOUR)

    assert _incidents().count() == 1
    assert mail.outbox == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrency needs PostgreSQL")
def test_racing_workers_open_exactly_one_incident_and_send_one_email():
    store = make_store(code="race-batch")
    serum = make_sku(store=store, code="SER")
    supervisor = make_user("race-sup")
    supervisor.email = "sup@shop.test"
    supervisor.save()
    make_membership(user=supervisor, store=store, role="supervisor")
    complaints = [_complaint(store, serum, at=T0 + i * HOUR, evaluate=False) for i in range(10)]
    workers = 6
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def evaluate(case: Case) -> None:
        try:
            barrier.wait()
            batch_evaluate(case=case, now=T0 + 10 * HOUR)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=evaluate, args=(case,)) for case in complaints[-workers:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    incident = _incidents().get()
    assert incident.children.count() == 10
    assert incident.facts["complaints"] == 10
    assert len(mail.outbox) == 1
