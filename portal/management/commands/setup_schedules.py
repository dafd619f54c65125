from __future__ import annotations

from django.core.management.base import BaseCommand
from django_q.models import Schedule

# Declared in code, never by hand in the admin. Tasks are named by dotted path so no app imports another.
SCHEDULES = [
    {
        "name": "tracking: process deliveries",
        "func": "tracking.tasks.process_deliveries",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "tracking: sync due shipments",
        "func": "tracking.tasks.sync_due",
        "schedule_type": Schedule.MINUTES,
        "minutes": 5,
    },
    {
        "name": "tracking: register new parcels with the providers",
        "func": "tracking.tasks.register_due",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "tracking: match pushes of parcels that arrived before their order",
        "func": "tracking.tasks.match_unmatched",
        "schedule_type": Schedule.MINUTES,
        "minutes": 2,
    },
    {
        "name": "tracking: send the simulator's scheduled pushes",
        "func": "tracking.tasks.send_scheduled_pushes",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "tracking: check and run Seller Center imports (and resume interrupted ones)",
        "func": "tracking.tasks.run_imports",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "tracking: delete raw pushes past their retention",
        "func": "tracking.tasks.prune_history",
        "schedule_type": Schedule.HOURLY,
    },
    {
        "name": "cases: evaluate due exception rules",
        "func": "cases.tasks.evaluate_due",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "cases: evaluate stock, order review and batches",
        "func": "cases.tasks.evaluate_stores",
        "schedule_type": Schedule.MINUTES,
        "minutes": 5,
    },
    {
        "name": "cases: evaluate the storefront's new and changed orders",
        "func": "cases.tasks.evaluate_orders",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "cases: send storefront events to webhook endpoints",
        "func": "cases.tasks.deliver_webhooks",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "cases: delete storefront events past their retention",
        "func": "cases.tasks.prune_storefront_events",
        "schedule_type": Schedule.HOURLY,
    },
    {
        "name": "cases: delete withdrawn evidence files past their retention",
        "func": "cases.tasks.prune_withdrawn_evidence",
        "schedule_type": Schedule.DAILY,
    },
    {
        "name": "portal: forget API idempotency keys older than 24 h",
        "func": "portal.tasks.prune_idempotency_keys",
        "schedule_type": Schedule.HOURLY,
    },
    {
        "name": "cases: deliver buyer messages",
        "func": "cases.tasks.deliver_messages",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "cases: write post-live reviews 48 h after each live session",
        "func": "cases.reporting.tasks.live_reviews_due",
        "schedule_type": Schedule.MINUTES,
        "minutes": 15,
    },
    {
        "name": "cases: bring the report rollups up to date",
        "func": "cases.reporting.tasks.refresh_rollups",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "cases: rebuild the last three days of report rollups",
        "func": "cases.reporting.tasks.reconcile_rollups",
        "schedule_type": Schedule.DAILY,
    },
    {
        "name": "cases: fold the queue counters' changes",
        "func": "cases.tasks.compact_queue_counts",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
]


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules Afterdesk runs on."

    def handle(self, *args, **options):
        for spec in SCHEDULES:
            values = {key: value for key, value in spec.items() if key != "name"}
            values["repeats"] = -1
            _, created = Schedule.objects.update_or_create(name=spec["name"], defaults=values)
            self.stdout.write(f"{'Created' if created else 'Updated'} schedule {spec['name']!r}.")
        names = [spec["name"] for spec in SCHEDULES]
        stale = Schedule.objects.filter(name__regex=r"^(tracking|cases|portal): ").exclude(name__in=names)
        if stale.exists():
            self.stdout.write(f"Removed {stale.delete()[0]} schedules no longer declared.")
