from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.models import Store
from tracking.choices import ImportStatus
from tracking.imports.formats import FIELDS
from tracking.imports.service import (
    ImportError_,
    import_check,
    import_confirm,
    import_map,
    import_run,
    import_upload,
)


class Command(BaseCommand):
    help = (
        "Import a TikTok Shop or Shopee Seller Center order export (CSV or XLSX) into a store: prints the "
        "preview, then imports unless --dry-run. Parcels not yet delivered are then tracked by the worker."
    )

    def add_arguments(self, parser):
        parser.add_argument("store_code")
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="Print the preview and write nothing.")
        parser.add_argument(
            "--column", action="append", default=[], metavar="FIELD=HEADER",
            help="Name a column for a file whose layout is not known, e.g. --column order_id='Order No.' "
            f"(fields: {', '.join(FIELDS)}).",
        )  # fmt: skip

    def handle(self, *args, store_code: str, file: str, dry_run: bool, column: list[str], **options):
        store = Store.objects.filter(code=store_code).first()
        if store is None:
            raise CommandError(f"No store with code {store_code!r}.")
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No file {file}.")
        imp = import_upload(store=store, actor=None, file_name=path.name, data=path.read_bytes())
        if imp.status == ImportStatus.CHECKING:
            imp = import_check(imp)
        if imp.status == ImportStatus.NEEDS_MAPPING or (column and imp.status != ImportStatus.REFUSED):
            imp = self._map(imp, column)
        if imp.status == ImportStatus.REFUSED:
            raise CommandError(f"Refused: {imp.error}")
        self._preview(imp)
        if dry_run:
            self.stdout.write("Dry run: nothing written.")
            return
        imp = import_confirm(imp, actor=None)
        import_run(imp)
        imp.refresh_from_db()
        self.stdout.write(self.style.SUCCESS(
            f"Imported: {imp.created} new, {imp.updated} changed, {imp.unchanged} unchanged orders; "
            f"{imp.skus_created} SKUs and {imp.parcels_created} parcels made; {imp.rows_refused} rows refused."
        ))  # fmt: skip
        if imp.rows_refused:
            self.stdout.write(f"The refused rows: /stores/{store.code}/imports/{imp.pk}/refused.csv")

    def _map(self, imp, column):
        by_header = {header.strip().casefold(): index for index, header in enumerate(imp.headers)}
        mapping = dict(imp.mapping)
        for spec in column:
            name, sep, header = spec.partition("=")
            if not sep or header.strip().casefold() not in by_header:
                raise CommandError(
                    f"--column {spec!r}: give FIELD=HEADER with a header of the file: {imp.headers}"
                )
            mapping[name.strip()] = by_header[header.strip().casefold()]
        try:
            return import_map(imp, actor=None, mapping=mapping)
        except ImportError_ as exc:
            raise CommandError(f"{exc} The file's columns: {imp.headers}") from exc

    def _preview(self, imp):
        p = imp.preview
        self.stdout.write(
            f"{imp.file_name}: {p['rows']} rows, {p['orders']} orders: {p['new']} new, {p['changed']} changed, "
            f"{p['unchanged']} unchanged; {p['rows_refused']} rows refused; {p['skus_new']} SKUs to create; "
            f"{p['parcels']} parcels ({p['in_flight']} in flight)."
        )
        for name, count in p["carriers_unknown"].items():
            self.stdout.write(f"  carrier not recognised: {name} ({count} parcels)")
