"""One shape for every error the API answers (every 4xx), so that a client parses one:

    {"detail": "reason: Field required", "field": "reason",
     "errors": [{"field": "reason", "message": "Field required"}]}

`detail` says what is wrong in words; `field` names the first input at fault ("" when none is); `errors` lists
every problem found with the values sent, each naming its field (one for a refusal by Tipoff's own checks;
empty when the request was refused as a whole: who sent it, a missing object, the method, a body that is not
JSON). A field is a dotted path: a body
field ("params.tolerance", "services.1"), a query parameter ("limit") or a path parameter ("decision_id"),
without saying which; "body" is the body as a whole. Some answers add to it (a 409's `existing`, a 410's
record of a pruned decision, a 403's `confirm_password_url`), never take from it.

The schema's own validation (ninja's ValidationError), Tipoff's checks (ApiError, raised by the endpoints),
HttpError and Http404 are answered here, by handlers `install` registers on the NinjaAPI (dashboard/api.py);
a 4xx Django answers before the API runs (an unknown URL, a method the URL does not take, an oversize body)
is rewritten by dashboard.middleware.ApiErrorBodyMiddleware. TipoffAPI describes the shape in the OpenAPI
schema for every operation.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Schema
from ninja.errors import HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema

# Where ninja says a value came from: the first element of a validation error's `loc`.
SOURCES = frozenset({"body", "query", "path", "form", "file", "header", "cookie"})


class FieldErrorOut(Schema):
    field: str = Field(description='A dotted path ("params.tolerance", "services.1", "limit"); "body": the whole body.')
    message: str


class ErrorOut(Schema):
    """The body of every 4xx answer."""

    detail: str = Field(description="What is wrong, in words.")
    field: str = Field("", description="The first input at fault (as in `errors`); empty when no input is.")
    errors: list[FieldErrorOut] = Field(
        default_factory=list,
        description="Every problem found with the values sent, each naming its field; empty when the request was "
        "refused as a whole (authentication, permission, a missing object, a body that is not JSON).",
    )


def error_body(detail: str, *, field: str = "", errors: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    return {"detail": detail, "field": field, "errors": list(errors)}


class ApiError(HttpError):
    """A request Tipoff's own checks refuse: 422 unless another status is given, naming the field at fault.

    `message` is the problem without the field's name, where `detail` spells it out ("until: a pause needs an
    end"); `errors` lists several problems, when the check found more than one."""

    def __init__(
        self,
        detail: str,
        *,
        field: str = "",
        message: str = "",
        status: int = 422,
        errors: Sequence[dict[str, str]] = (),
    ) -> None:
        super().__init__(status, detail)
        self.field = field
        self.errors = list(errors) or [{"field": field, "message": message or detail}]


def refused(exc: Exception, *, status: int = 422) -> ApiError:
    """An ApiError for a refusal of Tipoff's services (OverrideError, RuleError, ModeError, ConfigError ...),
    which carry `field` and some a bare `message`: `raise refused(exc) from exc`."""
    return ApiError(
        str(exc), field=getattr(exc, "field", "") or "", message=getattr(exc, "message", "") or "", status=status
    )


def field_name(loc: Sequence[str | int]) -> str:
    """A validation error's `loc` as a dotted path, without where the value came from.

    ("body", "payload", "services", 1) -> "services.1": after "body" comes the name of the endpoint's body
    parameter (each of Tipoff's endpoints takes its body as one Schema), which the client never sent.
    ("query", "limit") -> "limit"; ("body", "payload") -> "body". No endpoint takes one name from two places
    (tests/dashboard/test_api_errors.py checks it), so dropping the place leaves no doubt."""
    parts = list(loc)
    source = parts.pop(0) if parts and parts[0] in SOURCES else ""
    if source == "body":
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or (str(source) if source else "body")


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": field_name(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in exc.errors]


def _validation_error(request: HttpRequest, exc: ValidationError, *, api: NinjaAPI) -> HttpResponse:
    errors = validation_errors(exc) or [{"field": "body", "message": "invalid"}]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return api.create_response(request, error_body(detail, field=errors[0]["field"], errors=errors), status=422)


def _http_error(request: HttpRequest, exc: HttpError, *, api: NinjaAPI) -> HttpResponse:
    if isinstance(exc, ApiError):
        body = error_body(str(exc), field=exc.field, errors=exc.errors)
    else:  # ninja's own (401, a CSRF failure, an unparsable body) and require_capability's 403
        body = error_body(str(exc))
    return api.create_response(request, body, status=exc.status_code)


def _not_found(request: HttpRequest, exc: Http404, *, api: NinjaAPI) -> HttpResponse:
    # As ninja's: what was not found only with DEBUG (get_object_or_404 names the model).
    detail = f"Not Found: {exc}" if settings.DEBUG and str(exc) else "Not Found"
    return api.create_response(request, error_body(detail), status=404)


def install(api: NinjaAPI) -> None:
    """Answer the schema's validation, HttpError (and ApiError) and Http404 in the one shape."""
    api.add_exception_handler(ValidationError, partial(_validation_error, api=api))
    api.add_exception_handler(HttpError, partial(_http_error, api=api))
    api.add_exception_handler(Http404, partial(_not_found, api=api))


# The errors TipoffAPI lists for an operation, with when each applies.
ERROR_STATUSES: dict[int, str] = {
    401: "Not authenticated: no session and no valid API token.",
    403: "The user's role does not allow it (or, for an administrator's session, the password needs confirming).",
    404: "No such object.",
    422: "The input was refused: `errors` names each field at fault.",
}


class TipoffAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI schema describes the error bodies: ErrorOut for 401 and 403 on every operation,
    404 on those with a path parameter and 422 on those that take any input (unless the operation declares
    its own answer for that status)."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        ref_template = "#/components/schemas/{model}"
        definitions = ErrorOut.model_json_schema(ref_template=ref_template)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(definitions.pop("$defs", {}))
        components["ErrorOut"] = definitions
        error = {"application/json": {"schema": {"$ref": ref_template.format(model="ErrorOut")}}}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
                for status, description in ERROR_STATUSES.items():
                    if (status == 404 and "{" not in path) or (status == 422 and not takes_input):
                        continue
                    answers = operation.setdefault("responses", {})
                    if status not in answers and str(status) not in answers:
                        answers[status] = {"description": description, "content": error}
        return schema


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
