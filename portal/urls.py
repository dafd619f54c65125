from csp.constants import SELF
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal import import_views, views
from tracking import views as tracking_views

store_patterns = [
    path("", views.store_list, name="list"),
    path("<slug:code>/", views.store_detail, name="detail"),
    path("<slug:code>/members/add/", views.store_member_add, name="member_add"),
    path("<slug:code>/members/<int:pk>/role/", views.store_member_role, name="member_role"),
    path("<slug:code>/members/<int:pk>/remove/", views.store_member_remove, name="member_remove"),
    path("<slug:code>/api-keys/", views.store_api_key_create, name="api_key_create"),
    path("<slug:code>/api-keys/<int:pk>/revoke/", views.store_api_key_revoke, name="api_key_revoke"),
    path("<slug:code>/webhooks/", views.store_webhook_create, name="webhook_create"),
    path("<slug:code>/webhooks/<int:pk>/", views.store_webhook_detail, name="webhook"),
    path("<slug:code>/webhooks/<int:pk>/change/", views.store_webhook_change, name="webhook_change"),
    path(
        "<slug:code>/webhooks/<int:pk>/deliveries/<int:delivery_pk>/redeliver/",
        views.store_webhook_redeliver,
        name="webhook_redeliver",
    ),
    path("<slug:code>/imports/", import_views.import_list, name="imports"),
    path("<slug:code>/imports/<int:pk>/", import_views.import_detail, name="import"),
    path("<slug:code>/imports/<int:pk>/columns/", import_views.import_mapping, name="import_mapping"),
    path("<slug:code>/imports/<int:pk>/confirm/", import_views.import_confirm_view, name="import_confirm"),
    path("<slug:code>/imports/<int:pk>/cancel/", import_views.import_cancel_view, name="import_cancel"),
    path("<slug:code>/imports/<int:pk>/refused.csv", import_views.import_refused_csv, name="import_refused"),
]

urlpatterns = [
    # First: the busiest URL by far (every carrier push), resolved before the includes are tried.
    path(
        "webhooks/tracking/<str:provider>/<uuid:uuid>/",
        tracking_views.tracking_webhook,
        name="tracking-webhook",
    ),
    path("", RedirectView.as_view(pattern_name="cases:list", permanent=False), name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("livez", views.livez, name="livez"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("cases/", include("cases.urls")),
    path("tracking/", include("tracking.urls")),
    path("reports/", include("cases.reporting.urls")),
    path("stores/", include((store_patterns, "stores"))),
    path("api/v1/", include("portal.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script from a URL (?script) instead of inline, for the CSP; Swagger
    # UI's stylesheet draws its icons from data: URLs, allowed as images on this page only.
    path(
        "api/docs/",
        csp_update({"img-src": [SELF, "data:"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="portal/api_docs.html")
        ),
        name="api-docs",
    ),
]

admin.site.site_header = "Afterdesk"
admin.site.site_title = "Afterdesk admin"
