"""Access events into the audit log: logins, failed logins, lockouts, logouts, and account changes.

Receivers only translate the signal into one audit_record call: in its own
transaction for the access events, which happen outside any change; inside the
change's transaction for an account change, so the two commit together.

Accounts change in the Django admin, at a single sign-on (the provider's role claim
replaces the user's groups), from management commands (`changepassword`,
`createsuperuser`, `migrate` resetting the roles) and from the shell; model signals are
the one place all of them pass, so a role granted, a group's permissions edited, a
password set or an account switched off is audited whichever way it was done. A
password changes through several views (the admin's page for setting someone's, its
page for changing your own) and commands, and every one of them ends in the user's save
with a new hash: comparing the hash there is what catches them all, where hooking the
views would miss the commands and the shell.

Who did it comes from `scaling.audit.account_changes_by()`, which the admin and the SSO
backend wrap around their changes, and which `AccountChangerMiddleware` sets to the
signed-in user for any other request; anything else came from a management command or
the shell.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import get_hasher, identify_hasher, is_password_usable
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.http import HttpRequest

from dashboard.permissions import mark_recent_auth
from scaling.audit import Actor, EventType, account_changer, audit_record
from scaling.models import AuditEvent


def _client(request: HttpRequest | None) -> dict[str, str]:
    if request is None:
        return {}
    return {
        "ip": str(request.META.get("REMOTE_ADDR", "")),
        "user_agent": str(request.META.get("HTTP_USER_AGENT", ""))[:200],
    }


def _over_http(request: HttpRequest | None) -> bool:
    # A login with no client address did not come over HTTP (Django's test client
    # force_login, a shell): there is no one at a browser to record.
    return request is not None and bool(request.META.get("REMOTE_ADDR"))


def on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        mark_recent_auth(request)  # typing the password to log in counts as a fresh confirmation
    if not _over_http(request):
        return
    with transaction.atomic():
        audit_record(actor=Actor.for_user(user), event_type=EventType.AUTH_LOGIN, after=_client(request))


def on_logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None or not _over_http(request):
        return
    with transaction.atomic():
        audit_record(actor=Actor.for_user(user), event_type=EventType.AUTH_LOGOUT, after=_client(request))


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username", ""))[:150]
    locked = bool(getattr(request, "axes_locked_out", False))
    actor = Actor(AuditEvent.ActorType.USER, username or "(no username)")
    with transaction.atomic():
        audit_record(
            actor=actor,
            event_type=EventType.AUTH_LOCKED_OUT if locked else EventType.AUTH_LOGIN_FAILED,
            after=_client(request),
            reason="locked out after too many failed logins" if locked else "wrong username or password",
        )


# --- Account changes ----------------------------------------------------------

# The flags that decide whether and how far someone gets in (is_active off also stops their API tokens).
ACCOUNT_FLAGS = ("is_active", "is_staff", "is_superuser")
# What a save of a user is compared on: the flags, and the password hash (never recorded, only whether it changed).
AUDITED_USER_FIELDS = (*ACCOUNT_FLAGS, "password")


def _audit_account(event_type: EventType, object_id: int, *, object_type: str = "user", **values: Any) -> None:
    changer = account_changer()
    with transaction.atomic():
        audit_record(
            actor=changer.actor,
            event_type=event_type,
            object_type=object_type,
            object_id=object_id,
            reason=changer.reason,
            at=changer.at,
            **values,
        )


def _flags(user: Any) -> dict[str, bool]:
    return {flag: bool(getattr(user, flag)) for flag in ACCOUNT_FLAGS}


def on_user_saving(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """Remember the stored flags and password hash the save may change, to compare after it (a save of other
    fields only, like a login's, skips)."""
    saving = set(AUDITED_USER_FIELDS) if update_fields is None else set(update_fields) & set(AUDITED_USER_FIELDS)
    if instance.pk is None or not saving:
        instance._tipoff_stored = None
        return
    instance._tipoff_stored = sender.objects.filter(pk=instance.pk).values(*saving).first()


def _password_changed(stored_hash: str, user: Any, update_fields: Any) -> bool:
    """Whether the save set a password, or switched signing in with one off or on.

    A new hash is not always a new password: at a login after the hasher's settings
    changed, Django's check_password() sets the same password again, clears `_password`
    ("password hash upgrades shouldn't be considered password changes") and saves the
    password alone. And one unusable password replaced by another lets no one in before
    or after (single sign-on does that to the users it creates).
    """
    if stored_hash == user.password:
        return False
    was_usable, usable = _usable(stored_hash), _usable(user.password)
    if not (was_usable or usable):
        return False
    # Django rehashes only a hash its hasher settings have outdated; the same save with a hash that was not
    # outdated (one assigned from the shell) is a new password.
    rehashed = (
        getattr(user, "_password", None) is None and set(update_fields or ()) == {"password"} and _outdated(stored_hash)
    )
    return not (was_usable and usable and rehashed)


def _usable(password_hash: str) -> bool:
    """Whether a stored hash lets anyone sign in: an empty one (an account created without a password) does not,
    though Django's is_password_usable() says yes to it."""
    return bool(password_hash) and is_password_usable(password_hash)


def _outdated(password_hash: str) -> bool:
    """Whether Django would rehash this stored hash at the next login (another hasher, or weaker settings)."""
    try:
        hasher = identify_hasher(password_hash)
    except ValueError:
        return False
    preferred = get_hasher()
    return hasher.algorithm != preferred.algorithm or preferred.must_update(password_hash)


def on_user_saved(sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    username = instance.get_username()
    if created:
        _audit_account(EventType.USER_CREATED, instance.pk, after={"username": username, **_flags(instance)})
        return
    stored = getattr(instance, "_tipoff_stored", None)
    if stored is None:
        return
    after = _flags(instance)
    changed = [flag for flag in ACCOUNT_FLAGS if flag in stored and bool(stored[flag]) != after[flag]]
    if changed:
        _audit_account(
            EventType.USER_UPDATED,
            instance.pk,
            before={"username": username, **{flag: bool(stored[flag]) for flag in changed}},
            after={"username": username, **{flag: after[flag] for flag in changed}},
        )
    if "password" in stored and _password_changed(stored["password"], instance, update_fields):
        _audit_account(
            EventType.USER_PASSWORD_CHANGED,
            instance.pk,
            before={"username": username, "usable_password": _usable(stored["password"])},
            after={"username": username, "usable_password": _usable(instance.password)},
        )


def on_user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    before = {"username": instance.get_username(), **_flags(instance)}
    _audit_account(EventType.USER_DELETED, instance.pk, before=before)


def _group_names(user_ids: set[int]) -> dict[int, set[str]]:
    names: dict[int, set[str]] = {user_id: set() for user_id in user_ids}
    rows = User.groups.through.objects.filter(user_id__in=user_ids).values_list("user_id", "group__name")
    for user_id, name in rows:
        names[user_id].add(name)
    return names


def on_groups_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any) -> None:
    """Groups are users' roles: each user whose groups changed gets one event with the groups before and after.

    A change is a pre_ then a post_ signal; the pre_ one notes the affected users' groups
    on the instance. From a group's side (group.user_set), the users are the pks given,
    or for a clear every member.
    """
    if action.startswith("pre_"):
        if not reverse:
            user_ids = {instance.pk}
        elif action == "pre_clear":
            user_ids = set(instance.user_set.values_list("pk", flat=True))
        else:
            user_ids = set(pk_set or ())
        instance._tipoff_groups_before = _group_names(user_ids)
        return
    before = getattr(instance, "_tipoff_groups_before", None) or {}
    usernames = dict(User.objects.filter(pk__in=before).values_list("pk", "username"))
    for user_id, after in _group_names(set(before)).items():
        if after != before[user_id]:
            username = usernames.get(user_id, "")
            _audit_account(
                EventType.USER_ROLES_CHANGED,
                user_id,
                before={"username": username, "groups": sorted(before[user_id])},
                after={"username": username, "groups": sorted(after)},
            )


def _permission_names(through: Any, holder_field: str, holder_ids: set[int]) -> dict[int, set[str]]:
    """Each group's or user's own permissions, as app_label.codename."""
    names: dict[int, set[str]] = {holder_id: set() for holder_id in holder_ids}
    rows = through.objects.filter(**{f"{holder_field}__in": holder_ids}).values_list(
        holder_field, "permission__content_type__app_label", "permission__codename"
    )
    for holder_id, app_label, codename in rows:
        names[holder_id].add(f"{app_label}.{codename}")
    return names


def on_permissions_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any) -> None:
    """A group's permissions (what every member may do), or a user's own: one event per group or user whose
    permissions changed, with them before and after and the ones added and removed.

    As for roles, the pre_ signal notes the permissions before. From a permission's side
    (permission.group_set, permission.user_set) the groups or users are the pks given, or
    for a clear every holder.
    """
    holder = "group" if sender is Group.permissions.through else "user"
    holder_field, noted = f"{holder}_id", f"_tipoff_{holder}_permissions_before"
    if action.startswith("pre_"):
        if not reverse:
            holder_ids = {instance.pk}
        elif action == "pre_clear":
            holder_ids = set(sender.objects.filter(permission_id=instance.pk).values_list(holder_field, flat=True))
        else:
            holder_ids = set(pk_set or ())
        setattr(instance, noted, _permission_names(sender, holder_field, holder_ids))
        return
    before = getattr(instance, noted, None) or {}
    if holder == "group":
        event_type, name_key = EventType.GROUP_PERMISSIONS_CHANGED, "group"
        names = dict(Group.objects.filter(pk__in=before).values_list("pk", "name"))
    else:
        event_type, name_key = EventType.USER_PERMISSIONS_CHANGED, "username"
        names = dict(User.objects.filter(pk__in=before).values_list("pk", "username"))
    for holder_id, after in _permission_names(sender, holder_field, set(before)).items():
        if after == before[holder_id]:
            continue
        name = names.get(holder_id, "")
        _audit_account(
            event_type,
            holder_id,
            object_type=holder,
            before={name_key: name, "permissions": sorted(before[holder_id])},
            after={
                name_key: name,
                "permissions": sorted(after),
                "added": sorted(after - before[holder_id]),
                "removed": sorted(before[holder_id] - after),
            },
        )


