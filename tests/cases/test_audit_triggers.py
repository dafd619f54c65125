"""The audit tables hold in the database itself: on PostgreSQL, triggers (django-pgtrigger) refuse every UPDATE
and DELETE of the case timeline, the tracking events and the custody log, however it is sent (raw SQL, a
queryset, a model instance), and hold the compensation ledger to its rules (never deleted; terms fixed past
`proposed`; status moves only forward; a settled row final) while the services' own moves go through.
SQLite has no such triggers: the tests of the triggers skip there; the ORM-level refusals run on both."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pgtrigger
import pytest
from django.contrib.auth import get_user_model
from django.db import ProgrammingError, connection, transaction
from django.db.models import ProtectedError

from cases.choices import CustodyAction
from cases.compensation import (
    Proposal,
    Result,
    compensation_approve,
    compensation_cancel,
    compensation_propose,
    compensation_reject,
    compensation_result,
    compensation_taken,
)
from cases.evidence import evidence_add, evidence_tombstone
from cases.models import CaseEvent, Compensation, CustodyEntry
from cases.services import case_raise
from cases.workflow import case_note_add, case_transition
from tests.evidence_files import png
from tests.factories import make_case, make_membership, make_order, make_shipment, make_user
from tracking.models import TrackingEvent
from tracking.services import EventData, events_ingest

T0 = datetime(2026, 11, 19, 1, 0, tzinfo=UTC)

postgres_only = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="django-pgtrigger's triggers are PostgreSQL's"
    ),
]


def on_postgres(test):
    for mark in postgres_only:
        test = mark(test)
    return test


@contextlib.contextmanager
def refused(match: str = "refused on"):
    """The statement inside fails with the trigger's error; its savepoint is rolled back, so the test's
    transaction goes on."""
    with pytest.raises(ProgrammingError, match=match), transaction.atomic():
        yield


@pytest.fixture
def people(store):
    users = {}
    for name, role in (("ann", "agent"), ("sue", "supervisor")):
        users[name] = make_user(name)
        make_membership(user=users[name], store=store, role=role)
    return users


def _parcel_with_events(store):
    shipment = make_shipment(order=make_order(store=store))
    events_ingest(
        shipment=shipment,
        events=[
            EventData(checkpoint_at=T0, tag="InTransit", subtag="InTransit_002", source="aftership"),
            EventData(checkpoint_at=T0 + timedelta(hours=5), tag="InTransit", subtag="InTransit_001", source="aftership"),
        ],
    )  # fmt: skip
    return shipment


def _case_event(store, people) -> CaseEvent:
    return case_note_add(case=make_case(store=store), actor=people["ann"], text="Called the hub.")


def _tracking_event(store, people) -> TrackingEvent:
    return _parcel_with_events(store).events.order_by("checkpoint_at").first()


def _custody_entry(store, people) -> CustodyEntry:
    evidence = evidence_add(
        case=make_case(store=store),
        upload=io.BytesIO(png()),
        name="label.png",
        kind="other",
        actor=people["ann"],
    )
    return evidence.custody.get()


# (row maker, a text field to try to change, its table's words in the error)
APPEND_ONLY = {
    "case timeline": (_case_event, "message", "cases_caseevent: the case timeline is append-only"),
    "tracking events": (
        _tracking_event,
        "raw_text",
        "tracking_trackingevent: the tracking history is append-only",
    ),
    "custody log": (_custody_entry, "detail", "cases_custodyentry: the custody log is append-only"),
}


# --- append-only: the case timeline, tracking events, the custody log -------------------------------------


@on_postgres
@pytest.mark.django_db
@pytest.mark.parametrize("table", APPEND_ONLY)
def test_an_audit_row_refuses_update_and_delete_from_raw_sql_and_the_orm(store, people, table):
    make, field, words = APPEND_ONLY[table]
    row = make(store, people)
    model, before = type(row), getattr(row, field)
    db_table, column = model._meta.db_table, model._meta.get_field(field).column

    with refused(f"UPDATE refused on {words}"), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {db_table} SET {column} = 'rewritten' WHERE id = %s", [row.pk])  # noqa: S608
    with refused(f"DELETE refused on {words}"), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {db_table} WHERE id = %s", [row.pk])  # noqa: S608
    with refused(f"UPDATE refused on {words}"):
        model.objects.filter(pk=row.pk).update(**{field: "rewritten"})
    with refused(f"DELETE refused on {words}"):
        model.objects.filter(pk=row.pk).delete()
    setattr(row, field, "rewritten")
    with refused(f"UPDATE refused on {words}"):
        row.save()
    with refused(f"UPDATE refused on {words}"):
        row.save(update_fields=[field])
    with refused(f"DELETE refused on {words}"):
        row.delete()

    row.refresh_from_db()
    assert getattr(row, field) == before


@on_postgres
@pytest.mark.django_db
def test_a_statement_that_matches_no_row_and_truncate_still_work(store, people):
    event = _case_event(store, people)
    assert CaseEvent.objects.filter(pk=event.pk + 10_000).update(message="x") == 0
    assert CaseEvent.objects.filter(pk=event.pk + 10_000).delete()[0] == 0
    with connection.cursor() as cursor:  # how the test runner's flush and the benches empty tables
        cursor.execute(
            "SET CONSTRAINTS ALL IMMEDIATE"
        )  # no foreign key check left pending: TRUNCATE needs that
        cursor.execute("TRUNCATE cases_caseevent, cases_custodyentry, tracking_trackingevent CASCADE")
    assert not CaseEvent.objects.exists()


@on_postgres
@pytest.mark.django_db
def test_every_audit_trigger_is_installed_by_the_migrations():
    installed = {
        f"{model._meta.label}:{trigger.name}": trigger.get_installation_status(model)[0]
        for model, trigger in pgtrigger.registered()
    }
    assert installed == {
        "cases.CaseEvent:case_event_append_only": "INSTALLED",
        "tracking.TrackingEvent:tracking_event_append_only": "INSTALLED",
        "cases.CustodyEntry:custody_entry_append_only": "INSTALLED",
        "cases.Compensation:compensation_never_deleted": "INSTALLED",
        "cases.Compensation:compensation_terms_fixed": "INSTALLED",
        "cases.Compensation:compensation_status_moves": "INSTALLED",
        "cases.Compensation:compensation_settled_final": "INSTALLED",
    }


@pytest.mark.django_db
def test_a_case_or_parcel_with_history_is_not_deleted_on_any_database(store, people):
    """PROTECT: the ORM refuses before the database has to (and on SQLite, which has no triggers)."""
    case = _case_event(store, people).case
    with pytest.raises(ProtectedError):
        case.delete()
    shipment = _parcel_with_events(store)
    with pytest.raises(ProtectedError):
        shipment.delete()
    assert case.events.count() == 2 and shipment.events.count() == 2  # raised + note; two checkpoints


# --- the normal flows still write what they write -----------------------------------------------------------


@pytest.mark.django_db
def test_raising_working_and_ingesting_still_append_their_rows(store, people):
    case = make_case(store=store)
    case_note_add(case=case, actor=people["ann"], text="Called the hub.")
    case_transition(case=case, to_status="in_progress", actor=people["ann"])
    again, created = case_raise(type=case.type, order=case.order, shipment=case.shipment, summary="again")
    assert again.pk == case.pk and not created
    assert case.events.count() >= 3

    shipment = _parcel_with_events(store)
    events_ingest(  # the same checkpoint again: ON CONFLICT DO NOTHING, no update
        shipment=shipment,
        events=[EventData(checkpoint_at=T0, tag="InTransit", subtag="InTransit_002", source="aftership")],
    )
    assert shipment.events.count() == 2

    evidence = evidence_add(
        case=case, upload=io.BytesIO(png()), name="label.png", kind="other", actor=people["ann"]
    )
    evidence_tombstone(evidence=evidence, actor=people["sue"], reason="Wrong parcel's label")
    assert list(evidence.custody.values_list("action", flat=True)) == [
        CustodyAction.UPLOAD,
        CustodyAction.TOMBSTONE,
    ]


# --- the compensation ledger ---------------------------------------------------------------------------------


def _proposal(store, people, *, key="k1", actor="ann", kind="partial_refund", amount="20.00"):
    order = make_order(store=store, amount="120.00")
    case, _ = case_raise(type="lost", order=order, shipment=make_shipment(order=order), summary="x")
    compensation, _ = compensation_propose(
        case=case,
        proposal=Proposal(kind=kind, amount=Decimal(amount)),
        actor=people[actor],
        idempotency_key=key,
    )
    return compensation


@pytest.mark.django_db
def test_the_services_move_a_compensation_through_every_status(store, people):
    """On both databases; on PostgreSQL under the ledger's triggers."""
    paid = _proposal(store, people, key="paid", actor="sue")
    assert paid.status == "approved"
    assert compensation_taken(compensation_id=paid.pk, store_id=store.pk)
    paid, _ = compensation_result(compensation=paid, result=Result(executed=True, reference="R-1"))
    assert paid.status == "executed"

    refused_by_platform = _proposal(store, people, key="failed", actor="sue")
    refused_by_platform, _ = compensation_result(
        compensation=refused_by_platform, result=Result(executed=False, reason="Order closed")
    )
    assert refused_by_platform.status == "failed"

    proposed = _proposal(store, people, key="big", amount="110.00")  # over the agent's limit: waits
    assert proposed.status == "proposed"
    assert compensation_approve(compensation=proposed, actor=people["sue"]).status == "approved"
    assert (
        compensation_cancel(compensation=proposed, actor=people["sue"], reason="Buyer waits").status
        == "cancelled"
    )

    rejected = _proposal(store, people, key="no", amount="110.00")
    assert (
        compensation_reject(compensation=rejected, actor=people["sue"], reason="Too much").status
        == "rejected"
    )

    ledger = dict(Compensation.objects.values_list("idempotency_key", "status"))
    assert ledger == {"paid": "executed", "failed": "failed", "big": "cancelled", "no": "rejected"}


