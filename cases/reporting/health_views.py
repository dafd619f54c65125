"""Store health pages: /reports/health/ (the user's stores, each metric now and projected),
/reports/health/<store>/ (one store: the metrics, the projection, the save list) and
/reports/health/<store>/thresholds/ (the levels: supervisors see them, store admins set the store's own).

For supervisors and admins: an agent gets a 403 (as on the other supervisor pages), and a store the user does
not supervise or administer is a 404. The figures come from cases.reporting.health.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from cases.reporting.health import (
    MAX_WINDOW_DAYS,
    SAVE_HOURS,
    SAVE_HOURS_DEFAULT,
    SAVE_PAGE_SIZE,
    Levels,
    health_store_get_for_user,
    health_stores_for_user,
    save_list,
    store_health,
    threshold_rows,
    thresholds_set,
    user_edits_thresholds,
)
from cases.reporting.models import HealthMetric, HealthThreshold
from cases.workflow import MANAGER_ROLES
from portal.selectors import store_ids_with_roles


def _manager_require(request: HttpRequest) -> None:
    if not store_ids_with_roles(request.user, MANAGER_ROLES):
        raise PermissionDenied(_("Store health is for supervisors and admins."))


class SaveListForm(forms.Form):
    hours = forms.TypedChoiceField(choices=[(str(h), str(h)) for h in SAVE_HOURS], coerce=int, required=False)
    late = forms.BooleanField(required=False)
    page = forms.IntegerField(min_value=1, required=False)


class LevelsForm(forms.Form):
    own = forms.BooleanField(label=gettext_lazy("Use this store's own levels"), required=False)
    window_days = forms.IntegerField(
        label=gettext_lazy("Window (days)"), min_value=1, max_value=MAX_WINDOW_DAYS, required=False
    )
    recommended_percent = forms.DecimalField(
        label=gettext_lazy("Recommended at most (%)"), min_value=Decimal("0"), max_value=Decimal("100"),
        max_digits=5, decimal_places=2, required=False,
    )  # fmt: skip
    penalty_percent = forms.DecimalField(
        label=gettext_lazy("Penalised above (%)"), min_value=Decimal("0.01"), max_value=Decimal("100"),
        max_digits=5, decimal_places=2, required=False,
    )  # fmt: skip

    def clean(self):
        data = super().clean()
        if not data.get("own"):
            return data
        if data.get("window_days") is None and "window_days" not in self.errors:
            self.add_error("window_days", _("Give the window in days."))
        if data.get("penalty_percent") is None and "penalty_percent" not in self.errors:
            self.add_error("penalty_percent", _("Give the level above which the platform penalises."))
        recommended, penalty = data.get("recommended_percent"), data.get("penalty_percent")
        if recommended is not None and penalty is not None and recommended > penalty:
            self.add_error(
                "recommended_percent", _("The recommended level cannot be above the penalty level.")
            )
        return data

    def levels(self) -> Levels | None:
        data = self.cleaned_data
        if not data.get("own"):
            return None
        return Levels(data["window_days"], data.get("recommended_percent"), data["penalty_percent"])


def _initial(row: HealthThreshold | None, own: bool) -> dict:
    if row is None:
        return {"own": own}
    return {"own": own, "window_days": row.window_days, "recommended_percent": row.recommended_percent,
            "penalty_percent": row.penalty_percent}  # fmt: skip


@require_GET
@never_cache
@login_required
def health_index(request: HttpRequest) -> HttpResponse:
    """The stores the user supervises or administers, each metric now and projected, with its status."""
    _manager_require(request)
    now = timezone.now()
    rows = [store_health(store, now=now) for store in health_stores_for_user(request.user)]
    return render(request, "reports/health_index.html", {"rows": rows, "now": now})


@require_GET
@never_cache
@login_required
def health_store(request: HttpRequest, code: str) -> HttpResponse:
    """One store: its metrics now and projected, the orders still to ship, and the save list."""
    _manager_require(request)
    store = health_store_get_for_user(request.user, code)
    form = SaveListForm(request.GET)
    status, error = 200, ""
    if not form.is_valid():
        status = 400
        error = _("Choose the save list's hours among %(hours)s, and a page number from 1.") % {
            "hours": ", ".join(str(h) for h in SAVE_HOURS)
        }
        form = SaveListForm({})
        form.is_valid()
    hours = form.cleaned_data.get("hours") or SAVE_HOURS_DEFAULT
    late = bool(form.cleaned_data.get("late"))
    now = timezone.now()
    health = store_health(store, now=now)
    orders = save_list(store, now=now, hours=hours, late=late, stale_days=health.window_days)
    page = Paginator(orders, SAVE_PAGE_SIZE).get_page(form.cleaned_data.get("page") or 1)
    context = {
        "store": store, "health": health, "now": now, "hours": hours, "late": late, "page": page,
        "hour_choices": SAVE_HOURS, "error": error, "edits_thresholds": user_edits_thresholds(request.user, store),
    }  # fmt: skip
    return render(request, "reports/health.html", context, status=status)


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
def thresholds_edit(request: HttpRequest, code: str) -> HttpResponse:
    """The levels the store is judged by: the platform's defaults and the store's own. Supervisors see them;
    the store's admins set them (a bad level is a form error and nothing is written)."""
    _manager_require(request)
    store = health_store_get_for_user(request.user, code)
    rows = threshold_rows(store)
    editable = user_edits_thresholds(request.user, store)
    forms_by_metric = {
        metric: LevelsForm(prefix=metric, initial=_initial(own or default, own is not None))
        for metric, (default, own) in rows.items()
    }
    status = 200
    if request.method == "POST":
        if not editable:
            raise PermissionDenied(_("Only the store's admins change its thresholds."))
        forms_by_metric = {metric: LevelsForm(request.POST, prefix=metric) for metric in rows}
        valid = [form.is_valid() for form in forms_by_metric.values()]  # every form, for every error
        if all(valid):
            try:
                thresholds_set(
                    store=store, actor=request.user,
                    levels={metric: form.levels() for metric, form in forms_by_metric.items()},
                )  # fmt: skip
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
                status = 400
            else:
                messages.success(request, _("The store's thresholds are saved."))
                return redirect("reports:thresholds", code=store.code)
        else:
            status = 400
    table = [
        {"metric": metric, "label": HealthMetric(metric).label, "default": default, "own": own,
         "form": forms_by_metric[metric]}
        for metric, (default, own) in rows.items()
    ]  # fmt: skip
    context = {"store": store, "table": table, "editable": editable}
    return render(request, "reports/thresholds.html", context, status=status)
