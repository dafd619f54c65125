from __future__ import annotations

from django.core.management.base import BaseCommand

from cases.batch import batches_sweep
from cases.engine import exceptions_sweep
from cases.orders import orders_due_evaluate
from cases.review import order_review_evaluate
from cases.stock import stock_evaluate
from portal.models import Store


class Command(BaseCommand):
    help = (
        "Run the exception rules now: one sweep over every shipment whose next check is due, then the "
        "stock, order-review and batch rules of every store."
    )

    def handle(self, *args, **options):
        result = orders_due_evaluate()  # the storefront's new and changed orders, their marks cleared
        result += exceptions_sweep()
        for store in Store.objects.order_by("pk"):
            result += stock_evaluate(store=store)
            result += order_review_evaluate(store=store)
        self.stdout.write(
            f"Evaluated {result.evaluated} shipments: {result.raised} cases raised, {result.updated} updated, "
            f"{result.resolved} resolved, {result.flagged} flagged for their agents."
        )
        for type, count in sorted(result.raised_by_type.items()):
            self.stdout.write(f"  {type}: {count}")
        for store in Store.objects.order_by("pk"):
            batches = batches_sweep(store=store)
            if batches.raised:
                self.stdout.write(f"{store.code}: {batches.raised} batch incidents raised.")
