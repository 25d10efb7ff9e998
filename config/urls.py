from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.api import api

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="login.html", extra_context={"oidc_enabled": settings.OIDC_ENABLED}),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", include("dashboard.access_urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("dashboard.urls")),
]

if settings.OIDC_ENABLED:  # single sign-on (docs/security.md)
    urlpatterns.insert(0, path("oidc/", include("mozilla_django_oidc.urls")))
