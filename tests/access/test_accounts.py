"""Account changes (flags, roles, groups' and users' permissions, passwords) are audited whichever way they are
made: the Django admin (naming the admin), a page of your own, single sign-on (tests/access/test_oidc.py), a
command or the shell."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.urls import reverse

from scaling.audit import Actor, EventType, verify_chain
from scaling.models import AuditEvent
from scaling.tokens import token_create
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _events(event_type: EventType) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("id"))


def _admin_change_form(client: Client, user: User) -> dict[str, Any]:
    """What the admin's change page would post back unchanged."""
    page = client.get(reverse("admin:auth_user_change", args=[user.pk]))
    form = page.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form.initial.get(name)
        if field.disabled or name in ("last_login", "user_permissions"):
            continue
        if name == "date_joined":
            data |= {"date_joined_0": value.date().isoformat(), "date_joined_1": value.strftime("%H:%M:%S")}
        elif name == "groups":
            data[name] = [str(g.pk) for g in value]
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = value or ""
    return data


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(make_user("boss", "admin"))
    return client


def test_granting_a_role_in_the_django_admin_is_audited_as_the_admin(admin_client: Client) -> None:
    vic = make_user("vic", "viewer")
    data = _admin_change_form(admin_client, vic) | {"groups": [str(Group.objects.get(name="admin").pk)]}

    response = admin_client.post(reverse("admin:auth_user_change", args=[vic.pk]), data)

    assert response.status_code == 302
    events = _events(EventType.USER_ROLES_CHANGED)
    assert [(e.actor_label, (e.before or {})["groups"], (e.after or {})["groups"]) for e in events] == [
        ("boss", ["viewer"], []),
        ("boss", [], ["admin"]),
    ]
    assert {(e.object_type, e.object_id, (e.after or {})["username"]) for e in events} == {("user", str(vic.pk), "vic")}
    assert events[0].reason == "changed in the Django admin"
    assert not _events(EventType.USER_UPDATED)  # no flag changed
    assert verify_chain().ok
    page = admin_client.get(reverse("dashboard:audit") + "?event_type=user").content.decode()
    assert f'href="/admin/auth/user/{vic.pk}/change/"' in page


