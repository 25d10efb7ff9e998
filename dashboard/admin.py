"""Django admin (staff only): users, roles (groups) and their permissions, API tokens can be revoked, audit events
only read."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse

from scaling.audit import Actor, account_changes_by
from scaling.models import ApiToken, AuditEvent
from scaling.tokens import token_revoke

admin.site.unregister(User)
admin.site.unregister(Group)


class AccountChangesAudited(admin.ModelAdmin):
    """Names the administrator as who made each account change the audit log records (dashboard/signals.py)."""

    REASON = "changed in the Django admin"

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        with account_changes_by(Actor.for_user(request.user), self.REASON):
            super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool) -> None:
        with account_changes_by(Actor.for_user(request.user), self.REASON):
            super().save_related(request, form, formsets, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with account_changes_by(Actor.for_user(request.user), self.REASON):
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with account_changes_by(Actor.for_user(request.user), self.REASON):
            super().delete_queryset(request, queryset)


@admin.register(User)
class AuditedUserAdmin(AccountChangesAudited, UserAdmin):
    """Django's user admin: roles, flags, own permissions and passwords changed here are audited as the admin's."""

    def user_change_password(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with account_changes_by(Actor.for_user(request.user), self.REASON):
            return super().user_change_password(request, *args, **kwargs)


@admin.register(Group)
class AuditedGroupAdmin(AccountChangesAudited, GroupAdmin):
    """Django's group admin (Tipoff's roles are groups): permissions granted or taken are audited as the admin's."""


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    exclude = ("token_sha256",)
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are created by their user, who sees the secret once

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row is what the audit events point at

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = sum(
            token_revoke(token=t, actor=Actor.for_user(request.user)) for t in queryset.select_related("user")
        )
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only (see docs/security.md)."""

    list_display = ("id", "created_at", "actor_label", "event_type", "service", "object_type", "object_id")
    list_filter = ("event_type", "actor_type")
    search_fields = ("reason", "actor_label", "object_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
