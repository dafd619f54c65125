from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = _("Cases")

    def ready(self) -> None:
        post_migrate.connect(_shipped_rows_ensure, sender=self)


def _shipped_rows_ensure(sender, **kwargs) -> None:
    """After every migrate (and a test database's flush): the appeal scenarios Afterdesk ships exist, a new
    version's new ones included. A store's own are left alone."""
    from cases.appeals import appeal_scenarios_ensure

    appeal_scenarios_ensure()