@on_postgres
@pytest.mark.django_db
def test_a_compensation_is_never_deleted(store, people):
    for compensation in (
        _proposal(store, people, key="p", amount="110.00"),
        _proposal(store, people, key="a", actor="sue"),
    ):
        with refused("DELETE refused on cases_compensation: the compensation ledger is never deleted from"):
            compensation.delete()
        with refused("never deleted from"):
            Compensation.objects.filter(pk=compensation.pk).delete()
        with refused("never deleted from"), connection.cursor() as cursor:
            cursor.execute("DELETE FROM cases_compensation WHERE id = %s", [compensation.pk])
    assert Compensation.objects.count() == 2


@on_postgres
@pytest.mark.django_db
def test_an_approved_compensation_keeps_its_terms(store, people):
    approved = _proposal(store, people, actor="sue")
    words = "UPDATE refused on cases_compensation: a compensation past proposed keeps its terms"

    with refused(words):
        Compensation.objects.filter(pk=approved.pk).update(amount=Decimal("99.00"))
    with refused(words), connection.cursor() as cursor:
        cursor.execute("UPDATE cases_compensation SET currency = 'USD' WHERE id = %s", [approved.pk])
    approved.proposed_at, approved.proposed_by = T0, people["sue"]
    with refused(words):
        approved.save(update_fields=["proposed_at", "proposed_by"])
    approved.refresh_from_db()
    approved.approved_by = people["ann"]
    with refused(words):
        approved.save()

    approved.refresh_from_db()
    assert (approved.amount, approved.approved_by) == (Decimal("20.00"), people["sue"])
    approved.save()  # a save that changes nothing is no change
    assert compensation_taken(compensation_id=approved.pk, store_id=store.pk)  # status moves still go


