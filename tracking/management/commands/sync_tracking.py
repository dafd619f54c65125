from __future__ import annotations

from django.core.management.base import BaseCommand

from tracking.ingest import tracking_sync
from tracking.models import TrackingConnection
from tracking.tasks import process_deliveries


class Command(BaseCommand):
    help = "Run one tracking round now: process stored webhook deliveries, then poll every due shipment."

    def handle(self, *args, **options):
        processed = process_deliveries()
        self.stdout.write(f"Processed {processed} stored webhook deliveries.")
        for connection in TrackingConnection.objects.filter(is_active=True, pull_enabled=True).select_related(
            "store"
        ):
            result = tracking_sync(connection=connection)
            line = (
                f"{connection}: polled {result.polled} shipments in {result.batches} batches, "
                f"{result.ingest.new} new events, {result.ingest.duplicate} duplicates"
            )
            self.stdout.write(line + (f"; error: {result.error}" if result.error else ""))
