"""Recount the queue counters from the open cases, putting back their triggers if they are missing."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from cases.queue_counts import queue_counts_rebuild


class Command(BaseCommand):
    help = (
        "Recount the queue counters (open cases by store, status, type and assignee) from the cases, in one "
        "transaction; reinstall the counting triggers if they are missing. Prints every counter it corrected."
    )

    def handle(self, *args, **options):
        result = queue_counts_rebuild()
        if result.triggers_installed:
            self.stdout.write(
                f"Put back the missing triggers {', '.join(result.triggers_installed)}: the counts had stopped "
                "following the cases."
            )
        for difference in result.differences:
            store_id, status, type, assignee_id = difference.group
            assignee = f"user {assignee_id}" if assignee_id is not None else "unassigned"
            self.stdout.write(
                f"store {store_id}, {status}, {type}, {assignee}: counted {difference.counted}, "
                f"recounted {difference.recounted}"
            )
        if result.differences:
            self.stdout.write(f"Fixed {len(result.differences)} queue counter(s).")
        else:
            self.stdout.write("The queue counters matched the cases.")
