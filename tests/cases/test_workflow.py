from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied

from cases.choices import CaseEventKind, CaseStatus
from cases.models import Case, CaseEvent
from cases.services import case_raise
from cases.workflow import CaseWorkflowError, case_first_contact, case_note_add, case_transition
from tests.factories import make_case, make_membership, make_order, make_shipment, make_user

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
STATUSES = [s.value for s in CaseStatus]

# The workflow, written out independently of cases.workflow.TRANSITIONS.
ALLOWED = {
    ("new", "in_progress"), ("new", "waiting_buyer"), ("new", "waiting_carrier"),
    ("new", "waiting_platform"), ("new", "resolved"),
    ("in_progress", "waiting_buyer"), ("in_progress", "waiting_carrier"),
    ("in_progress", "waiting_platform"), ("in_progress", "resolved"),
    ("waiting_buyer", "in_progress"), ("waiting_buyer", "resolved"),
    ("waiting_buyer", "waiting_carrier"), ("waiting_buyer", "waiting_platform"),
    ("waiting_carrier", "in_progress"), ("waiting_carrier", "resolved"),
    ("waiting_carrier", "waiting_buyer"), ("waiting_carrier", "waiting_platform"),
    ("waiting_platform", "in_progress"), ("waiting_platform", "resolved"),
    ("waiting_platform", "waiting_buyer"), ("waiting_platform", "waiting_carrier"),
    ("resolved", "closed"), ("resolved", "in_progress"),
}  # fmt: skip
PAIRS = list(itertools.product(STATUSES, STATUSES))
REFUSED = [pair for pair in PAIRS if pair not in ALLOWED]


def _case_in(store, status: str) -> Case:
    case = make_case(store=store, now=T0)
    done = status in ("resolved", "closed")
    Case.objects.filter(pk=case.pk).update(
        status=status, resolved_at=T0 + HOUR if done else None, resolution="delivered" if done else ""
    )
    case.refresh_from_db()
    return case


def test_the_matrix_covers_every_pair():
    assert len(ALLOWED) == 23
    assert len(REFUSED) == 49 - 23


@pytest.mark.django_db
@pytest.mark.parametrize(("old", "new"), sorted(ALLOWED))
def test_every_allowed_transition_moves_the_case_and_writes_one_event(store, agent, old, new):
    case = _case_in(store, old)
    before = case.events.count()

    event = case_transition(
        case=case, to_status=new, actor=agent, resolution="reshipped" if new == "resolved" else None,
        note="checked with the hub", now=T0 + 2 * HOUR,
    )  # fmt: skip

    case.refresh_from_db()
    assert case.status == new
    assert case.events.count() == before + 1
    expected_kind = {"resolved": CaseEventKind.RESOLVED}.get(new, CaseEventKind.STATUS_CHANGED)
    if old == "resolved" and new == "in_progress":
        expected_kind = CaseEventKind.REOPENED
    assert event.kind == expected_kind
    assert event.actor == agent
    assert event.message == "checked with the hub"
    assert event.data["from"] == old and event.data["to"] == new
    if new == "resolved":
        assert case.resolution == "reshipped" and case.resolved_at == T0 + 2 * HOUR
    if expected_kind == CaseEventKind.REOPENED:
        assert case.resolution == "" and case.resolved_at is None
    assert (case.sla_paused_at is not None) == (new == "waiting_buyer")


@pytest.mark.django_db
@pytest.mark.parametrize(("old", "new"), REFUSED)
def test_every_other_transition_is_refused_with_a_clear_message_and_writes_nothing(store, agent, old, new):
    case = _case_in(store, old)
    before = (case.events.count(), Case.objects.filter(pk=case.pk).values().get())

    with pytest.raises(CaseWorkflowError) as refused:
        case_transition(
            case=case, to_status=new, actor=agent, resolution="reshipped" if new == "resolved" else None
        )

    message = str(refused.value)
    assert ("already" in message) if old == new else ("cannot become" in message and "Allowed:" in message)
    assert (case.events.count(), Case.objects.filter(pk=case.pk).values().get()) == before


@pytest.mark.django_db
def test_closed_is_final_and_says_so(store, agent):
    case = _case_in(store, "closed")
    with pytest.raises(CaseWorkflowError, match="none: it is final"):
        case_transition(case=case, to_status="in_progress", actor=agent)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("resolution", "message"),
    [
        (None, "Choose a resolution code"),
        ("", "Choose a resolution code"),
        ("teleported", "Unknown resolution"),
    ],
)
def test_resolving_needs_a_known_resolution_code(store, agent, resolution, message):
    case = make_case(store=store)
    with pytest.raises(CaseWorkflowError, match=message):
        case_transition(case=case, to_status="resolved", actor=agent, resolution=resolution)
    case.refresh_from_db()
    assert case.status == "new" and not case.events.exclude(kind="raised").exists()


@pytest.mark.django_db
def test_a_resolution_code_is_refused_when_not_resolving(store, agent):
    case = make_case(store=store)
    with pytest.raises(CaseWorkflowError, match="only given when resolving"):
        case_transition(case=case, to_status="in_progress", actor=agent, resolution="refunded")


@pytest.mark.django_db
def test_unknown_status_is_refused(store, agent):
    with pytest.raises(CaseWorkflowError, match="Unknown status"):
        case_transition(case=make_case(store=store), to_status="escalated", actor=agent)


