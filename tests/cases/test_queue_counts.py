"""The queue counters (issue 28): kept by triggers on every write path, equal to a recount of the cases."""

from __future__ import annotations

import contextlib
import random
import re
import threading
from datetime import datetime, timedelta
from importlib import import_module
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection, connections, transaction
from django.db.models import Count, Q, Sum
from django.db.models.deletion import ProtectedError
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cases.choices import OPEN_STATUSES, CaseType
from cases.models import Case, QueueCount
from cases.queue_counts import (
    TRIGGERS_MIGRATION,
    QueueCountTriggersMissing,
    queue_count_triggers_missing,
    queue_counts_compact,
)
from cases.selectors import QUEUES, _queue_q, queue_counts_for_user
from cases.services import case_raise
from cases.workflow import (
    CaseWorkflowError,
    allowed_transitions,
    case_assign,
    case_claim,
    case_transition,
    cases_bulk_assign,
    cases_bulk_claim,
    cases_bulk_transition,
)
from portal.selectors import store_ids_for_user
from tests.factories import make_case, make_membership, make_order, make_shipment, make_store, make_user

HX = {"HX-Request": "true"}
SHIPMENT_TYPES = ("stalled_in_transit", "lost", "damaged", "delivery_failed")
MIGRATION = import_module(TRIGGERS_MIGRATION)


def _recount() -> dict[tuple, int]:
    """The open cases by (store, status, type, assignee), counted from the cases."""
    rows = Case.objects.filter(status__in=OPEN_STATUSES).values_list(
        "store_id", "status", "type", "assignee_id"
    )
    return {row[:4]: row[4] for row in rows.annotate(n=Count("pk")).order_by()}


def _counted() -> dict[tuple, int]:
    """The same, summed from the counters (groups summing to zero are no group)."""
    rows = QueueCount.objects.values_list("store_id", "status", "type", "assignee_id").annotate(
        total=Sum("n")
    )
    return {row[:4]: int(row[4]) for row in rows.order_by() if row[4]}


def _old_queue_counts(user, *, now: datetime) -> dict:
    """queue_counts_for_user as it was before the counters: one aggregate over the user's open cases."""
    aggregates = {queue: Count("pk", filter=_queue_q(user, queue, now)) for queue in QUEUES}
    aggregates["open"] = Count("pk")
    aggregates.update({f"type_{value}": Count("pk", filter=Q(type=value)) for value in CaseType.values})
    counts = Case.objects.filter(store_id__in=store_ids_for_user(user), status__in=OPEN_STATUSES).aggregate(
        **aggregates
    )
    return {
        **{key: counts[key] for key in (*QUEUES, "open")},
        "breaching_more": False,  # these tests hold fewer than BREACHING_SHOWN breaching cases
        "types": {value: counts[f"type_{value}"] for value in CaseType.values},
    }


def _bulk_cases(store, count: int, *, now: datetime, status: str = "new", **fields) -> list[Case]:
    """Quality-batch incidents (no order needed), written by bulk_create as the demo seed and benches do."""
    return Case.objects.bulk_create(
        Case(store=store, type=CaseType.QUALITY_BATCH, status=status, lot=f"LOT-{store.pk}-{i}-{now.timestamp()}",
             opened_at=now, due_at=now + timedelta(hours=1 + i % 5), **fields)
        for i in range(count)
    )  # fmt: skip


@pytest.fixture
def people(store, other_store):
    """Two agents and a supervisor, each a member of both stores."""
    users = {"ann": "agent", "ben": "agent", "sam": "supervisor"}
    made = {}
    for name, role in users.items():
        made[name] = make_user(name)
        for shop in (store, other_store):
            make_membership(user=made[name], store=shop, role=role)
    return made


# --- the counters equal a recount ------------------------------------------------------------------


