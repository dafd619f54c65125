from django.urls import path

from tracking import views

app_name = "tracking"
urlpatterns = [
    path("shipments/<int:pk>/", views.shipment_detail, name="shipment"),
    path("shipments/<int:pk>/refresh/", views.shipment_refresh, name="shipment-refresh"),
]
