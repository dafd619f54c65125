"""The queue counters (QueueCount): folding the triggers' delta rows, recounting them from the cases.

Triggers on cases_case (0014_queue_counters) append a delta row to cases_queuecount for every change of an
open case's (store, status, type, assignee), in the transaction of the change. These two services keep
that table small and right; cases.selectors.queue_counts_for_user reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from django.db import connection, transaction
from django.db.models import Count, Q, Sum

from cases.choices import OPEN_STATUSES
from cases.models import Case, QueueCount

# The migration that installed the counting triggers owns their SQL; a migration that changes them later
# takes its place here.
TRIGGERS_MIGRATION = "cases.migrations.0014_queue_counters"

Group = tuple[int, str, str, int | None]  # (store_id, status, type, assignee_id)
_GROUP = ("store_id", "status", "type", "assignee_id")

# One statement: the rows of every group that has more than one (or sums to zero) are deleted and their
# sum inserted, atomically for readers. SKIP LOCKED: two compactions fold disjoint rows, neither waits,
# and a group may keep two rows until the next run. Rows of transactions still open are not seen: they
# are folded next time. coalesce(assignee, 0) makes the join hashable (user ids start at 1).
_FOLD_POSTGRESQL = """
WITH foldable AS (
    SELECT store_id, status, type, coalesce(assignee_id, 0) AS assignee FROM cases_queuecount
    GROUP BY 1, 2, 3, 4 HAVING count(*) > 1 OR sum(n) = 0
), parts AS (
    DELETE FROM cases_queuecount WHERE id IN (
        SELECT q.id FROM cases_queuecount AS q JOIN foldable AS f
            ON (q.store_id, q.status, q.type, coalesce(q.assignee_id, 0))
             = (f.store_id, f.status, f.type, f.assignee)
        FOR UPDATE OF q SKIP LOCKED
    )
    RETURNING store_id, status, type, assignee_id, n
), sums AS (
    INSERT INTO cases_queuecount (store_id, status, type, assignee_id, n)
    SELECT store_id, status, type, assignee_id, sum(n) FROM parts
    GROUP BY store_id, status, type, assignee_id HAVING sum(n) <> 0
    RETURNING 1
)
SELECT (SELECT count(*) FROM parts), (SELECT count(*) FROM sums)
"""

_DELETE_FOLDABLE_SQLITE = """
DELETE FROM cases_queuecount WHERE (store_id, status, type, coalesce(assignee_id, 0)) IN (
    SELECT store_id, status, type, coalesce(assignee_id, 0) FROM cases_queuecount
    GROUP BY 1, 2, 3, 4 HAVING count(*) > 1 OR sum(n) = 0
)
"""


class QueueCountTriggersMissing(RuntimeError):
    """The counting triggers are gone or disabled: the queue counts no longer follow the cases."""


@dataclass(frozen=True)
class CompactResult:
    folded: int  # delta rows folded away
    written: int  # sums written in their place (groups that do not sum to zero)


@dataclass(frozen=True)
class Difference:
    group: Group
    counted: int  # what the counters said
    recounted: int  # what the cases say


@dataclass(frozen=True)
class RebuildResult:
    differences: list[Difference]
    triggers_installed: list[str]  # the triggers that were missing and were put back


def queue_count_triggers_missing() -> list[str]:
    """The counting triggers (on cases_case and portal_store) that are missing or disabled (ALTER TABLE ...
    DISABLE TRIGGER)."""
    expected = import_module(TRIGGERS_MIGRATION).TRIGGERS[connection.vendor]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE tgenabled <> 'D'")
        else:
            cursor.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
        present = set(cursor.fetchall())
    return [name for name, table in expected.items() if (name, table) not in present]


def queue_count_triggers_ensure() -> list[str]:
    """Put back missing triggers and recount the counters (queue_counts_rebuild), when the counters exist
    and a trigger is missing; else nothing. Returns the triggers that were missing. Run after every
    migrate (cases.apps), since a migration can drop them (SQLite remakes a table to change a field)."""
    if QueueCount._meta.db_table not in connection.introspection.table_names():
        return []  # migrated back to before the counters
    if not queue_count_triggers_missing():
        return []
    return queue_counts_rebuild().triggers_installed


def queue_counts_compact() -> CompactResult:
    """Fold the counters: every (store, status, type, assignee) with several rows becomes one row holding
    their sum; groups that sum to zero disappear. The totals never change, so readers see the same counts
    before and after; safe to run twice at once (PostgreSQL: SKIP LOCKED, each run folds the rows the other
    did not lock; SQLite: one writer at a time). Its cost follows the rows written since the last run plus
    the groups, never the cases.

    If the triggers were dropped or disabled (a restore without them, `DISABLE TRIGGER` left behind, a
    migration that made SQLite rebuild cases_case), the counters stop following the cases: the queue shows
    the counts of the moment they went, and compaction has nothing left to fold. So after folding this
    checks that the triggers are there and raises QueueCountTriggersMissing if not: the scheduled task
    fails every minute, in the worker's log and django-q's failed tasks, naming the missing triggers.
    The fix is `manage.py rebuild_queue_counts`: it puts the triggers back and recounts from the cases in
    one transaction, printing every counter it corrected (a list of differences after an outage says how
    far the counts had drifted; an empty one that nothing was wrong).
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(_FOLD_POSTGRESQL)
                folded, written = cursor.fetchone()
        else:
            # SQLite: the IMMEDIATE transaction holds the database's only write lock from its start, so
            # the groups read here are the ones deleted below.
            groups = list(
                QueueCount.objects.values(*_GROUP)
                .annotate(parts=Count("pk"), total=Sum("n"))
                .filter(Q(parts__gt=1) | Q(total=0))
                .order_by()
            )
            if groups:
                with connection.cursor() as cursor:
                    cursor.execute(_DELETE_FOLDABLE_SQLITE)
                sums = [
                    QueueCount(**{key: group[key] for key in _GROUP}, n=group["total"])
                    for group in groups
                    if group["total"]
                ]
                QueueCount.objects.bulk_create(sums)
            folded, written = sum(group["parts"] for group in groups), len([g for g in groups if g["total"]])
    missing = queue_count_triggers_missing()
    if missing:
        raise QueueCountTriggersMissing(
            f"The queue counters' triggers {', '.join(missing)} are missing from {Case._meta.db_table}: the "
            "queue counts no longer follow the cases. Run `manage.py rebuild_queue_counts`."
        )
    return CompactResult(folded=int(folded), written=int(written))