class _Operations:
    """Random writes through every path a case changes by: the services, the bulk actions, bulk_create,
    QuerySet.update (status, type, assignee, store) and delete, with compaction at random points."""

    def __init__(self, rng: random.Random, stores, people):
        self.rng, self.stores, self.people = rng, stores, people
        self.supervisor = people["sam"]

    def _pick(self, *, open_only: bool = False, many: int = 0):
        cases = Case.objects.filter(status__in=OPEN_STATUSES) if open_only else Case.objects.all()
        ids = list(cases.order_by("pk").values_list("pk", flat=True))
        if not ids:
            return [] if many else None
        if many:
            return self.rng.sample(ids, min(many, len(ids)))
        return Case.objects.get(pk=self.rng.choice(ids))

    def raise_case(self) -> None:
        store = self.rng.choice(self.stores)
        order = make_order(store=store)
        # An SLA that began hours ago: some of these are due within 2 h or overdue (breaching).
        began = timezone.now() - timedelta(hours=self.rng.choice([0, 20, 23, 30]))
        case_raise(
            type=self.rng.choice(SHIPMENT_TYPES), order=order, shipment=make_shipment(order=order), now=began
        )

    def claim(self) -> None:
        if case := self._pick(open_only=True):
            # Refused when an agent takes a colleague's case: nothing written.
            with contextlib.suppress(CaseWorkflowError, PermissionDenied):
                case_claim(case=case, actor=self.rng.choice(list(self.people.values())))

    def assign(self) -> None:
        if case := self._pick(open_only=True):
            assignee = self.rng.choice([None, *self.people.values()])
            case_assign(case=case, assignee=assignee, actor=self.supervisor)

    def transition(self) -> None:
        case = self._pick()
        if case is None or not allowed_transitions(case.status):
            return
        target = self.rng.choice(sorted(allowed_transitions(case.status)))  # resolve, reopen, close, wait...
        resolution = "reshipped" if target == "resolved" else None
        case_transition(case=case, to_status=target, resolution=resolution, actor=self.supervisor)

    def bulk_claim(self) -> None:
        cases_bulk_claim(case_ids=self._pick(many=4), actor=self.rng.choice(list(self.people.values())))

    def bulk_assign(self) -> None:
        assignee = self.rng.choice([None, *self.people.values()])
        cases_bulk_assign(case_ids=self._pick(many=4), assignee=assignee, actor=self.supervisor)

    def bulk_transition(self) -> None:
        target = self.rng.choice(["in_progress", "waiting_buyer", "waiting_carrier", "resolved", "closed"])
        resolution = "refunded" if target == "resolved" else None
        ids = self._pick(many=4)
        cases_bulk_transition(case_ids=ids, to_status=target, resolution=resolution, actor=self.supervisor)

    def bulk_create(self) -> None:
        store, now = self.rng.choice(self.stores), timezone.now()
        rows = []
        for _ in range(self.rng.randint(1, 5)):
            order = make_order(store=store)
            rows.append(Case(
                store=store, order=order, shipment=make_shipment(order=order), type=self.rng.choice(SHIPMENT_TYPES),
                status=self.rng.choice(["new", "in_progress", "waiting_buyer", "closed"]),
                assignee=self.rng.choice([None, *self.people.values()]), opened_at=now,
                due_at=now + timedelta(minutes=self.rng.randint(-180, 300)),
            ))  # fmt: skip
        Case.objects.bulk_create(rows)

    def update_status(self) -> None:
        ids = self._pick(open_only=True, many=3)
        Case.objects.filter(pk__in=ids).update(
            status=self.rng.choice(["waiting_carrier", "in_progress", "closed"])
        )

    def update_counted_columns(self) -> None:
        ids = self._pick(many=3)
        change = self.rng.choice([
            {"type": self.rng.choice(SHIPMENT_TYPES)},
            {"assignee": self.rng.choice([None, *self.people.values()])},
            {"store": self.rng.choice(self.stores)},
            {"summary": "not a counted column"},
        ])  # fmt: skip
        Case.objects.filter(pk__in=ids).update(**change)

    def delete(self) -> None:
        if case := self._pick():
            with contextlib.suppress(ProtectedError):
                case.delete()

    def compact(self) -> None:
        queue_counts_compact()

    def run(self, steps: int) -> None:
        operations = [
            self.raise_case, self.raise_case, self.raise_case, self.claim, self.assign, self.transition,
            self.transition, self.bulk_claim, self.bulk_assign, self.bulk_transition, self.bulk_create,
            self.update_status, self.update_counted_columns, self.delete, self.compact,
        ]  # fmt: skip
        for step in range(steps):
            operation = self.rng.choice(operations)
            operation()
            assert _counted() == _recount(), f"step {step}: {operation.__name__}"


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_counters_equal_a_recount_after_random_operations_on_every_write_path(
    seed, store, other_store, people
):
    _Operations(random.Random(seed), [store, other_store], people).run(steps=120)

    queue_counts_compact()
    assert _counted() == _recount()
    # Compacted: one row per group, none summing to zero.
    assert QueueCount.objects.count() == len(_recount())
    now = timezone.now()
    for user in people.values():
        assert queue_counts_for_user(user, now=now) == _old_queue_counts(user, now=now)


