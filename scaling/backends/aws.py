"""The one place boto3 clients are built, and AWS errors turned into plain words.

Credentials come from boto3's default chain (environment, profile, container or
instance role); Tipoff never stores them. The region comes from the service's
`backend_config["region"]`, else the environment (AWS_REGION / AWS_DEFAULT_REGION /
profile). The endpoint comes from `backend_config["endpoint_url"]`, else boto3's own
AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> variables (how tests reach moto).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from scaling.backends.base import BackendError, one_line

# Adaptive retries: botocore backs off and rate-limits itself client-side when
# AWS throttles; a call that still fails surfaces to the circuit breaker.
RETRY_MAX_ATTEMPTS = 3
# How much of AWS's own words an error keeps: with the action and resource it stays under about 200 characters.
MESSAGE_LIMIT = 100
# AWS control-plane calls answer in well under a second; these bound a call that hangs.
CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 5


def worst_call_s() -> float:
    """The longest one call can take: every attempt timing out, and between attempts botocore's longest
    backoff (up to 2^(i-1) s, or a throttled answer's retry-after of at most 5 s more). It must stay well
    inside an evaluation's soft time limit, so a hanging AWS fails the call, not the tick."""
    backoff_s = sum(min(2 ** (i - 1), 20) + 5 for i in range(1, RETRY_MAX_ATTEMPTS))
    return RETRY_MAX_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + backoff_s


# The IAM action prefix of each client (not always its signing name).
_IAM_PREFIX = {
    "sagemaker": "sagemaker",
    "ecs": "ecs",
    "cloudwatch": "cloudwatch",
    "application-autoscaling": "application-autoscaling",
}

_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
}
_ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
}

_lock = threading.Lock()
_clients: dict[tuple[str, str | None, str | None, str | None], Any] = {}


def region_of(config: dict[str, Any]) -> str | None:
    region = str(config.get("region") or "").strip()
    return region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def process_region() -> str | None:
    """The region this process's boto3 takes for a service that names none: AWS_REGION, AWS_DEFAULT_REGION, then
    the profile's. Stored with a service when it is saved (scaling.service_config), so that every process uses
    the one it was saved under, whatever its own environment says."""
    try:
        profile_region = boto3.session.Session().region_name
    except BotoCoreError:  # a profile named but not found: no region from it
        profile_region = None
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or profile_region or None


def client(service_name: str, config: dict[str, Any], *, error_cls: type[BackendError] = BackendError) -> Any:
    """A cached boto3 client for one AWS service, honouring the service's region and endpoint.

    boto3 clients are thread-safe; sessions are not, so each client is built
    from its own session under a lock and reused. A region or endpoint botocore
    cannot use raises `error_cls`, permanent: it will not heal by retrying.
    """
    region = region_of(config)
    endpoint = str(config.get("endpoint_url") or "").strip() or None
    # The environment is part of the key so a changed AWS_ENDPOINT_URL (tests) takes effect.
    key = (service_name, region, endpoint, os.environ.get("AWS_ENDPOINT_URL"))
    with _lock:
        cached = _clients.get(key)
        if cached is not None:
            return cached
        session = boto3.session.Session(region_name=region)
        try:
            built = session.client(
                service_name,
                endpoint_url=endpoint,
                config=Config(
                    retries={"mode": "adaptive", "total_max_attempts": RETRY_MAX_ATTEMPTS},
                    connect_timeout=CONNECT_TIMEOUT_S,
                    read_timeout=READ_TIMEOUT_S,
                    user_agent_extra="tipoff",
                ),
            )
        except NoRegionError as exc:
            raise error_cls("no AWS region configured: set the service's region or AWS_REGION", permanent=True) from exc
        except (BotoCoreError, ValueError) as exc:
            # An invalid region name (InvalidRegionError) or endpoint URL ("Invalid endpoint").
            raise error_cls(
                f"cannot build the AWS {service_name} client for region {region!r} and endpoint {endpoint!r}: {exc}",
                permanent=True,
            ) from exc
        _clients[key] = built
        return built


def reset_clients() -> None:
    """Forget cached clients (after credentials or endpoints change)."""
    with _lock:
        _clients.clear()


def iam_action(client_obj: Any, operation: str) -> str:
    prefix = _IAM_PREFIX.get(client_obj.meta.service_model.service_name, client_obj.meta.service_model.service_name)
    return f"{prefix}:{operation}"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_throttling(exc: ClientError) -> bool:
    return error_code(exc) in _THROTTLING


def translate(
    exc: Exception, *, client_obj: Any, operation: str, resource: str, error_cls: type[BackendError]
) -> BackendError:
    """An AWS failure in plain words, marked permanent when retrying will not help."""
    action = iam_action(client_obj, operation)
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if "<Message>" in message:
            # An XML error body where JSON was expected: keep just its message.
            message = message.split("<Message>", 1)[1].split("</Message>", 1)[0]
        # A whole HTML error page (a 5xx from a proxy or the service) would fill the fleet page: one short line.
        message = one_line(message, MESSAGE_LIMIT)
        if status >= 500 and code != str(status):
            code = f"{code} (HTTP {status})" if code else f"HTTP {status}"
        if code in _ACCESS_DENIED or (status == 403 and code in {"", "403"}):
            return error_cls(f"missing permission {action} on {resource} (AWS said {code}: {message})", permanent=True)
        if is_throttling(exc):
            return error_cls(f"AWS throttled {action} on {resource} after retries ({code})", permanent=False)
        lowered = message.lower()
        if code in {"ResourceNotFoundException", "ClusterNotFoundException", "ServiceNotFoundException"} or (
            code in {"ValidationException", "ValidationError"}
            and ("could not find" in lowered or "not found" in lowered)
        ):
            return error_cls(f"unknown resource: {resource} ({message})", permanent=True)
        return error_cls(f"{action} on {resource} failed: {code}: {message}", permanent=400 <= status < 500)
    if isinstance(exc, NoCredentialsError):
        return error_cls(
            "no AWS credentials found (instance or task role, AWS_* environment variables, or a profile)",
            permanent=True,
        )
    if isinstance(exc, ParamValidationError):
        return error_cls(f"{action} on {resource}: invalid parameters: {exc}", permanent=True)
    if isinstance(exc, EndpointConnectionError | ReadTimeoutError):
        return error_cls(f"cannot reach AWS for {action} on {resource}: {exc}", permanent=False)
    if isinstance(exc, BotoCoreError):
        return error_cls(f"{action} on {resource} failed: {exc}", permanent=False)
    return error_cls(f"{action} on {resource} failed: {exc}", permanent=False)


def call(client_obj: Any, operation: str, *, resource: str, error_cls: type[BackendError], **params: Any) -> Any:
    """Call one AWS operation (by its API name), translating failures into BackendErrors."""
    method = getattr(client_obj, xform_name(operation))
    try:
        return method(**params)
    except (ClientError, BotoCoreError) as exc:
        raise translate(
            exc, client_obj=client_obj, operation=operation, resource=resource, error_cls=error_cls
        ) from exc
