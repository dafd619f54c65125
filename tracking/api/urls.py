from django.urls import path

from tracking.api import views

urlpatterns = [
    path("skus/<str:code>", views.SkuView.as_view(), name="api-sku"),
    path("skus/<str:code>/stock", views.StockView.as_view(), name="api-sku-stock"),
    path("live-sessions/<str:external_id>", views.LiveSessionView.as_view(), name="api-live-session"),
    path("orders/bulk", views.OrdersBulkView.as_view(), name="api-orders-bulk"),
    path("orders/<str:platform_order_id>", views.OrderView.as_view(), name="api-order"),
]