@pytest.mark.django_db
def test_the_counts_equal_the_old_aggregate_for_every_queue(store, other_store, people):
    ann, now = people["ann"], timezone.now()
    mine = make_case(store=store, type="lost")
    case_claim(case=mine, actor=ann)
    make_case(store=store, type="stalled_in_transit", now=now - timedelta(hours=23))  # due within 2 h
    _bulk_cases(store, 3, now=now - timedelta(hours=5))  # overdue: breaching
    _bulk_cases(store, 2, now=now - timedelta(hours=5), sla_paused_at=now)  # paused: not breaching
    _bulk_cases(store, 4, now=now, status="closed")  # not open
    make_case(store=other_store, type="lost")  # ann's too (member of both)
    make_case(store=make_store(code="store-c"), type="lost")  # not ann's store

    counts = queue_counts_for_user(ann, now=now)

    assert counts == _old_queue_counts(ann, now=now)
    assert (counts["mine"], counts["unassigned"], counts["open"]) == (1, 7, 8)
    assert counts["breaching"] == 4
    assert counts["types"]["lost"] == 2
    assert list(counts) == ["mine", "unassigned", "breaching", "breaching_more", "open", "types"]


@pytest.mark.django_db
def test_the_counts_cost_one_query_for_10_and_for_1000_cases(store, agent):
    now = timezone.now()

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            queue_counts_for_user(agent, now=now)
        return len(ctx.captured_queries)

    queue_counts_for_user(agent)  # the user's stores, remembered on the user as for every request
    _bulk_cases(store, 10, now=now)
    with_10 = queries()
    _bulk_cases(store, 490, now=now, assignee=agent)
    _bulk_cases(store, 500, now=now, status="closed")  # history: in no counter
    with_1000 = queries()
    queue_counts_compact()

    assert with_10 == with_1000 == 1
    assert queue_counts_for_user(agent, now=now)["open"] == 500
    # What the read sums does not follow the cases: one row per (store, status, type, assignee).
    assert QueueCount.objects.count() == 2


@pytest.mark.django_db
def test_the_counts_partial_renders_the_same_as_with_the_old_aggregate(agent_client, store, monkeypatch):
    agent, now = agent_client.agent, timezone.now()
    case_claim(case=make_case(store=store, type="lost"), actor=agent)
    make_case(store=store, type="damaged", now=now - timedelta(hours=23))
    _bulk_cases(store, 3, now=now - timedelta(hours=5))
    url = reverse("cases:counts")

    body = agent_client.get(url, {"in_queue": "1", "queue": "mine"}, headers=HX).content.decode()
    monkeypatch.setattr(
        "cases.views.queue_counts_for_user", lambda user: _old_queue_counts(user, now=timezone.now())
    )
    old_body = agent_client.get(url, {"in_queue": "1", "queue": "mine"}, headers=HX).content.decode()

    assert body == old_body
    assert re.search(r'data-queue="type-damaged"[^>]*>Damaged<span class="count">1</span>', body)


