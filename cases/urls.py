from django.urls import path

from cases import compensation_views, template_views, views

app_name = "cases"
urlpatterns = [
    path("", views.case_list, name="list"),
    path("counts/", views.queue_counts, name="counts"),
    path("bulk/", views.cases_bulk, name="bulk"),
    path("<int:pk>/", views.case_detail, name="detail"),
    path("<int:pk>/timeline/", views.case_timeline_partial, name="timeline"),
    path("<int:pk>/parcel/", views.case_parcel_partial, name="parcel"),
    path("<int:pk>/next/", views.case_next, name="next"),
    path("<int:pk>/claim/", views.case_claim_view, name="claim"),
    path("<int:pk>/assign/", views.case_assign_view, name="assign"),
    path("<int:pk>/status/", views.case_status_view, name="status"),
    path("<int:pk>/resolve/", views.case_resolve_view, name="resolve"),
    path("<int:pk>/reopen/", views.case_reopen_view, name="reopen"),
    path("<int:pk>/note/", views.case_note_view, name="note"),
    path("<int:pk>/message/preview/", views.case_message_preview, name="message_preview"),
    path("<int:pk>/message/", views.case_message_send, name="message_send"),
    path("<int:pk>/offer/", views.case_offer_view, name="offer"),
    path("<int:pk>/compensate/", views.case_compensate_view, name="compensate"),
    path("<int:pk>/buyer-choice/", views.case_buyer_choice_view, name="buyer_choice"),
    path("<int:pk>/carrier-claim/", views.case_claim_open_view, name="carrier_claim"),
    path("compensations/<int:pk>/approve/", views.compensation_approve_view, name="compensation_approve"),
    path("compensations/<int:pk>/reject/", views.compensation_reject_view, name="compensation_reject"),
    path("compensations/<int:pk>/cancel/", views.compensation_cancel_view, name="compensation_cancel"),
    path("compensations/<int:pk>/result/", views.compensation_result_view, name="compensation_result"),
    path("compensations.csv", compensation_views.ledger_export_view, name="ledger_export"),
    path("approvals/", compensation_views.approvals_view, name="approvals"),
    path("approvals/decide/", compensation_views.approvals_decide_view, name="approvals_decide"),
    path("claims/", compensation_views.claims_view, name="claims"),
    path("claims.csv", compensation_views.claims_export_view, name="claims_export"),
    path("claims/<int:pk>/move/", compensation_views.claim_move_view, name="claim_move"),
]
urlpatterns += [
    path("templates/", template_views.template_list, name="template_list"),
    path("templates/new/", template_views.template_new, name="template_new"),
    path("templates/preview/", template_views.template_preview_view, name="template_preview"),
    path("templates/<int:pk>/edit/", template_views.template_edit, name="template_edit"),
    path("templates/<int:pk>/duplicate/", template_views.template_duplicate_view, name="template_duplicate"),
    path("templates/<int:pk>/active/", template_views.template_active_view, name="template_active"),
]
