"""The two interfaces every backend implements, and the registry that picks one."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from scaling.policy.types import MetricPoint

if TYPE_CHECKING:
    from scaling.models import Service


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def one_line(text: str, limit: int = 200) -> str:
    """A backend's error text as one short line: an HTML page (a proxy's or a server's 500 page) becomes its
    title, or its text without tags; whitespace runs become one space; past `limit` it is cut with "…"."""
    if "<" in text and ">" in text:
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAG.sub(" ", text)
        text = html.unescape(text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# In a URL within a text: a user and password before the host (to the last @ before the path), and a query.
_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")
_QUERY = re.compile(r"(://[^?#\s]*)\?[^\s'\"<>]*")


def url_without_credentials(url: str) -> str:
    """A URL as it may be shown: without a user and password in it, or a query (either may hold a secret)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "(an invalid URL)"
    if parts.scheme not in ("http", "https") or not host:
        return "(not an http(s) URL)"  # the backend refuses it too: the fetch names the value
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}"


def has_userinfo(url: str) -> bool:
    """Whether a URL holds a user or password (user:password@ before the host)."""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return "@" in url


def without_credentials(text: str) -> str:
    """`text` with every URL in it stripped of a user and password and of its query: a backend's error text is
    shown to viewers (decision summaries, the service page, the API), logged, and audited."""
    return _QUERY.sub(r"\1", _USERINFO.sub("", text))


class BackendError(Exception):
    """A backend call failed. `permanent` errors will not heal by retrying. Its message is kept without the
    credentials a URL in it may hold (`without_credentials`): every backend's error text is made here."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(without_credentials(message))
        self.permanent = permanent


class MetricsUnavailable(BackendError):
    pass


class ActuatorError(BackendError):
    pass


@dataclass(frozen=True)
class FleetStatus:
    provisioned: int
    ready: int
    desired: int | None = None
    # The resource is mid-update and must not be called again this tick.
    busy: bool = False
    detail: str = ""


@dataclass(frozen=True)
class MetricWindow:
    points: tuple[MetricPoint, ...]
    # Configured signals the source could not read this time (signal -> why); they are None in `points`.
    # Unlike a signal with no datapoint, an unread one may be breaching: the engine does not scale in on the rest.
    unread: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ActuationResult:
    status: str  # ok | busy | refused
    detail: str = ""


class MetricSource(Protocol):
    def fetch(self, service: Service, now: datetime) -> MetricWindow: ...


class Actuator(Protocol):
    def status(self, service: Service, now: datetime) -> FleetStatus: ...

    def set_capacity(self, service: Service, replicas: int, now: datetime) -> ActuationResult:
        """Set the absolute replica count (never a delta: repeating it is harmless)."""
        ...


def get_metric_source(service: Service) -> MetricSource:
    from scaling.backends import simulated

    if service.metric_source == "simulated":
        return simulated.SimulatedMetricSource()
    if service.metric_source == "cloudwatch":
        from scaling.backends.cloudwatch import CloudWatchMetricSource

        return CloudWatchMetricSource()
    if service.metric_source == "prometheus":
        from scaling.backends.prometheus import PrometheusMetricSource

        return PrometheusMetricSource()
    raise MetricsUnavailable(f"metric source {service.metric_source!r} is not available", permanent=True)


def get_actuator(service: Service) -> Actuator:
    from scaling.backends import simulated

    if service.backend == "simulated":
        return simulated.SimulatedActuator()
    if service.backend == "sagemaker":
        from scaling.backends.sagemaker import SageMakerActuator

        return SageMakerActuator()
    if service.backend == "ecs":
        from scaling.backends.ecs import EcsActuator

        return EcsActuator()
    raise ActuatorError(f"backend {service.backend!r} is not available", permanent=True)
