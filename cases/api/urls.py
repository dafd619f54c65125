from django.urls import path

from cases.api import views

urlpatterns = [
    path("cases", views.CaseListView.as_view(), name="api-cases"),
    path("cases/<int:id>", views.CaseView.as_view(), name="api-case"),
    path("cases/<int:id>/notes", views.CaseNoteView.as_view(), name="api-case-notes"),
    path("cases/<int:id>/buyer-replies", views.BuyerReplyView.as_view(), name="api-case-buyer-replies"),
    path(
        "cases/<int:id>/compensations", views.CaseCompensationsView.as_view(), name="api-case-compensations"
    ),
    path("cases/<int:id>/evidence", views.CaseEvidenceView.as_view(), name="api-case-evidence"),
    path("compensations/<int:id>", views.CompensationView.as_view(), name="api-compensation"),
    path(
        "compensations/<int:id>/result",
        views.CompensationResultView.as_view(),
        name="api-compensation-result",
    ),
    path("complaints", views.ComplaintListView.as_view(), name="api-complaints"),
    path("complaints/classify", views.ClassifyView.as_view(), name="api-complaints-classify"),
    path("events", views.EventListView.as_view(), name="api-events"),
    path("events/<int:id>/ack", views.EventAckView.as_view(), name="api-event-ack"),
    path("webhook-endpoints", views.EndpointListView.as_view(), name="api-webhook-endpoints"),
    path("webhook-endpoints/<int:id>", views.EndpointView.as_view(), name="api-webhook-endpoint"),
    path(
        "webhook-endpoints/<int:id>/deliveries",
        views.DeliveryListView.as_view(),
        name="api-webhook-endpoint-deliveries",
    ),
    path(
        "webhook-endpoints/<int:id>/deliveries/<int:delivery_id>/redeliver",
        views.RedeliverView.as_view(),
        name="api-webhook-delivery-redeliver",
    ),
]