def test_switching_an_account_off_in_the_django_admin_is_audited(admin_client: Client) -> None:
    op = make_user("op", "operator")
    secret = token_create(user=op, name="ci", days=3, actor=Actor.for_user(op)).secret
    data = _admin_change_form(admin_client, op)
    del data["is_active"]  # an unticked box is not posted

    assert admin_client.post(reverse("admin:auth_user_change", args=[op.pk]), data).status_code == 302

    (event,) = _events(EventType.USER_UPDATED)
    assert (event.actor_label, event.before, event.after) == (
        "boss",
        {"username": "op", "is_active": True},
        {"username": "op", "is_active": False},
    )
    # switching it off is what stops the tokens: say so where the change is recorded
    assert Client().get("/api/services", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_adding_and_deleting_a_user_in_the_django_admin_is_audited(admin_client: Client) -> None:
    password = "a-long-new-password-1"
    add = {"username": "newbie", "password1": password, "password2": password, "usable_password": "true"}
    assert admin_client.post(reverse("admin:auth_user_add"), add).status_code == 302
    newbie = User.objects.get(username="newbie")
    admin_client.post(reverse("admin:auth_user_delete", args=[newbie.pk]), {"post": "yes"})

    (created,) = _events(EventType.USER_CREATED)
    assert created.actor_label == "boss" and created.after == {
        "username": "newbie",
        "is_active": True,
        "is_staff": False,
        "is_superuser": False,
    }
    (deleted,) = _events(EventType.USER_DELETED)
    assert deleted.actor_label == "boss" and (deleted.before or {})["username"] == "newbie"


def test_a_change_from_the_shell_is_audited_as_the_system() -> None:
    vic = make_user("vic", "viewer")
    vic.is_superuser = True
    vic.save()
    Group.objects.get(name="admin").user_set.add(vic)  # from the group's side
    Group.objects.get(name="viewer").user_set.clear()

    (flag,) = _events(EventType.USER_UPDATED)
    assert (flag.actor_label, flag.after) == ("system:manage.py", {"username": "vic", "is_superuser": True})
    roles = _events(EventType.USER_ROLES_CHANGED)
    assert [((e.before or {})["groups"], (e.after or {})["groups"]) for e in roles] == [
        (["viewer"], ["admin", "viewer"]),
        (["admin", "viewer"], ["admin"]),
    ]


def test_a_login_or_a_save_that_changes_no_flag_or_role_writes_no_account_event(client: Client) -> None:
    vic = make_user("vic", "viewer")
    client.post(reverse("login"), {"username": "vic", "password": "pw-for-tests-1"})  # saves last_login only
    vic.first_name = "Vic"
    vic.save()
    vic.groups.add(Group.objects.get(name="viewer"))  # already there

    assert not AuditEvent.objects.filter(event_type__startswith="user.").exists()


# --- Groups' permissions (Tipoff's roles are groups) -------------------------


def _permission(name: str) -> Permission:
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def test_editing_a_groups_permissions_in_the_django_admin_is_audited_as_the_admin(admin_client: Client) -> None:
    viewer = Group.objects.get(name="viewer")
    before = sorted(f"{p.content_type.app_label}.{p.codename}" for p in viewer.permissions.all())
    kept = [p for p in viewer.permissions.all() if p.codename != "view_auditevent"]
    granted = [*kept, _permission("scaling.operate")]
    data = {"name": "viewer", "permissions": [str(p.pk) for p in granted]}

    response = admin_client.post(reverse("admin:auth_group_change", args=[viewer.pk]), data)

    assert response.status_code == 302
    events = _events(EventType.GROUP_PERMISSIONS_CHANGED)
    assert [(e.actor_label, e.reason, (e.after or {})["added"], (e.after or {})["removed"]) for e in events] == [
        ("boss", "changed in the Django admin", [], ["scaling.view_auditevent"]),
        ("boss", "changed in the Django admin", ["scaling.operate"], []),
    ]
    assert {(e.object_type, e.object_id, (e.after or {})["group"]) for e in events} == {
        ("group", str(viewer.pk), "viewer")
    }
    assert (events[0].before or {})["permissions"] == before
    assert "scaling.operate" in (events[-1].after or {})["permissions"]
    assert verify_chain().ok
    page = admin_client.get(reverse("dashboard:audit") + "?event_type=group").content.decode()
    assert f'href="/admin/auth/group/{viewer.pk}/change/"' in page


def test_a_groups_permissions_changed_from_the_shell_either_side_are_audited_as_the_system() -> None:
    operator = Group.objects.get(name="operator")
    _permission("scaling.approve").group_set.add(operator)  # from the permission's side
    operator.permissions.clear()

    events = _events(EventType.GROUP_PERMISSIONS_CHANGED)
    assert [(e.actor_label, (e.after or {})["added"]) for e in events] == [
        ("system:manage.py", ["scaling.approve"]),
        ("system:manage.py", []),
    ]
    assert (events[1].after or {})["permissions"] == [] and "scaling.operate" in (events[1].after or {})["removed"]


def test_migrate_taking_back_a_grant_made_by_hand_is_audited_and_an_untouched_role_writes_nothing() -> None:
    from dashboard.permissions import ensure_roles

    ensure_roles()
    assert not _events(EventType.GROUP_PERMISSIONS_CHANGED)
    Group.objects.get(name="viewer").permissions.add(_permission("scaling.administer"))

    ensure_roles()

    granted, taken_back = _events(EventType.GROUP_PERMISSIONS_CHANGED)
    assert (granted.actor_label, (granted.after or {})["added"]) == ("system:manage.py", ["scaling.administer"])
    assert (taken_back.actor_label, (taken_back.after or {})["removed"]) == (
        "system:ensure_roles",
        ["scaling.administer"],
    )


def test_deleting_a_group_in_the_django_admin_records_its_permissions_and_members(admin_client: Client) -> None:
    on_call = Group.objects.create(name="on-call")
    on_call.permissions.add(_permission("scaling.operate"))
    make_user("vic", "viewer").groups.add(on_call)

    admin_client.post(reverse("admin:auth_group_delete", args=[on_call.pk]), {"post": "yes"})

    assert not Group.objects.filter(name="on-call").exists()
    (deleted,) = _events(EventType.GROUP_DELETED)
    assert (deleted.actor_label, deleted.object_id, deleted.before) == (
        "boss",
        str(on_call.pk),
        {"group": "on-call", "permissions": ["scaling.operate"], "members": ["vic"]},
    )


def test_a_permission_given_to_a_user_directly_is_audited() -> None:
    vic = make_user("vic", "viewer")
    vic.user_permissions.add(_permission("scaling.administer"))

    (event,) = _events(EventType.USER_PERMISSIONS_CHANGED)
    assert (event.object_type, event.object_id, event.before, event.after) == (
        "user",
        str(vic.pk),
        {"username": "vic", "permissions": []},
        {"username": "vic", "permissions": ["scaling.administer"], "added": ["scaling.administer"], "removed": []},
    )


# --- Passwords -----------------------------------------------------------------

NEW_PASSWORD = "a-long-new-password-1"


def _says_nothing_secret(event: AuditEvent, user: User) -> None:
    from scaling.audit import canonical

    user.refresh_from_db()
    recorded = canonical(event.payload()).decode()
    assert NEW_PASSWORD not in recorded and user.password not in recorded and "pbkdf2" not in recorded


def test_an_admin_setting_someones_password_is_audited_without_the_password(admin_client: Client) -> None:
    vic = make_user("vic", "viewer")
    data = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}

    response = admin_client.post(reverse("admin:auth_user_password_change", args=[vic.pk]), data)

    assert response.status_code == 302
    (event,) = _events(EventType.USER_PASSWORD_CHANGED)
    assert (event.actor_label, event.reason, event.object_type, event.object_id) == (
        "boss",
        "changed in the Django admin",
        "user",
        str(vic.pk),
    )
    assert (event.before, event.after) == (
        {"username": "vic", "usable_password": True},
        {"username": "vic", "usable_password": True},
    )
    _says_nothing_secret(event, vic)


