"""The queue counters (issue 28): open-case counts kept by triggers on cases_case, so the queue's counts
read a few rows per store instead of every open case.

Every write of a case (services, bulk_create, QuerySet.update, the benches' raw INSERTs) appends delta
rows to cases_queuecount in its own transaction: +n for the new values of (store, status, type, assignee)
of open cases, -n for the old. Appending, not updating one counter, keeps two transactions that raise
cases of one type from waiting on each other; cases.queue_counts folds the deltas every minute.

PostgreSQL: INSERT and DELETE are statement triggers over transition tables, so a bulk insert (bulk_create,
the benches' generate_series) writes one delta per group, not one per case; UPDATE is a row trigger with a
column list and a WHEN clause (transition tables cannot have a column list, and a statement trigger without
one would capture every update of a case, to the SLA stamps, to count none of them); TRUNCATE empties the
counters (the benches truncate cases). SQLite has row triggers only.

The open statuses are written into the SQL (as into the partial index of 0004): a change to OPEN_STATUSES
needs a migration that installs the triggers again (tests/cases/test_queue_counts.py compares the lists).
SQLite drops a table's triggers when Django remakes the table (most AlterField/AddField on Case): such a
migration must install them again too; the test that the triggers exist after every migration fails if not.
cases.queue_counts reinstalls them from here when `rebuild_queue_counts` finds them missing.
"""

from django.conf import settings
from django.db import migrations, models

OPEN_STATUSES = ("new", "in_progress", "waiting_buyer", "waiting_carrier", "waiting_platform")
_OPEN = "(" + ", ".join(f"'{status}'" for status in OPEN_STATUSES) + ")"
_COLUMNS = "store_id, status, type, assignee_id"
_CHANGED = (
    "(OLD.store_id, OLD.status, OLD.type, OLD.assignee_id) "
    "IS DISTINCT FROM (NEW.store_id, NEW.status, NEW.type, NEW.assignee_id)"
)

# Trigger name -> its table. store_queue_count_delete: a store's counters go before it (BEFORE, so even an
# immediate foreign key check finds none), and a case deleted after its store (a flush deletes the tables in
# any order) writes no delta for it: deleting a store never leaves a counter row pointing at no store.
TRIGGERS = {
    "postgresql": {
        "case_queue_count_insert": "cases_case",
        "case_queue_count_update": "cases_case",
        "case_queue_count_delete": "cases_case",
        "case_queue_count_truncate": "cases_case",
        "store_queue_count_delete": "portal_store",
    },
    "sqlite": {
        "case_queue_count_insert": "cases_case",
        "case_queue_count_update": "cases_case",
        "case_queue_count_delete": "cases_case",
        "store_queue_count_delete": "portal_store",
    },
}

