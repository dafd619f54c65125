from __future__ import annotations

from django.core.management.base import BaseCommand

from cases.engine import exceptions_sweep


class Command(BaseCommand):
    help = "Run one exception-rule sweep now over every shipment whose next check is due."

    def handle(self, *args, **options):
        result = exceptions_sweep()
        self.stdout.write(
            f"Evaluated {result.evaluated} shipments: {result.raised} cases raised, {result.updated} updated, "
            f"{result.resolved} resolved, {result.flagged} flagged for their agents."
        )
        for type, count in sorted(result.raised_by_type.items()):
            self.stdout.write(f"  {type}: {count}")
