"""The open queue at scale (issue 5): a partial index on the open cases only, in queue order.

The first page (and any keyset page) reads it in (due_at, id) order and stops after a page, instead of
bitmap-scanning every open case and sorting; its INCLUDE columns let the queue counts aggregate run as an
index-only scan of the open cases. Closed and resolved cases (the great majority) are not in it.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0003_workspace_messages"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="case",
            index=models.Index(
                condition=models.Q(
                    (
                        "status__in",
                        ["new", "in_progress", "waiting_buyer", "waiting_carrier", "waiting_platform"],
                    )
                ),
                fields=["store", "due_at", "id"],
                include=["assignee", "type", "sla_paused_at", "status"],
                name="case_open_queue_idx",
            ),
        ),
    ]
