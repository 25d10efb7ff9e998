"""One check for every API endpoint: no NUL character in any text it is given.

PostgreSQL refuses a NUL in text and jsonb, so a string holding one passed pydantic and
then raised a DataError (an HTML 500) wherever it reached the database: a reason, a name,
a filter, a service in the path. Both checks are registered on the NinjaAPI in
dashboard/api.py, so an endpoint added later has them too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja.errors import ValidationError
from pydantic import BaseModel

from dashboard.api_errors import error_body

NUL = "\x00"


def refuse_nul_in_url(run: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Before authentication: a NUL in the path or a query parameter is a malformed request (400)."""

    @wraps(run)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if NUL in request.path:
            message = "the path holds a NUL character"
            return JsonResponse(error_body(message, errors=[{"field": "", "message": message}]), status=400)
        for name, values in request.GET.lists():
            if NUL in name or any(NUL in value for value in values):
                shown = name.replace(NUL, "\\x00")
                message = f"query parameter {shown!r} holds a NUL character"
                problem = {"field": shown, "message": "holds a NUL character"}
                return JsonResponse(error_body(message, field=shown, errors=[problem]), status=400)
        return run(request, *args, **kwargs)

    return guarded


def _nul_at(value: Any) -> tuple[tuple[str | int, ...], str] | None:
    """Where in a validated value the first NUL is (its path), and what holds it; None when there is none."""
    if isinstance(value, str):
        return ((), "must not contain a NUL character") if NUL in value else None
    if isinstance(value, BaseModel):
        items: list[tuple[str | int, Any]] = [(name, getattr(value, name)) for name in type(value).model_fields]
    elif isinstance(value, dict):
        if any(isinstance(key, str) and NUL in key for key in value):
            return (), "a key must not contain a NUL character"
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = list(enumerate(value))
    else:
        return None
    for key, item in items:
        found = _nul_at(item)
        if found is not None:
            return (key, *found[0]), found[1]
    return None


def refuse_nul_in_body(view: Callable[..., Any]) -> Callable[..., Any]:
    """After the body is validated, before the endpoint runs: a NUL in any string is a 422 naming the field.

    Path and query were checked already, so what is left came in the body (or a form field).
    """

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **values: Any) -> Any:
        for name, value in values.items():
            found = _nul_at(value)
            if found is not None:
                path, message = found
                raise ValidationError([{"type": "string_nul", "loc": ("body", name, *path), "msg": message}])
        return view(request, *args, **values)

    return guarded
