"""Rebuild the report rollups from the raw tables: every store, or the ones named, from a day on."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from cases.reporting.rollups import rollups_rebuild
from portal.models import Store


class Command(BaseCommand):
    help = "Rebuild the report rollups from the raw cases, parcels, orders and money (all stores by default)."

    def add_arguments(self, parser):
        parser.add_argument("stores", nargs="*", metavar="STORE_CODE", help="Only these stores.")
        parser.add_argument("--since", help="Only days from this one on (YYYY-MM-DD).")

    def handle(self, *args, **options):
        since = None
        if options["since"]:
            try:
                since = date.fromisoformat(options["since"])
            except ValueError:
                raise CommandError(f"--since: {options['since']!r} is not a date like 2026-11-30.") from None
        ids = None
        if options["stores"]:
            found = dict(Store.objects.filter(code__in=options["stores"]).values_list("code", "pk"))
            unknown = sorted(set(options["stores"]) - set(found))
            if unknown:
                raise CommandError(f"No store with the code {', '.join(unknown)}.")
            ids = list(found.values())
        days = rollups_rebuild(ids, since=since)
        self.stdout.write(f"Rebuilt {days} store-day(s) of report rollups.")
