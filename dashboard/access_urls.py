from __future__ import annotations

from django.urls import path

from dashboard import access

app_name = "access"

urlpatterns = [
    path("confirm-password/", access.confirm_password, name="confirm-password"),
    path("tokens/", access.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", access.token_revoke_view, name="token-revoke"),
]
