"""/api/v1/: each app's endpoints, then a problem 404 for any other path under it."""

from django.urls import include, path, re_path

from portal.api.problems import api_not_found
from portal.api.views import StoreView

urlpatterns = [
    path("store", StoreView.as_view(), name="api-store"),
    path("", include("tracking.api.urls")),
    path("", include("cases.api.urls")),
    re_path(r"^[\s\S]*$", api_not_found),  # any character, a newline too
]
