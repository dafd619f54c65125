"""`manage.py create_api_key STORE_CODE [--name N] [--read-only]`: a store API key, printed once."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.models import Store
from portal.services import api_key_create


class Command(BaseCommand):
    help = "Make an API key for a store and print it once (only its hash is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("store_code", help="The store's code, as on its page (e.g. lumi-my).")
        parser.add_argument("--name", default="API key", help="What the key is for, e.g. the ERP's name.")
        parser.add_argument("--read-only", action="store_true", help="A key that can only read (GET).")

    def handle(self, *args, store_code: str, name: str, read_only: bool, **options) -> None:
        store = Store.objects.filter(code=store_code).first()
        if store is None:
            known = ", ".join(Store.objects.order_by("code").values_list("code", flat=True)) or "none yet"
            raise CommandError(f"No store with code {store_code!r}. Stores: {known}.")
        try:
            key, secret = api_key_create(store=store, name=name, read_only=read_only)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        scopes = ", ".join(key.scopes)
        self.stdout.write(f"API key {key.name!r} for {store.name} ({store.code}), scopes: {scopes}")
        self.stdout.write("Copy it now; it is not shown again:")
        self.stdout.write(secret)
