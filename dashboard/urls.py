from __future__ import annotations

from django.urls import path

from dashboard import audit, decisions, policy, services_admin, views, whatif

app_name = "dashboard"

urlpatterns = [
    path("audit/", audit.audit_list, name="audit"),
    path("audit/export.csv", audit.audit_csv, name="audit-csv"),
    path("", views.fleet, name="fleet"),
    # Before services/<slug:name>/, which would otherwise take "new" as a name.
    path("services/new/", services_admin.service_new, name="service-new"),
    path("services/test-connection/", services_admin.service_test_connection, name="service-test-connection"),
    path("services/<slug:name>/edit/", services_admin.service_edit, name="service-edit"),
    path("services/<slug:name>/", views.service_detail, name="service"),
    path("services/<slug:name>/charts.json", views.service_charts, name="service-charts"),
    path("services/<slug:name>/mode/", policy.service_mode, name="service-mode"),
    path("services/<slug:name>/policy/", policy.policy_detail, name="policy"),
    path("services/<slug:name>/policy/edit/", policy.policy_edit, name="policy-edit"),
    path(
        "services/<slug:name>/policy/revisions/<int:version>/restore/",
        policy.policy_restore,
        name="policy-restore",
    ),
    path("decisions/<int:decision_id>/", decisions.decision_detail, name="decision"),
    path("services/<slug:name>/whatif/", whatif.whatif, name="whatif"),
]
