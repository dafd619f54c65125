from __future__ import annotations

import functools

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection

from cases.models import Case, CaseEvent
from cases.workflow import (
    BULK_LIMIT,
    NOT_FOUND,
    CaseWorkflowError,
    case_assign,
    case_claim,
    case_transition,
    cases_bulk_assign,
    cases_bulk_claim,
    cases_bulk_transition,
)
from portal.models import Membership
from portal.services import member_remove
from tests.concurrency import at_once
from tests.factories import make_case, make_membership, make_store, make_user


@pytest.fixture
def supervisor(store):
    user = make_user("sam")
    make_membership(user=user, store=store, role="supervisor")
    return user


@pytest.fixture
def colleague(store):
    user = make_user("carol")
    make_membership(user=user, store=store, role="agent")
    return user


def _kinds(case):
    return list(case.events.order_by("id").values_list("kind", flat=True))


@pytest.mark.django_db
def test_claiming_a_new_case_assigns_it_and_starts_work(store, agent):
    case = make_case(store=store)

    assert case_claim(case=case, actor=agent) is True

    case.refresh_from_db()
    assert case.assignee == agent and case.status == "in_progress"
    assert _kinds(case) == ["raised", "assigned", "status_changed"]
    assigned = case.events.get(kind="assigned")
    assert assigned.actor == agent and assigned.data["to"] == agent.pk and assigned.data["claimed"]


@pytest.mark.django_db
def test_claiming_your_own_case_again_changes_nothing(store, agent):
    case = make_case(store=store)
    case_claim(case=case, actor=agent)
    assert case_claim(case=case, actor=agent) is False
    assert case.events.filter(kind="assigned").count() == 1


@pytest.mark.django_db
def test_an_agent_cannot_claim_a_colleagues_case_but_a_supervisor_can_take_it_over(
    store, agent, colleague, supervisor
):
    case = make_case(store=store)
    case_claim(case=case, actor=colleague)

    with pytest.raises(CaseWorkflowError, match="already assigned to carol"):
        case_claim(case=case, actor=agent)
    assert case_claim(case=case, actor=supervisor) is True
    case.refresh_from_db()
    assert case.assignee == supervisor


@pytest.mark.django_db
def test_a_resolved_case_cannot_be_claimed(store, agent):
    case = make_case(store=store)
    Case.objects.filter(pk=case.pk).update(
        status="resolved", resolution="delivered", resolved_at=case.opened_at
    )
    with pytest.raises(CaseWorkflowError, match="reopen it"):
        case_claim(case=case, actor=agent)


@pytest.mark.django_db
def test_an_agent_of_another_store_cannot_claim(store, other_store):
    outsider = make_user("bob")
    make_membership(user=outsider, store=other_store)
    case = make_case(store=store)
    with pytest.raises(PermissionDenied):
        case_claim(case=case, actor=outsider)
    case.refresh_from_db()
    assert case.assignee is None


@pytest.mark.django_db
def test_only_supervisors_and_admins_assign(store, agent, colleague):
    case = make_case(store=store)
    with pytest.raises(PermissionDenied, match="Only supervisors"):
        case_assign(case=case, assignee=colleague, actor=agent)
    assert not case.events.filter(kind="assigned").exists()


@pytest.mark.django_db
def test_a_supervisor_assigns_to_a_member_and_can_unassign(store, supervisor, colleague):
    case = make_case(store=store)

    assert case_assign(case=case, assignee=colleague, actor=supervisor) is True
    assert case.assignee_id == colleague.pk
    assert case.status == "new"  # assigning is not starting: the assignee has not touched it
    assert case_assign(case=case, assignee=colleague, actor=supervisor) is False
    assert case_assign(case=case, assignee=None, actor=supervisor) is True

    case.refresh_from_db()
    assert case.assignee is None
    assert [e.data["to"] for e in case.events.filter(kind="assigned").order_by("id")] == [colleague.pk, None]


@pytest.mark.django_db
def test_the_assignee_must_be_a_member_of_the_cases_store(store, other_store, supervisor):
    stranger = make_user("dave")
    make_membership(user=stranger, store=other_store)
    case = make_case(store=store)
    with pytest.raises(CaseWorkflowError, match="dave is not a member"):
        case_assign(case=case, assignee=stranger, actor=supervisor)


# --- bulk -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bulk_claim_of_20_cases_touches_only_the_agents_store(
    store, other_store, agent, django_assert_max_num_queries
):
    mine = [make_case(store=store) for _ in range(20)]
    theirs = [make_case(store=other_store) for _ in range(5)]
    ids = [c.pk for c in mine] + [c.pk for c in theirs] + [999_999]

    with django_assert_max_num_queries(4 + 20 * 3):  # one lock query, then an update and two events each
        result = cases_bulk_claim(case_ids=ids, actor=agent)

    assert result.changed == 20
    assert result.refused == {pk: NOT_FOUND for pk in [*(c.pk for c in theirs), 999_999]}
    assert (
        Case.objects.filter(pk__in=[c.pk for c in mine], assignee=agent, status="in_progress").count() == 20
    )
    assert not Case.objects.filter(pk__in=[c.pk for c in theirs]).exclude(assignee=None).exists()
    assert not CaseEvent.objects.filter(case__in=theirs).exclude(kind="raised").exists()
    assert CaseEvent.objects.filter(case__in=mine, kind="assigned").count() == 20


