from django.urls import path

from cases.reporting import health_views, live_views, views

app_name = "reports"

urlpatterns = [
    path("", views.report_page, name="index"),
    path("export/<slug:table>.csv", views.report_csv, name="csv"),
    # Store health (health_views)
    path("health/", health_views.health_index, name="health"),
    path("health/<slug:code>/", health_views.health_store, name="health_store"),
    path("health/<slug:code>/thresholds/", health_views.thresholds_edit, name="thresholds"),
    # Live sessions: war room and post-live review (live_views)
    path("live/", live_views.live_list, name="live_list"),
    path("live/compare/", live_views.review_compare, name="live_compare"),
    path("live/<int:pk>/", live_views.war_room, name="war_room"),
    path("live/<int:pk>/boards/", live_views.war_room_boards, name="war_room_boards"),
    path("live/<int:pk>/review/", live_views.review_page, name="live_review"),
    path("live/<int:pk>/review.pdf", live_views.review_pdf, name="live_review_pdf"),
]