def on_group_deleting(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Deleting a group takes its permissions from its members with no m2m signal: record both while they exist."""
    permissions = _permission_names(Group.permissions.through, "group_id", {instance.pk})[instance.pk]
    members = instance.user_set.order_by("username").values_list("username", flat=True)
    _audit_account(
        EventType.GROUP_DELETED,
        instance.pk,
        object_type="group",
        before={"group": instance.name, "permissions": sorted(permissions), "members": list(members)},
    )


def connect() -> None:
    from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
    from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

    user_logged_in.connect(on_logged_in, dispatch_uid="tipoff-audit-login")
    user_logged_out.connect(on_logged_out, dispatch_uid="tipoff-audit-logout")
    user_login_failed.connect(on_login_failed, dispatch_uid="tipoff-audit-login-failed")
    pre_save.connect(on_user_saving, sender=User, dispatch_uid="tipoff-audit-user-saving")
    post_save.connect(on_user_saved, sender=User, dispatch_uid="tipoff-audit-user-saved")
    post_delete.connect(on_user_deleted, sender=User, dispatch_uid="tipoff-audit-user-deleted")
    m2m_changed.connect(on_groups_changed, sender=User.groups.through, dispatch_uid="tipoff-audit-user-groups")
    m2m_changed.connect(
        on_permissions_changed, sender=Group.permissions.through, dispatch_uid="tipoff-audit-group-permissions"
    )
    m2m_changed.connect(
        on_permissions_changed, sender=User.user_permissions.through, dispatch_uid="tipoff-audit-user-permissions"
    )
    pre_delete.connect(on_group_deleting, sender=Group, dispatch_uid="tipoff-audit-group-deleting")
