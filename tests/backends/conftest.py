"""AWS fixtures: one moto server (a real HTTP endpoint on 127.0.0.1) for the whole session,
reset before each test, reachable from this process and from a Celery worker alike."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from scaling.backends import aws as aws_backend
from scaling.models import Decision, Service

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture(autouse=True)
def process_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """The region of the Tipoff processes, as a deployment on AWS sets it: a SageMaker or ECS service saved
    without a region is stored with this one (a test that needs none, or another, sets its own)."""
    monkeypatch.setenv("AWS_REGION", REGION)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Dummy credentials and AWS_ENDPOINT_URL pointing at a freshly reset moto server."""
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    aws_backend.reset_clients()
    _forget_cloudwatch_batches()
    yield moto_url
    aws_backend.reset_clients()


def _forget_cloudwatch_batches() -> None:
    """The per-tick CloudWatch batch lives in Redis; a new test must not read the last one's."""
    from scaling.services import redis_client

    r = redis_client()
    keys = list(r.scan_iter("tipoff:cloudwatch:*"))
    if keys:
        r.delete(*keys)


def admin_client(service_name: str, url: str) -> Any:
    """A boto3 client for test setup and for reading back what Tipoff did."""
    return boto3.client(
        service_name,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_sagemaker_endpoint(url: str, name: str = "win-prob", instances: int = 2) -> None:
    sm = admin_client("sagemaker", url)
    sm.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sagemaker",
        PrimaryContainer={"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/win-prob:latest"},
    )
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{name}-model",
                "InitialInstanceCount": instances,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def sagemaker_counts(url: str, name: str = "win-prob") -> tuple[int, int, str]:
    out = admin_client("sagemaker", url).describe_endpoint(EndpointName=name)
    variant = out["ProductionVariants"][0]
    return int(variant["CurrentInstanceCount"]), int(variant["DesiredInstanceCount"]), str(out["EndpointStatus"])


def create_ecs_service(url: str, cluster: str = "serving", name: str = "odds-api", desired: int = 2) -> None:
    ecs = admin_client("ecs", url)
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=name,
        containerDefinitions=[{"name": "app", "image": "odds-api:latest", "memory": 512, "cpu": 256}],
    )
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=name, desiredCount=desired)


def ecs_desired(url: str, cluster: str = "serving", name: str = "odds-api") -> int:
    out = admin_client("ecs", url).describe_services(cluster=cluster, services=[name])
    return int(out["services"][0]["desiredCount"])


def register_target(url: str, namespace: str, resource_id: str, dimension: str, *, lo: int = 1, hi: int = 10) -> None:
    admin_client("application-autoscaling", url).register_scalable_target(
        ServiceNamespace=namespace, ResourceId=resource_id, ScalableDimension=dimension, MinCapacity=lo, MaxCapacity=hi
    )


def scalable_target(url: str, namespace: str, resource_id: str) -> dict[str, Any]:
    out = admin_client("application-autoscaling", url).describe_scalable_targets(
        ServiceNamespace=namespace, ResourceIds=[resource_id]
    )
    return dict(out["ScalableTargets"][0])


