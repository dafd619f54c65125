"""Every view of the queue read in its (due_at, id) order (issue 28): all statuses, a closed status, a type,
an assignee and the unassigned among the open cases, an assignee's history (cases.selectors.cases_for_user
says which view reads which index; tests/cases/test_queue_plans.py pins the plans).

case_queue_idx (store, status, due_at, id) becomes case_closed_queue_idx, the same over closed cases only:
over the open statuses too it let the planner, whose estimate of the open cases past a deep page is far
too low (they are the latest due), read them by status and sort them all; an open status is walked along
case_open_queue_idx instead. New cases are open, so it also leaves their inserts.

Three more indexes go: case_assignee_idx (assignee, status), which case_assignee_due_idx replaces (an
assignee's open cases are read from case_open_assignee_idx), and the foreign keys' own indexes on store and
assignee, which the composite indexes lead with. Those two are dropped by name in SQL, not by AlterField in
the database: on SQLite an AlterField remakes the cases table, and with it go the counters' triggers (0014).
A new case updates 14 indexes instead of 13 (3 of the new ones are partial on open cases): measured on
1.1M cases, 20,000 single-row inserts took 22 % longer (43 against 35 microseconds a row), claims and
resolutions 10 %.

On PostgreSQL, statistics of status and assignee together (most common combinations): unassigned cases are
nearly all open, and without them the planner multiplies the two shares, expects a handful of open
unassigned cases past a deep page, and sorts them all instead of walking case_unassigned_queue_idx.

At ten million cases each full index builds in some seconds, holding off case writes meanwhile.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

OPEN = models.Q(("status__in", ("new", "in_progress", "waiting_buyer", "waiting_carrier", "waiting_platform")))


STATUS_ASSIGNEE = "case_status_assignee_stats"


def _fk_index(name, column):
    return migrations.RunSQL(
        f"DROP INDEX IF EXISTS {name}", reverse_sql=f"CREATE INDEX {name} ON cases_case ({column})"
    )


def statistics_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE STATISTICS IF NOT EXISTS {STATUS_ASSIGNEE} (mcv) ON status, assignee_id FROM cases_case"
        )
        schema_editor.execute("ANALYZE cases_case")  # now, not at the next autoanalyze


def statistics_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {STATUS_ASSIGNEE}")


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0014_queue_counters"),
        ("portal", "0003_reporting"),
        ("tracking", "0020_order_unshipped_ship_by_idx"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="case",
            index=models.Index(fields=["store", "due_at", "id"], name="case_store_due_idx"),
        ),
        migrations.AddIndex(
            model_name="case",
            index=models.Index(condition=OPEN, fields=["store", "type", "due_at", "id"], name="case_open_type_idx"),
        ),
        migrations.AddIndex(
            model_name="case",
            index=models.Index(
                condition=OPEN, fields=["store", "assignee", "due_at", "id"], name="case_open_assignee_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="case",
            index=models.Index(
                condition=OPEN & models.Q(("assignee__isnull", True)),
                fields=["store", "due_at", "id"],
                name="case_unassigned_queue_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="case",
            index=models.Index(fields=["assignee", "due_at", "id"], name="case_assignee_due_idx"),
        ),
        migrations.AddIndex(
            model_name="case",
            index=models.Index(
                condition=~OPEN, fields=["store", "status", "due_at", "id"], name="case_closed_queue_idx"
            ),
        ),
        migrations.RemoveIndex(model_name="case", name="case_queue_idx"),
        migrations.RemoveIndex(model_name="case", name="case_assignee_idx"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="case",
                    name="assignee",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="assigned_cases",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="case",
                    name="store",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="cases",
                        to="portal.store",
                    ),
                ),
            ],
            database_operations=[
                _fk_index("cases_case_assignee_id_28343c2e", "assignee_id"),
                _fk_index("cases_case_store_id_b8536dee", "store_id"),
            ],
        ),
        migrations.RunPython(statistics_create, statistics_drop),
    ]
