"""The project's URLs with single sign-on switched on (settings decide that at import time)."""

from __future__ import annotations

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [path("oidc/", include("mozilla_django_oidc.urls")), *project_urlpatterns]