@pytest.mark.django_db
def test_resolving_clears_needs_attention_and_updates_the_callers_instance(store, agent):
    case = make_case(store=store)
    Case.objects.filter(pk=case.pk).update(needs_attention=True, status="in_progress")
    case.refresh_from_db()

    case_transition(case=case, to_status="resolved", actor=agent, resolution="delivered")

    assert case.status == "resolved" and case.needs_attention is False  # no refresh needed
    case.refresh_from_db()
    assert case.needs_attention is False


@pytest.mark.django_db
def test_reopening_is_refused_when_a_new_case_already_covers_the_problem(store, agent):
    order = make_order(store=store)
    shipment = make_shipment(order=order)
    old, _ = case_raise(type="lost", order=order, shipment=shipment)
    case_transition(case=old, to_status="resolved", actor=agent, resolution="reshipped")
    case_raise(type="lost", order=order, shipment=shipment)

    with pytest.raises(CaseWorkflowError, match="Another open case"):
        case_transition(case=old, to_status="in_progress", actor=agent)
    old.refresh_from_db()
    assert old.status == "resolved"
    assert not old.events.filter(kind="reopened").exists()


# --- SLA clocks -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_waiting_on_the_buyer_pauses_the_sla_and_resuming_pushes_every_deadline(store, agent):
    case = make_case(store=store, now=T0)
    assert case.first_contact_due_at == T0 + 24 * HOUR
    assert case.resolution_due_at == T0 + 72 * HOUR
    assert case.due_at == case.first_contact_due_at

    with time_machine.travel(T0 + 2 * HOUR, tick=False):
        case_transition(case=case, to_status="waiting_buyer", actor=agent)
    assert case.sla_paused_at == T0 + 2 * HOUR
    with time_machine.travel(T0 + 40 * HOUR, tick=False):  # past the original first-contact deadline
        assert not case.is_overdue  # paused clocks are never overdue

    with time_machine.travel(T0 + 7 * HOUR, tick=False):
        case_transition(case=case, to_status="in_progress", actor=agent)

    case.refresh_from_db()
    assert case.sla_paused_at is None
    assert case.first_contact_due_at == T0 + 29 * HOUR  # paused 5 h
    assert case.resolution_due_at == T0 + 77 * HOUR
    assert case.due_at == T0 + 29 * HOUR  # still waiting for first contact


@pytest.mark.django_db
def test_after_first_contact_the_due_time_is_the_pushed_resolution_deadline(store, agent):
    case = make_case(store=store, now=T0)
    fields = case_first_contact(case, now=T0 + HOUR)
    case.save(update_fields=fields)
    assert case.due_at == T0 + 72 * HOUR

    with time_machine.travel(T0 + 10 * HOUR, tick=False):
        case_transition(case=case, to_status="waiting_buyer", actor=agent)
    with time_machine.travel(T0 + 22 * HOUR, tick=False):
        case_transition(case=case, to_status="waiting_carrier", actor=agent)  # leaving also resumes

    case.refresh_from_db()
    assert case.sla_paused_at is None
    assert case.resolution_due_at == T0 + 84 * HOUR
    assert case.due_at == T0 + 84 * HOUR


@pytest.mark.django_db
def test_two_buyer_waits_add_up(store, agent):
    case = make_case(store=store, now=T0)
    for start, end in [(1, 3), (5, 9)]:
        case_transition(case=case, to_status="waiting_buyer", actor=agent, now=T0 + start * HOUR)
        case_transition(case=case, to_status="in_progress", actor=agent, now=T0 + end * HOUR)
    case.refresh_from_db()
    assert case.first_contact_due_at == T0 + (24 + 6) * HOUR
    assert case.resolution_due_at == T0 + (72 + 6) * HOUR


@pytest.mark.django_db
def test_resolving_while_waiting_on_the_buyer_closes_the_pause(store, agent):
    case = make_case(store=store, now=T0)
    case_transition(case=case, to_status="waiting_buyer", actor=agent, now=T0 + HOUR)
    case_transition(
        case=case, to_status="resolved", actor=agent, resolution="buyer_waited", now=T0 + 4 * HOUR
    )
    case.refresh_from_db()
    assert case.sla_paused_at is None
    assert case.resolution_due_at == T0 + 75 * HOUR


# --- who may act ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_agent_of_another_store_is_refused_and_nothing_is_written(store, other_store):
    outsider = make_user("bob")
    make_membership(user=outsider, store=other_store, role="supervisor")
    case = make_case(store=store)

    with pytest.raises(PermissionDenied):
        case_transition(case=case, to_status="in_progress", actor=outsider)
    with pytest.raises(PermissionDenied):
        case_note_add(case=case, actor=outsider, text="hello")
    case.refresh_from_db()
    assert case.status == "new"
    assert list(case.events.values_list("kind", flat=True)) == ["raised"]


@pytest.mark.django_db
def test_a_user_without_any_store_is_refused(store):
    with pytest.raises(PermissionDenied):
        case_transition(case=make_case(store=store), to_status="in_progress", actor=make_user("nobody"))


# --- notes ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_note_lands_on_the_timeline(store, agent):
    case = make_case(store=store)
    event = case_note_add(case=case, actor=agent, text="  Buyer called, will wait.  ")
    assert event.kind == "note" and event.message == "Buyer called, will wait." and event.actor == agent


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_an_empty_note_is_refused(store, agent, text):
    case = make_case(store=store)
    with pytest.raises(CaseWorkflowError, match="Write something"):
        case_note_add(case=case, actor=agent, text=text)
    assert not CaseEvent.objects.filter(kind="note").exists()
