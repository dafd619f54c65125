"""Live sessions for supervisors and admins: the list, the war room (its boards refresh themselves), the
post-live review with its PDF, and reviews side by side. Every session comes through a selector scoped to the
user's stores: another store's is a 404, an agent of its store is refused."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from cases.reporting.live import live_session_get_for_manager, live_sessions_for_manager
from cases.reporting.live import war_room as war_room_figures
from cases.reporting.models import LiveReview
from cases.reporting.review import (
    REVIEW_AFTER,
    problem_label,
    recommendation_text,
    review_compare_rows,
    review_sections,
)
from cases.reporting.review_pdf import review_pdf as render_review_pdf
from cases.workflow import MANAGER_ROLES
from portal.selectors import store_ids_with_roles

SESSIONS_PER_PAGE = 50
COMPARE_MIN, COMPARE_MAX = 2, 4


def _manager_require(request: HttpRequest) -> None:
    if not store_ids_with_roles(request.user, MANAGER_ROLES):
        raise PermissionDenied(_("The war room and the post-live reviews are for supervisors and admins."))


@require_GET
@never_cache
@login_required
def live_list(request: HttpRequest) -> HttpResponse:
    """The live sessions of the user's stores, newest first, with their war room and their review."""
    _manager_require(request)
    page = Paginator(live_sessions_for_manager(request.user), SESSIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "reports/live_list.html", {"page": page, "now": timezone.now()})


def _wall(request: HttpRequest) -> bool:
    return request.GET.get("wall") == "1"


@require_GET
@never_cache
@login_required
def war_room(request: HttpRequest, pk: int) -> HttpResponse:
    session = live_session_get_for_manager(request.user, pk)
    context = {"room": war_room_figures(session), "wall": _wall(request)}
    return render(request, "reports/war_room.html", context)


@require_GET
@never_cache
@login_required
def war_room_boards(request: HttpRequest, pk: int) -> HttpResponse:
    """The boards alone: what the war room's polling swaps in every 20 s."""
    session = live_session_get_for_manager(request.user, pk)
    context = {"room": war_room_figures(session), "wall": _wall(request)}
    return render(request, "reports/war_room.html#boards", context)


def _review_context(review: LiveReview) -> dict:
    return {
        "review": review,
        "figures": review.figures,
        "sections": review_sections(review.figures),
        "recommendations": [text for text in map(recommendation_text, review.recommendations) if text],
        "problems": [
            {**problem, "label": problem_label(problem)} for problem in review.figures.get("problems", [])
        ],
        "carriers": [
            {**row, "rate_pct": _pct(row.get("rate")), "usual_pct": _pct(row.get("usual_rate"))}
            for row in review.figures.get("carriers", [])
        ],
    }


def _pct(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


@require_GET
@never_cache
@login_required
def review_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The session's post-live review; until it is written, when it will be."""
    session = live_session_get_for_manager(request.user, pk)
    review = LiveReview.objects.filter(live_session=session).first()
    context = {"session": session, "due_at": session.ended_at + REVIEW_AFTER if session.ended_at else None}
    if review is not None:
        context.update(_review_context(review))
    return render(request, "reports/live_review.html", context)


@require_GET
@login_required
def review_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    session = live_session_get_for_manager(request.user, pk)
    review = LiveReview.objects.filter(live_session=session).first()
    if review is None:
        raise Http404("No review yet.")
    response = HttpResponse(render_review_pdf(review, session=session), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="live-review-{session.pk}.pdf"'
    return response


@require_GET
@never_cache
@login_required
def review_compare(request: HttpRequest) -> HttpResponse:
    """2 to 4 reviews side by side (?s=<session id>&s=...): the same rows, one column per session."""
    _manager_require(request)
    raw = request.GET.getlist("s")
    ids = list(dict.fromkeys(int(value) for value in raw if value.isdigit()))
    sessions = live_sessions_for_manager(request.user)
    error = None
    if len(ids) != len(raw) or not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        error = _("Choose from %(min)d to %(max)d different live sessions to compare.") % {
            "min": COMPARE_MIN, "max": COMPARE_MAX,
        }  # fmt: skip
    else:
        found = {session.pk: session for session in sessions.filter(pk__in=ids)}
        if len(found) != len(ids):
            raise Http404("No such live session.")
        reviews = {r.live_session_id: r for r in LiveReview.objects.filter(live_session_id__in=ids)}
        missing = [found[pk].title for pk in ids if pk not in reviews]
        if missing:
            error = _("No review written yet for: %(titles)s.") % {"titles": ", ".join(missing)}
    if error:
        recent = list(sessions.filter(reviewed_at__isnull=False)[:SESSIONS_PER_PAGE])
        return render(request, "reports/live_compare.html", {"error": error, "recent": recent}, status=400)
    columns = [(found[pk], reviews[pk]) for pk in ids]
    context = {"columns": columns, "rows": review_compare_rows([review for _, review in columns])}
    return render(request, "reports/live_compare.html", context)