# --- compaction ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_compaction_folds_each_group_into_one_row_and_drops_zero_sums(store, agent):
    cases = [make_case(store=store, type="lost") for _ in range(3)]
    case_claim(case=cases[0], actor=agent)  # new/unassigned -1, in_progress/agent +1
    case_transition(
        case=cases[0], to_status="resolved", resolution="reshipped", actor=agent
    )  # -1, nothing new
    before = _counted()

    result = queue_counts_compact()

    assert _counted() == before == _recount() == {(store.pk, "new", "lost", None): 2}
    assert list(QueueCount.objects.values_list("n", flat=True)) == [2]
    assert (result.folded, result.written) == (6, 1)
    assert queue_counts_compact().folded == 0  # nothing left to fold


@pytest.mark.django_db
def test_the_scheduled_task_compacts(store):
    from cases.tasks import compact_queue_counts

    for _ in range(2):
        make_case(store=store)

    assert compact_queue_counts() == {"folded": 2, "written": 1}


# --- the triggers ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_trigger_is_in_place_after_all_migrations():
    # On SQLite a migration that remakes cases_case (most field changes) drops its triggers silently.
    assert queue_count_triggers_missing() == []


def test_the_triggers_count_the_statuses_the_queue_calls_open():
    assert tuple(MIGRATION.OPEN_STATUSES) == tuple(OPEN_STATUSES)


@pytest.mark.django_db
def test_the_migration_counts_the_cases_that_exist(store, agent):
    case_claim(case=make_case(store=store), actor=agent)
    make_case(store=store, type="lost")
    QueueCount.objects.all().delete()

    MIGRATION.count_open_cases(None, SimpleNamespace(connection=connection))

    assert _counted() == _recount() != {}


