"""Account pages: confirm the password before admin-level changes, and manage your API tokens."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from dashboard.permissions import has_recent_auth, mark_recent_auth, reauth_redirect, requires
from dashboard.redirects import safe_next
from scaling.audit import Actor
from scaling.models import ApiToken
from scaling.tokens import TokenError, token_create, token_revoke


class ConfirmPasswordForm(forms.Form):
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}), max_length=200)


@login_required
def confirm_password(request: HttpRequest) -> HttpResponse:
    """Type the password again; failures count towards the login lockout and are audited."""
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    form = ConfirmPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = authenticate(request, username=request.user.get_username(), password=form.cleaned_data["password"])
        if user is not None and user.pk == request.user.pk:
            mark_recent_auth(request)
            messages.success(request, "Password confirmed. You can make the change now.")
            return HttpResponseRedirect(next_url)
        form.add_error("password", "That is not your password.")
    context = {"form": form, "next": next_url, "max_age_min": settings.REAUTH_MAX_AGE_SECONDS // 60}
    return render(request, "access/confirm_password.html", context, status=400 if form.errors else 200)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What uses it, e.g. release-pipeline")
    days = forms.IntegerField(min_value=1, initial=90, label="Expires after (days)")

    def clean_days(self) -> int:
        days = int(self.cleaned_data["days"])
        if days > settings.API_TOKEN_MAX_DAYS:
            raise forms.ValidationError(f"at most {settings.API_TOKEN_MAX_DAYS} days")
        return days


@requires("view")
def tokens(request: HttpRequest) -> HttpResponse:
    """Your API tokens. A new token's secret is shown on this response only, never again."""
    form = TokenForm(request.POST or None)
    secret = None
    status = 200
    if request.method == "POST":
        if not has_recent_auth(request):
            return reauth_redirect(request)
        if form.is_valid():
            try:
                issued = token_create(
                    user=request.user,
                    name=form.cleaned_data["name"],
                    days=form.cleaned_data["days"],
                    actor=Actor.for_user(request.user),
                )
            except TokenError as exc:
                field, _, message = str(exc).partition(": ")
                form.add_error(field if field in form.fields else None, message or str(exc))
            else:
                secret = issued.secret
                form = TokenForm()
        if form.errors:
            status = 400
    context = {
        "form": form,
        "secret": secret,
        "tokens": ApiToken.objects.filter(user=request.user.pk).order_by("-created_at"),
        "now": timezone.now(),
    }
    return render(request, "access/tokens.html", context, status=status)


@require_POST
@requires("view")
def token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user_id=request.user.pk)
    if token_revoke(token=token, actor=Actor.for_user(request.user)):
        messages.success(request, f"Token {token.name} revoked.")
    return redirect("access:tokens")
