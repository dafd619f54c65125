from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = _("Cases")

    def ready(self) -> None:
        post_migrate.connect(_shipped_rows_ensure, sender=self)
        post_migrate.connect(_queue_count_triggers_ensure, sender=self)


def _shipped_rows_ensure(sender, **kwargs) -> None:
    """After every migrate (and a test database's flush): the appeal scenarios Afterdesk ships exist, a new
    version's new ones included. A store's own are left alone."""
    from cases.appeals import appeal_scenarios_ensure

    appeal_scenarios_ensure()


def _queue_count_triggers_ensure(sender, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """After every migrate: the queue counters' triggers are on the cases table. SQLite drops a table's
    triggers when Django remakes it, which most field changes of Case do (0015_queue_indexes does): then
    they are put back and the counters recounted (cases.queue_counts.queue_count_triggers_ensure)."""
    if using != DEFAULT_DB_ALIAS:
        return
    from cases.queue_counts import queue_count_triggers_ensure

    queue_count_triggers_ensure()
