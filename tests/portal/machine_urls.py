"""URLs for tests/portal/test_middleware.py: a marked and an ordinary view under /webhooks/."""

from django.db import OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import include, path

from portal.middleware import machine_endpoint


@machine_endpoint
def machine_view(request: HttpRequest, word: str) -> JsonResponse:
    if word == "missing":
        raise Http404("No such thing.")
    if word == "database-down":
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
    return JsonResponse(
        {
            "word": word,
            "url_name": request.resolver_match.url_name,
            "has_session": hasattr(request, "session"),
            "has_user": hasattr(request, "user"),
        }
    )


def browser_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": str(request.user), "has_session": hasattr(request, "session")})


urlpatterns = [
    path("webhooks/machine/<slug:word>/", machine_view, name="machine"),
    path("webhooks/browser/", browser_view, name="browser"),
    path("", include("portal.urls")),
]