def publish_invocations(url: str, now: datetime, per_minute: float, name: str = "win-prob", minutes: int = 5) -> None:
    """Invocations for the last few complete minutes, as SageMaker publishes them (with latencies in µs)."""
    dims = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}]
    start = now.replace(second=0, microsecond=0)
    data = []
    for k in range(2, 2 + minutes):
        ts = start - timedelta(minutes=k)
        data += [
            {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": ts, "Value": per_minute, "Unit": "None"},
            {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Timestamp": ts, "Value": 0.0, "Unit": "None"},
            {
                "MetricName": "ModelLatency",
                "Dimensions": dims,
                "Timestamp": ts,
                "Value": 40000.0,
                "Unit": "Microseconds",
            },
            {
                "MetricName": "OverheadLatency",
                "Dimensions": dims,
                "Timestamp": ts,
                "Value": 2000.0,
                "Unit": "Microseconds",
            },
        ]
    admin_client("cloudwatch", url).put_metric_data(Namespace="AWS/SageMaker", MetricData=data)


# moto's GetMetricData computes Sum/Average/Minimum/Maximum/SampleCount but not
# percentiles (p95 comes back empty), so the moto tests read latency as Maximum;
# the default extended statistics are checked against a botocore Stubber.
MOTO_LATENCY_STATS = {"p95_ms": "Maximum"}


def sagemaker_service(name: str = "win-probability", endpoint: str = "win-prob", **config: Any) -> Service:
    config.setdefault("latency_stats", MOTO_LATENCY_STATS)
    return Service.objects.create(
        name=name,
        display_name=name.title(),
        backend=Service.Backend.SAGEMAKER,
        metric_source=Service.MetricSourceKind.CLOUDWATCH,
        min_replicas=1,
        max_replicas=20,
        backend_config={"endpoint_name": endpoint, "variant_name": "AllTraffic", "metrics_lag_s": 120} | config,
    )


def ecs_service(name: str = "odds-api", **config: Any) -> Service:
    config.setdefault("latency_stats", MOTO_LATENCY_STATS)
    return Service.objects.create(
        name=name,
        display_name=name.title(),
        backend=Service.Backend.ECS,
        metric_source=Service.MetricSourceKind.CLOUDWATCH,
        min_replicas=1,
        max_replicas=20,
        backend_config={"cluster": "serving", "service": "odds-api", "metrics_lag_s": 120} | config,
    )


# --- counting calls at the HTTP level ---


class RecordingProxy:
    """A tiny HTTP proxy in front of moto that records each AWS operation it forwards."""

    def __init__(self, upstream: str) -> None:
        self.calls: list[str] = []
        # operation -> how many more times to answer with a throttling error
        self.throttle: dict[str, int] = {}
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = _operation(self.path, dict(self.headers), body)
                proxy.calls.append(operation)
                if proxy.throttle.get(operation, 0) > 0:
                    proxy.throttle[operation] -= 1
                    payload = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("x-amzn-ErrorType", "ThrottlingException")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in {"connection"}}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith(("Describe", "Get", "List"))]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _operation(path: str, headers: dict[str, str], body: bytes) -> str:
    target = headers.get("X-Amz-Target") or headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    if "/operation/" in path:
        return path.rsplit("/operation/", 1)[-1].split("?", maxsplit=1)[0]
    text = body.decode(errors="replace")
    for part in text.split("&"):
        if part.startswith("Action="):
            return part.split("=", 1)[1]
    return f"{path}"


@pytest.fixture
def recording_proxy(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(aws)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    aws_backend.reset_clients()
    yield proxy
    proxy.close()


@contextmanager
def restricted_credentials(url: str, monkeypatch: pytest.MonkeyPatch, actions: list[str]) -> Iterator[None]:
    """Run as an IAM user allowed only `actions`, with moto enforcing IAM (its real policy evaluation)."""
    iam = admin_client("iam", url)
    iam.create_user(UserName="tipoff-limited")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_user_policy(UserName="tipoff-limited", PolicyName="limited", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="tipoff-limited")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    aws_backend.reset_clients()
    requests.post(f"{url}/moto-api/reset-auth", data=b"0", timeout=10)
    try:
        yield
    finally:
        requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=10)


def decision_of(result: Any) -> Decision:
    """The Decision a service_evaluate result points at."""
    assert result.decision_id is not None, result
    return Decision.objects.get(pk=result.decision_id)


# The service form for the SageMaker endpoint the tests create (create_sagemaker_endpoint's "win-prob"), as the
# UI posts it; tests vary a field or two with `|`.
SAGEMAKER_FORM = {
    "name": "win-probability",
    "display_name": "Win probability",
    "enabled": "on",
    "backend": "sagemaker",
    "metric_source": "cloudwatch",
    "endpoint_name": "win-prob",
    "variant_name": "AllTraffic",
    "autoscaling_mode": "refuse",
    "min_replicas": "1",
    "max_replicas": "10",
    "hard_max_replicas": "20",
    "price_per_replica_hour": "1.2",
    "slo_latency_ms": "300",
    "provisioning_delay_s": "300",
}