@pytest.mark.django_db
def test_bulk_claim_reports_why_a_case_was_refused(store, agent, colleague):
    free, taken, own = make_case(store=store), make_case(store=store), make_case(store=store)
    case_claim(case=taken, actor=colleague)
    case_claim(case=own, actor=agent)

    result = cases_bulk_claim(case_ids=[free.pk, taken.pk, own.pk], actor=agent)

    assert (result.changed, result.unchanged) == (1, 1)
    assert result.refused == {taken.pk: "The case is already assigned to carol."}


@pytest.mark.django_db
def test_bulk_assign_refuses_cases_of_stores_the_assignee_is_not_in(store, other_store, colleague):
    boss = make_user("sam")
    make_membership(user=boss, store=store, role="supervisor")
    make_membership(user=boss, store=other_store, role="supervisor")
    a, b = make_case(store=store), make_case(store=other_store)

    result = cases_bulk_assign(case_ids=[a.pk, b.pk], assignee=colleague, actor=boss)

    assert result.changed == 1
    assert result.refused == {b.pk: "carol is not a member of this case's store."}
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.assignee, b.assignee) == (colleague, None)


@pytest.mark.django_db
def test_bulk_assign_by_an_agent_is_refused_case_by_case(store, agent, colleague):
    case = make_case(store=store)
    result = cases_bulk_assign(case_ids=[case.pk], assignee=colleague, actor=agent)
    assert result.changed == 0 and "Only supervisors" in result.refused[case.pk]


@pytest.mark.django_db
def test_bulk_transition_resolves_what_it_may_and_reports_the_rest(store, agent):
    open_case, closed = make_case(store=store), make_case(store=store)
    Case.objects.filter(pk=closed.pk).update(
        status="closed", resolution="delivered", resolved_at=closed.opened_at
    )

    result = cases_bulk_transition(
        case_ids=[open_case.pk, closed.pk], to_status="resolved", resolution="refunded", actor=agent
    )

    assert result.changed == 1
    assert "cannot become" in result.refused[closed.pk]
    open_case.refresh_from_db()
    assert open_case.status == "resolved" and open_case.resolution == "refunded"


@pytest.mark.django_db
def test_bulk_actions_are_capped(store, agent):
    with pytest.raises(CaseWorkflowError, match="at most"):
        cases_bulk_claim(case_ids=range(1, BULK_LIMIT + 2), actor=agent)


# --- concurrency ----------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrency needs PostgreSQL")
def test_two_agents_racing_to_claim_one_case_end_with_one_assignee_and_one_event():
    store = make_store(code="race-claim")
    agents = []
    for name in ("ann", "ben", "cat", "dan"):
        user = make_user(name)
        make_membership(user=user, store=store)
        agents.append(user)
    case = make_case(store=store)

    def claim(user) -> str:
        try:
            case_claim(case=Case.objects.get(pk=case.pk), actor=user)
        except CaseWorkflowError:
            return "refused"
        return "won"

    outcomes = at_once(*[functools.partial(claim, user) for user in agents])

    assert sorted(outcomes) == ["refused"] * 3 + ["won"]
    case.refresh_from_db()
    assert case.assignee in agents and case.status == "in_progress"
    assert case.events.filter(kind="assigned").count() == 1
    assert case.events.filter(kind="status_changed").count() == 1


@pytest.mark.django_db
def test_removing_a_member_puts_their_open_cases_back_to_unassigned_in_that_store_only(
    store, other_store, agent
):
    admin = make_user("ada")
    make_membership(user=admin, store=store, role="admin")
    make_membership(user=agent, store=other_store, role="agent")
    open_case, done_case, elsewhere = (
        make_case(store=store),
        make_case(store=store),
        make_case(store=other_store),
    )
    for case in (open_case, done_case, elsewhere):
        case_claim(case=case, actor=agent)
    case_transition(case=done_case, to_status="resolved", resolution="no_action", actor=agent)

    member_remove(membership=Membership.objects.get(user=agent, store=store), actor=admin)

    assert Case.objects.get(pk=open_case.pk).assignee_id is None
    assert Case.objects.get(pk=done_case.pk).assignee_id == agent.pk  # who worked it stays on record
    assert Case.objects.get(pk=elsewhere.pk).assignee_id == agent.pk  # still a member there
    event = CaseEvent.objects.filter(case=open_case).order_by("pk").last()
    assert (event.kind, event.actor, event.data["from"], event.data["to"]) == (
        "assigned",
        admin,
        agent.pk,
        None,
    )
    assert event.message == "Unassigned: no longer a member of the store."
