"""Where a page may send the browser back to: one check for every `next` and Referer the dashboard follows."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request: HttpRequest, candidate: str | None, default: str = "/") -> str:
    """`candidate` when it leads to this site, as Django's login view checks its `next`; else `default` (a path
    or a URL pattern name).

    A hand-written "starts with / but not //" lets through `/\\evil.example` and `/<tab>/evil.example`, which
    browsers read as `//evil.example`: another site, reached from a link or redirect of ours."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(default)