@pytest.fixture
def immediate_constraints(db):
    """PostgreSQL refuses ALTER TABLE or TRUNCATE of a table with deferred foreign key checks pending, as
    the test's one transaction has; outside a test the rebuild and the benches run in fresh transactions."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _disable_insert_trigger() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE cases_case DISABLE TRIGGER case_queue_count_insert")
        else:
            cursor.execute("DROP TRIGGER case_queue_count_insert")


@pytest.mark.django_db
def test_missing_triggers_fail_the_compaction_and_the_rebuild_puts_them_back(store, immediate_constraints):
    make_case(store=store)
    _disable_insert_trigger()
    make_case(store=store)  # not counted

    assert _counted() != _recount()
    with pytest.raises(QueueCountTriggersMissing, match="case_queue_count_insert"):
        queue_counts_compact()

    out = StringIO()
    call_command("rebuild_queue_counts", stdout=out)

    assert "Put back the missing triggers case_queue_count_insert" in out.getvalue()
    assert f"store {store.pk}, new, stalled_in_transit, unassigned: counted 1, recounted 2" in out.getvalue()
    make_case(store=store)
    assert _counted() == _recount() == {(store.pk, "new", "stalled_in_transit", None): 3}
    queue_counts_compact()


@pytest.mark.django_db
def test_a_migrate_puts_back_missing_triggers_and_recounts(store, immediate_constraints):
    # What a migration that remakes cases_case on SQLite (a field change of Case) leaves behind.
    _disable_insert_trigger()
    make_case(store=store)

    call_command("migrate", verbosity=0)

    assert queue_count_triggers_missing() == []
    make_case(store=store)
    assert _counted() == _recount() == {(store.pk, "new", "stalled_in_transit", None): 2}


@pytest.mark.django_db
def test_the_rebuild_command_fixes_a_tampered_counter_and_says_what_it_fixed(store, agent):
    case_claim(case=make_case(store=store, type="lost"), actor=agent)
    make_case(store=store, type="damaged")
    QueueCount.objects.create(store=store, status="new", type="damaged", n=5)
    QueueCount.objects.filter(status="in_progress").delete()

    out = StringIO()
    call_command("rebuild_queue_counts", stdout=out)

    assert out.getvalue().splitlines() == [
        f"store {store.pk}, in_progress, lost, user {agent.pk}: counted 0, recounted 1",
        f"store {store.pk}, new, damaged, unassigned: counted 6, recounted 1",
        "Fixed 2 queue counter(s).",
    ]
    assert _counted() == _recount()
    assert QueueCount.objects.count() == 2
    again = StringIO()
    call_command("rebuild_queue_counts", stdout=again)
    assert again.getvalue() == "The queue counters matched the cases.\n"


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL flushes by one TRUNCATE of every table")
@pytest.mark.parametrize(
    "order",
    [
        ("cases_queuecount", "cases_case", "portal_store"),
        ("portal_store", "cases_case", "cases_queuecount"),
        ("cases_case", "portal_store", "cases_queuecount"),
        ("cases_queuecount", "portal_store", "cases_case"),
    ],
)
def test_emptying_the_tables_in_any_order_leaves_no_counter_behind(store, agent, order):
    # What a test database flush does between transactional tests: DELETE FROM every table in an order
    # that changes from run to run, foreign keys checked at commit (here: at the end of the block).
    case_claim(case=make_case(store=store), actor=agent)
    make_case(store=store, type="lost")
    tables = [
        *order,
        *(t for t in connection.introspection.django_table_names(only_existing=True) if t not in order),
    ]
    flush = connection.ops.sql_flush(no_style(), tables)

    with transaction.atomic(), connection.constraint_checks_disabled():
        with connection.cursor() as cursor:
            for statement in flush:
                cursor.execute(statement)
        assert QueueCount.objects.count() == 0
        connection.check_constraints()


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no TRUNCATE")
def test_truncating_the_cases_empties_the_counters(store, immediate_constraints):
    make_case(store=store)

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE cases_case CASCADE")

    assert _counted() == _recount() == {}


# --- concurrency -----------------------------------------------------------------------------------


def _in_transactions_at_once(*calls) -> None:
    """Each call in its own thread, connection and transaction; none commits before all have written
    (a barrier inside the transactions). If one waited on a lock the other holds, the barrier would time
    out instead: so finishing proves neither waited."""
    barrier = threading.Barrier(len(calls), timeout=15)
    errors: list[BaseException] = []

    def run(call) -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '10s'")
                call()
                barrier.wait()
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrency needs PostgreSQL")
def test_two_transactions_raising_cases_of_one_type_neither_wait_and_both_count():
    store = make_store(code="race-count")
    orders = [make_order(store=store) for _ in range(2)]
    shipments = [make_shipment(order=order) for order in orders]
    make_case(store=store, type="lost")

    _in_transactions_at_once(
        *[lambda order=order, shipment=shipment: case_raise(type="lost", order=order, shipment=shipment)
          for order, shipment in zip(orders, shipments, strict=True)]
    )  # fmt: skip

    assert _counted() == _recount() == {(store.pk, "new", "lost", None): 3}
    queue_counts_compact()
    assert list(QueueCount.objects.values_list("n", flat=True)) == [3]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")
def test_two_compactions_at_once_neither_wait_and_keep_the_totals():
    store = make_store(code="race-compact")
    for type in ("lost", "damaged", "lost", "damaged", "lost"):
        make_case(store=store, type=type)
    results = []

    _in_transactions_at_once(*[lambda: results.append(queue_counts_compact())] * 2)

    assert sorted(result.folded for result in results) == [0, 5]  # the second skipped the locked rows
    assert (
        _counted()
        == _recount()
        == {(store.pk, "new", "lost", None): 3, (store.pk, "new", "damaged", None): 2}
    )


@pytest.mark.django_db
def test_breaching_is_counted_up_to_what_is_shown_then_said_to_be_more(store, agent, monkeypatch):
    monkeypatch.setattr("cases.selectors.BREACHING_SHOWN", 3)
    now = timezone.now()
    _bulk_cases(store, 3, now=now - timedelta(hours=10))  # due 5 to 9 hours ago
    assert (queue_counts_for_user(agent)["breaching"], queue_counts_for_user(agent)["breaching_more"]) == (
        3,
        False,
    )

    _bulk_cases(store, 2, now=now - timedelta(hours=10))

    counts = queue_counts_for_user(agent)
    assert (counts["breaching"], counts["breaching_more"], counts["open"]) == (3, True, 5)
