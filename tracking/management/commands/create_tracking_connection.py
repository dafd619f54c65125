from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from portal.models import Store
from tracking.choices import ProviderName
from tracking.models import WEBHOOK_SECRET_MIN_LENGTH, TrackingConnection
from tracking.registration import registrations_rewind
from tracking.services import connection_carriers_clean, connection_credentials_apply


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
            "--customer", help="Kuaidi100 customer id (signs real-time queries with the key)."
        )
        parser.add_argument(
            "--carriers",
            help="Where the store tracks with several providers: the carrier codes this connection tracks, "
            "comma-separated (e.g. zto,yto,sf); an empty value: every carrier no other connection names.",
        )
        parser.add_argument(
            "--base-url",
            help="This portal's public URL, if not settings.PUBLIC_URL (the PUBLIC_URL variable).",
        )

    def handle(self, *args, store_code: str, provider: str, secret: str | None, api_key: str | None,
               business_id: str | None, base_url: str | None, carriers: str | None = None,
               customer: str | None = None, **options):  # fmt: skip
        store = Store.objects.filter(code=store_code).first()
        if store is None:
            raise CommandError(f"No store with code {store_code!r}.")
        if secret is not None and len(secret) < WEBHOOK_SECRET_MIN_LENGTH:
            raise CommandError(f"A webhook secret must be at least {WEBHOOK_SECRET_MIN_LENGTH} characters.")
        generated = secret is None
        secret = secret or secrets.token_urlsafe(32)
        connection = TrackingConnection.objects.filter(
            store=store, provider=provider
        ).first() or TrackingConnection(store=store, provider=provider)
        created = connection.pk is None
        if carriers is not None:
            try:
                connection.carriers = connection_carriers_clean(
                    carriers, store_id=store.pk, exclude=connection.pk
                )
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
        # Options not given keep what the connection has.
        connection_credentials_apply(
            connection, webhook_secret=secret, api_key=api_key or "",
            settings={name: value for name, value in (("business_id", business_id), ("customer", customer)) if value},
        )  # fmt: skip
        connection.save()
        if carriers is not None:
            registrations_rewind(store_id=store.pk)  # the store's parcels are shared out anew
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} {connection}.")
        url = f"{base_url.rstrip('/')}{connection.webhook_path}" if base_url else connection.webhook_url
        self.stdout.write(f"Webhook URL: {url}")
        if generated and provider == ProviderName.KUAIDI100:
            # Sent as the salt with every subscription: nothing to copy into Kuaidi100's dashboard.
            self.stdout.write(
                f"Webhook secret (shown once; sent to Kuaidi100 with every subscription): {secret}"
            )
        elif generated:
            self.stdout.write(f"Webhook secret (shown once, store it in the provider's dashboard): {secret}")
