from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = _("Portal")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from portal import checks  # noqa: F401 - registers the system checks
        from portal.middleware import session_mark_active

        user_logged_in.connect(session_mark_active, dispatch_uid="portal.session_mark_active")
