from __future__ import annotations

from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.fleet, name="fleet"),
    path("services/<slug:name>/", views.service_detail, name="service"),
    path("services/<slug:name>/charts.json", views.service_charts, name="service-charts"),
]