def queue_counts_rebuild() -> RebuildResult:
    """Recount the counters from the open cases, in one transaction: puts back missing triggers first,
    then replaces every counter row by the recount and reports each group that differed.

    PostgreSQL: locks cases_case in SHARE mode (case writers wait until the rebuild commits; reads go on)
    so no change falls between the recount and the new rows, and the counters in EXCLUSIVE mode so no
    compaction folds rows being replaced. SQLite: the IMMEDIATE transaction is the only writer. Reads the
    open cases (the open partial index): its cost follows the open backlog, for an operator's repair.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {Case._meta.db_table} IN SHARE MODE")
                cursor.execute(f"LOCK TABLE {QueueCount._meta.db_table} IN EXCLUSIVE MODE")
        missing = queue_count_triggers_missing()
        if missing:
            import_module(TRIGGERS_MIGRATION).triggers_install(connection)
        counted = _groups(QueueCount.objects.values_list(*_GROUP).annotate(total=Sum("n")))
        recounted = _groups(
            Case.objects.filter(status__in=OPEN_STATUSES).values_list(*_GROUP).annotate(total=Count("pk"))
        )
        differences = [
            Difference(group=group, counted=counted.get(group, 0), recounted=recounted.get(group, 0))
            for group in sorted(counted.keys() | recounted.keys(), key=_group_order)
            if counted.get(group, 0) != recounted.get(group, 0)
        ]
        QueueCount.objects.all().delete()
        QueueCount.objects.bulk_create(
            QueueCount(**dict(zip(_GROUP, group, strict=True)), n=n) for group, n in recounted.items()
        )
    return RebuildResult(differences=differences, triggers_installed=missing)


def _groups(rows) -> dict[Group, int]:
    return {tuple(row[:4]): int(row[4]) for row in rows.order_by() if row[4]}


def _group_order(group: Group) -> tuple:
    store_id, status, type, assignee_id = group
    return store_id, status, type, assignee_id or 0