def test_an_admin_switching_off_someones_password_is_audited(admin_client: Client) -> None:
    vic = make_user("vic", "viewer")

    off = {"usable_password": "false", "unset-password": "1"}  # the page's "Disable password-based authentication"
    admin_client.post(reverse("admin:auth_user_password_change", args=[vic.pk]), off)

    (event,) = _events(EventType.USER_PASSWORD_CHANGED)
    assert (event.actor_label, (event.after or {})["usable_password"]) == ("boss", False)


def test_changing_your_own_password_is_audited_as_you(client: Client) -> None:
    boss = make_user("boss", "admin")
    client.force_login(boss)
    data = {"old_password": "pw-for-tests-1", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}

    response = client.post(reverse("admin:password_change"), data)

    assert response.status_code == 302
    (event,) = _events(EventType.USER_PASSWORD_CHANGED)
    assert (event.actor_label, event.actor_user_id, event.object_id) == ("boss", boss.pk, str(boss.pk))
    assert event.reason == "changed by a signed-in request: POST /admin/password_change/"
    _says_nothing_secret(event, boss)


def test_manage_py_changepassword_is_audited_as_the_system(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.management import call_command

    vic = make_user("vic", "viewer")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)

    call_command("changepassword", "vic", stdout=io.StringIO())

    (event,) = _events(EventType.USER_PASSWORD_CHANGED)
    assert (event.actor_label, event.object_id, (event.after or {})["username"]) == (
        "system:manage.py",
        str(vic.pk),
        "vic",
    )
    _says_nothing_secret(event, vic)


def test_a_login_that_rehashes_the_same_password_is_not_a_password_change(client: Client, settings: Any) -> None:
    from django.contrib.auth.hashers import make_password

    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    vic = make_user("vic", "viewer")
    User.objects.filter(pk=vic.pk).update(password=make_password("pw-for-tests-1", hasher="md5"))

    client.post(reverse("login"), {"username": "vic", "password": "pw-for-tests-1"})

    vic.refresh_from_db()
    assert vic.password.startswith("pbkdf2_")  # Django upgraded the hash as it logged in
    assert _events(EventType.AUTH_LOGIN) and not _events(EventType.USER_PASSWORD_CHANGED)


def test_single_sign_on_giving_a_new_user_no_password_is_not_a_password_change() -> None:
    """It creates the user (audited) and then replaces one unusable password with another."""
    from scaling.audit import account_changes_by

    with account_changes_by(Actor.system("sso"), "first single sign-on"):
        sso = User.objects.create_user("sso-user")
        sso.set_unusable_password()
        sso.save(update_fields=["password"])

    assert _events(EventType.USER_CREATED) and not _events(EventType.USER_PASSWORD_CHANGED)


def test_a_new_password_hash_saved_alone_from_the_shell_is_a_password_change() -> None:
    # The same save as a login's rehash (the password alone, `_password` unset), but of a hash that was not
    # outdated: a new password set from the shell, which the login-rehash exemption had let through unaudited.
    from django.contrib.auth.hashers import make_password

    vic = User.objects.get(pk=make_user("vic", "viewer").pk)
    vic.password = make_password("a-completely-different-password-9")
    vic.save(update_fields=["password"])

    (event,) = _events(EventType.USER_PASSWORD_CHANGED)
    assert (event.before or {})["usable_password"] is True and (event.after or {})["usable_password"] is True
    _says_nothing_secret(event, vic)


def test_an_account_created_without_a_password_did_not_have_a_usable_one() -> None:
    # As seed_demo does: get_or_create leaves the password empty, which no password matches, then set_password.
    user, _ = User.objects.get_or_create(username="demo-op")
    user.set_password("demo-password-1")
    user.save()

    (event,) = _events(EventType.USER_PASSWORD_CHANGED)
    assert (event.before or {})["usable_password"] is False and (event.after or {})["usable_password"] is True