POSTGRESQL_INSTALL = [
    f"""CREATE OR REPLACE FUNCTION cases_queue_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO cases_queuecount ({_COLUMNS}, n)
        SELECT {_COLUMNS}, count(*) FROM new_cases WHERE status IN {_OPEN} GROUP BY {_COLUMNS};
        RETURN NULL;
    END $$""",  # noqa: S608 - fixed identifiers and literals
    f"""CREATE OR REPLACE FUNCTION cases_queue_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO cases_queuecount ({_COLUMNS}, n)
        SELECT {_COLUMNS}, -count(*) FROM old_cases
        WHERE status IN {_OPEN} AND EXISTS (SELECT FROM portal_store WHERE portal_store.id = old_cases.store_id)
        GROUP BY {_COLUMNS};
        RETURN NULL;
    END $$""",  # noqa: S608 - fixed identifiers and literals
    f"""CREATE OR REPLACE FUNCTION cases_queue_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.status IN {_OPEN} THEN
            INSERT INTO cases_queuecount ({_COLUMNS}, n)
            VALUES (OLD.store_id, OLD.status, OLD.type, OLD.assignee_id, -1);
        END IF;
        IF NEW.status IN {_OPEN} THEN
            INSERT INTO cases_queuecount ({_COLUMNS}, n)
            VALUES (NEW.store_id, NEW.status, NEW.type, NEW.assignee_id, 1);
        END IF;
        RETURN NULL;
    END $$""",  # noqa: S608 - fixed identifiers and literals
    """CREATE OR REPLACE FUNCTION cases_queue_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM cases_queuecount;
        RETURN NULL;
    END $$""",
    """CREATE OR REPLACE FUNCTION cases_queue_count_store_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM cases_queuecount WHERE store_id = OLD.id;
        RETURN OLD;
    END $$""",
    "DROP TRIGGER IF EXISTS case_queue_count_insert ON cases_case",
    """CREATE TRIGGER case_queue_count_insert AFTER INSERT ON cases_case
    REFERENCING NEW TABLE AS new_cases FOR EACH STATEMENT EXECUTE FUNCTION cases_queue_count_inserted()""",
    "DROP TRIGGER IF EXISTS case_queue_count_update ON cases_case",
    f"""CREATE TRIGGER case_queue_count_update AFTER UPDATE OF {_COLUMNS} ON cases_case FOR EACH ROW
    WHEN ((OLD.status IN {_OPEN} OR NEW.status IN {_OPEN}) AND {_CHANGED})
    EXECUTE FUNCTION cases_queue_count_updated()""",
    "DROP TRIGGER IF EXISTS case_queue_count_delete ON cases_case",
    """CREATE TRIGGER case_queue_count_delete AFTER DELETE ON cases_case
    REFERENCING OLD TABLE AS old_cases FOR EACH STATEMENT EXECUTE FUNCTION cases_queue_count_deleted()""",
    "DROP TRIGGER IF EXISTS case_queue_count_truncate ON cases_case",
    """CREATE TRIGGER case_queue_count_truncate AFTER TRUNCATE ON cases_case
    FOR EACH STATEMENT EXECUTE FUNCTION cases_queue_count_truncated()""",
    "DROP TRIGGER IF EXISTS store_queue_count_delete ON portal_store",
    """CREATE TRIGGER store_queue_count_delete BEFORE DELETE ON portal_store
    FOR EACH ROW EXECUTE FUNCTION cases_queue_count_store_deleted()""",
]

POSTGRESQL_DROP = [
    *(f"DROP TRIGGER IF EXISTS {name} ON {table}" for name, table in TRIGGERS["postgresql"].items()),
    "DROP FUNCTION IF EXISTS cases_queue_count_inserted()",
    "DROP FUNCTION IF EXISTS cases_queue_count_deleted()",
    "DROP FUNCTION IF EXISTS cases_queue_count_updated()",
    "DROP FUNCTION IF EXISTS cases_queue_count_truncated()",
    "DROP FUNCTION IF EXISTS cases_queue_count_store_deleted()",
]


def _sqlite_row(values: str, n: int) -> str:
    return f"INSERT INTO cases_queuecount ({_COLUMNS}, n) SELECT {values}, {n}"


SQLITE_INSTALL = [
    f"""CREATE TRIGGER IF NOT EXISTS case_queue_count_insert AFTER INSERT ON cases_case
    WHEN NEW.status IN {_OPEN}
    BEGIN
        {_sqlite_row("NEW.store_id, NEW.status, NEW.type, NEW.assignee_id", 1)};
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS case_queue_count_update AFTER UPDATE OF {_COLUMNS} ON cases_case
    WHEN (OLD.status IN {_OPEN} OR NEW.status IN {_OPEN})
        AND (OLD.store_id IS NOT NEW.store_id OR OLD.status IS NOT NEW.status OR OLD.type IS NOT NEW.type
             OR OLD.assignee_id IS NOT NEW.assignee_id)
    BEGIN
        {_sqlite_row("OLD.store_id, OLD.status, OLD.type, OLD.assignee_id", -1)} WHERE OLD.status IN {_OPEN};
        {_sqlite_row("NEW.store_id, NEW.status, NEW.type, NEW.assignee_id", 1)} WHERE NEW.status IN {_OPEN};
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS case_queue_count_delete AFTER DELETE ON cases_case
    WHEN OLD.status IN {_OPEN} AND EXISTS (SELECT 1 FROM portal_store WHERE id = OLD.store_id)
    BEGIN
        {_sqlite_row("OLD.store_id, OLD.status, OLD.type, OLD.assignee_id", -1)};
    END""",
    """CREATE TRIGGER IF NOT EXISTS store_queue_count_delete BEFORE DELETE ON portal_store
    BEGIN
        DELETE FROM cases_queuecount WHERE store_id = OLD.id;
    END""",
]

SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS["sqlite"]]

COUNT_OPEN_CASES = f"""INSERT INTO cases_queuecount ({_COLUMNS}, n)
    SELECT {_COLUMNS}, count(*) FROM cases_case WHERE status IN {_OPEN} GROUP BY {_COLUMNS}"""  # noqa: S608 - fixed identifiers

_SQL = {"postgresql": (POSTGRESQL_INSTALL, POSTGRESQL_DROP), "sqlite": (SQLITE_INSTALL, SQLITE_DROP)}


def triggers_install(connection) -> None:
    """Create (or replace) the counting triggers on cases_case. Idempotent."""
    if connection.vendor not in _SQL:
        raise NotImplementedError(f"No queue counter triggers for {connection.vendor}.")
    with connection.cursor() as cursor:
        for statement in _SQL[connection.vendor][0]:
            cursor.execute(statement)


def triggers_drop(connection) -> None:
    with connection.cursor() as cursor:
        for statement in _SQL[connection.vendor][1]:
            cursor.execute(statement)


def install(apps, schema_editor):
    triggers_install(schema_editor.connection)


def drop(apps, schema_editor):
    triggers_drop(schema_editor.connection)


def count_open_cases(apps, schema_editor):
    # After the triggers: on PostgreSQL, CREATE TRIGGER holds off writers of cases until this migration
    # commits, so no case changes between this count and the first delta.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(COUNT_OPEN_CASES)


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0013_rollup_indexes"),
        ("portal", "0003_reporting"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="QueueCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("new", "New"),
                            ("in_progress", "In progress"),
                            ("waiting_buyer", "Waiting on buyer"),
                            ("waiting_carrier", "Waiting on carrier"),
                            ("waiting_platform", "Waiting on platform"),
                            ("resolved", "Resolved"),
                            ("closed", "Closed"),
                        ],
                        max_length=20,
                        verbose_name="status",
                    ),
                ),
                (
                    "type",
                    models.CharField(
                        choices=[
                            ("oversold", "Oversold"),
                            ("out_of_stock", "Out of stock"),
                            ("pickup_overdue", "Pickup overdue"),
                            ("stalled_in_transit", "Stalled in transit"),
                            ("no_update", "No update"),
                            ("delivery_failed", "Delivery failed"),
                            ("address_issue", "Address issue"),
                            ("customs_hold", "Customs hold"),
                            ("lost", "Lost"),
                            ("damaged", "Damaged"),
                            ("returned_to_sender", "Returned to sender"),
                            ("order_review", "Order review"),
                            ("quality_batch", "Quality batch"),
                            ("not_received", "Not received"),
                            ("wrong_item", "Wrong item"),
                            ("missing_item", "Missing item"),
                            ("quality", "Quality problem"),
                            ("enquiry", "Buyer enquiry"),
                        ],
                        max_length=30,
                        verbose_name="type",
                    ),
                ),
                ("n", models.BigIntegerField()),
                (
                    "assignee",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "store",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="+",
                        to="portal.store",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["store", "status", "type", "assignee"], name="queue_count_group_idx")
                ],
            },
        ),
        migrations.RunPython(install, drop),
        migrations.RunPython(count_open_cases, migrations.RunPython.noop),
    ]