@on_postgres
@pytest.mark.django_db
def test_a_proposal_is_not_yet_fixed(store, people):
    """The design fixes the terms once approved; until then they are a proposal."""
    proposed = _proposal(store, people, amount="110.00")
    assert Compensation.objects.filter(pk=proposed.pk).update(note="Buyer asked for it in two parts") == 1


@on_postgres
@pytest.mark.django_db
def test_a_compensation_status_only_moves_forward(store, people):
    approved = _proposal(store, people, actor="sue")
    with refused('Invalid transition of field "status" from "approved" to "proposed"'):
        Compensation.objects.filter(pk=approved.pk).update(status="proposed")
    proposed = _proposal(store, people, key="k2", amount="110.00")
    with (
        refused('Invalid transition of field "status" from "proposed" to "executed"'),
        connection.cursor() as c,
    ):
        c.execute(
            "UPDATE cases_compensation SET status = 'executed', executed_at = now() WHERE id = %s",
            [proposed.pk],
        )
    assert dict(Compensation.objects.values_list("pk", "status")) == {
        approved.pk: "approved",
        proposed.pk: "proposed",
    }


@on_postgres
@pytest.mark.django_db
def test_a_settled_compensation_never_changes(store, people):
    executed = _proposal(store, people, actor="sue")
    executed, _ = compensation_result(compensation=executed, result=Result(executed=True, reference="R-1"))
    rejected = _proposal(store, people, key="k2", amount="110.00")
    rejected = compensation_reject(compensation=rejected, actor=people["sue"], reason="Too much")
    words = "UPDATE refused on cases_compensation: a settled compensation never changes"

    with refused(words):
        Compensation.objects.filter(pk=executed.pk).update(platform_reference="R-2")
    with refused(words), connection.cursor() as cursor:
        cursor.execute("UPDATE cases_compensation SET decision_reason = '' WHERE id = %s", [rejected.pk])
    executed.failure_reason = "made up"
    with refused(words):
        executed.save(update_fields=["failure_reason"])

    _, applied = compensation_result(compensation=executed, result=Result(executed=True, reference="R-1"))
    assert not applied  # the same result again is answered, not written
    executed.refresh_from_db()
    assert (executed.status, executed.platform_reference, executed.failure_reason) == ("executed", "R-1", "")


# --- the admin --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_offers_no_delete_of_audit_rows_and_explains_a_protected_case(client, store, people):
    root = get_user_model().objects.create_superuser("root", password="pw-for-tests-123")
    client.force_login(root)
    event = _case_event(store, people)
    compensation = _proposal(store, people, actor="sue")
    rows = {
        "cases/caseevent": event.pk,
        "cases/compensation": compensation.pk,
        "cases/custodyentry": _custody_entry(store, people).pk,
        "tracking/trackingevent": _tracking_event(store, people).pk,
    }
    for path, pk in rows.items():
        assert client.get(f"/admin/{path}/{pk}/delete/").status_code == 403, path
        assert client.post(f"/admin/{path}/{pk}/delete/", {"post": "yes"}).status_code == 403, path

    page = client.get(f"/admin/cases/case/{event.case_id}/delete/")
    assert page.status_code == 200 and "Cannot delete case" in page.content.decode()
    client.post(f"/admin/cases/case/{event.case_id}/delete/", {"post": "yes"})
    assert CaseEvent.objects.filter(pk=event.pk).exists()
