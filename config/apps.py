"""The admin app with Tipoff's own site (as Django's documentation overrides the default one)."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class TipoffAdminConfig(AdminConfig):
    default_site = "dashboard.admin_site.TipoffAdminSite"
