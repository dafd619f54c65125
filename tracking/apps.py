from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = _("Tracking")

    def ready(self) -> None:
        from tracking.providers import ratelimit
        from tracking.quota import database_quota

        # Provider quotas are per account: every process draws on one balance kept in the database.
        ratelimit.use_bucket_factory(database_quota)
