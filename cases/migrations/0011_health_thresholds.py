"""The platforms' published store-health thresholds, as platform defaults (store empty).

The values are frozen here as they were read when this was written; admins change them in the admin or on
/reports/health/<store>/thresholds/ (a store's own row overrides the default). Sources and their conflicts are
discussed in cases/reporting/health.py.
"""

from decimal import Decimal

from django.db import migrations

TIKTOK_LDR = "https://seller-us.tiktok.com/university/essay?knowledge_id=3668989549299511"
SHOPEE_LSR = "https://lehleo.com/attention-shopee-to-adjust-merchant-shipping-policies-as-of-june-17th/"
SHOPEE_NFR = "https://www.shopeefunnel.online/2023/06/apakah-non-fulfilment-rate-nfr.html"

# (platform, metric, window days, recommended at most %, penalised above %, source)
DEFAULTS = [
    ("tiktok_shop", "late_dispatch", 7, Decimal("4"), Decimal("10"), TIKTOK_LDR),
    ("shopee", "late_shipment", 7, Decimal("5"), Decimal("10"), SHOPEE_LSR),
    ("shopee", "non_fulfilment", 7, Decimal("5"), Decimal("10"), SHOPEE_NFR),
]


def write_defaults(apps, schema_editor):
    HealthThreshold = apps.get_model("cases", "HealthThreshold")
    for platform, metric, window, recommended, penalty, source in DEFAULTS:
        HealthThreshold.objects.update_or_create(
            store=None,
            platform=platform,
            metric=metric,
            defaults={
                "window_days": window,
                "recommended_percent": recommended,
                "penalty_percent": penalty,
                "source": source,
            },
        )


def remove_defaults(apps, schema_editor):
    HealthThreshold = apps.get_model("cases", "HealthThreshold")
    for platform, metric, *_ in DEFAULTS:
        HealthThreshold.objects.filter(store=None, platform=platform, metric=metric).delete()


class Migration(migrations.Migration):
    dependencies = [("cases", "0010_reporting")]

    operations = [migrations.RunPython(write_defaults, remove_defaults)]
