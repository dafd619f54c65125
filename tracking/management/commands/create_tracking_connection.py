from __future__ import annotations

import secrets

from django.core.management.base import BaseCommand, CommandError

from portal.models import Store
from tracking.choices import ProviderName
from tracking.models import TrackingConnection


class Command(BaseCommand):
    help = "Create (or re-key) a store's connection to a tracking provider and print its webhook URL."

    def add_arguments(self, parser):
        parser.add_argument("store_code")
        parser.add_argument("provider", choices=ProviderName.values)
        parser.add_argument("--secret", help="Webhook signing secret; a random one is generated if omitted.")
        parser.add_argument(
            "--api-key", help="API key / token used to pull tracking (stored as credentials)."
        )
        parser.add_argument("--business-id", help="Kdniao EBusinessID.")
        parser.add_argument(
            "--base-url",
            help="This portal's public URL, if not settings.PUBLIC_URL (the PUBLIC_URL variable).",
        )

    def handle(self, *args, store_code: str, provider: str, secret: str | None, api_key: str | None,
               business_id: str | None, base_url: str | None, **options):  # fmt: skip
        store = Store.objects.filter(code=store_code).first()
        if store is None:
            raise CommandError(f"No store with code {store_code!r}.")
        if secret is not None and len(secret) < 8:
            raise CommandError("A webhook secret must be at least 8 characters.")
        generated = secret is None
        secret = secret or secrets.token_urlsafe(32)
        credentials = {}
        if api_key:
            credentials["api_key"] = api_key
        if business_id:
            credentials["business_id"] = business_id
        connection, created = TrackingConnection.objects.get_or_create(
            store=store, provider=provider, defaults={"webhook_secret": secret, "credentials": credentials}
        )
        if not created:
            connection.webhook_secret = secret
            connection.credentials = {**connection.credentials, **credentials}
            connection.save(update_fields=["webhook_secret", "credentials"])
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} {connection}.")
        url = f"{base_url.rstrip('/')}{connection.webhook_path}" if base_url else connection.webhook_url
        self.stdout.write(f"Webhook URL: {url}")
        if generated:
            self.stdout.write(f"Webhook secret (shown once, store it in the provider's dashboard): {secret}")
