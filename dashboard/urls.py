from __future__ import annotations

from django.urls import path

from dashboard import audit, decisions, policy, services_admin, views, whatif
from dashboard import calendar as calendar_views
from dashboard import overrides as override_views

app_name = "dashboard"

OVERRIDE_URLS = [
    path("overrides/", override_views.overrides_list, name="overrides"),
    path("overrides/new/", override_views.override_new, name="override-new"),
    path("overrides/preview/", override_views.override_preview, name="override-preview"),
    path("overrides/<int:pk>/cancel/", override_views.override_cancel_view, name="override-cancel"),
    path("overrides/<int:pk>/extend/", override_views.override_extend_view, name="override-extend"),
    path("overrides/<int:pk>/approve/", override_views.override_approve_view, name="override-approve"),
    path("overrides/<int:pk>/reject/", override_views.override_reject_view, name="override-reject"),
    path("rules/", override_views.rules_list, name="rules"),
    path("rules/new/", override_views.rule_edit, name="rule-new"),
    path("rules/<int:pk>/edit/", override_views.rule_edit, name="rule-edit"),
    path("rules/<int:pk>/delete/", override_views.rule_delete_view, name="rule-delete"),
    path("calendar/", calendar_views.calendar, name="calendar"),
    path("calendar/import/", calendar_views.schedule_upload, name="schedule-import"),
]

urlpatterns = [
    path("audit/", audit.audit_list, name="audit"),
    path("audit/export.csv", audit.audit_csv, name="audit-csv"),
    path("", views.fleet, name="fleet"),
    path("fleet/charts.json", views.fleet_charts, name="fleet-charts"),
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

urlpatterns += OVERRIDE_URLS
