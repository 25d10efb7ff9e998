"""deploy/tipoff-iam.yaml: valid CloudFormation (cfn-lint) and least privilege by construction."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "tipoff-iam.yaml"

# Every action the backends call (scaling/backends/*.py), and nothing else.
READS = {
    "sagemaker:DescribeEndpoint",
    "ecs:DescribeServices",
    "cloudwatch:GetMetricData",
    "application-autoscaling:DescribeScalableTargets",
}
WRITES = {
    "sagemaker:UpdateEndpointWeightsAndCapacities",
    "ecs:UpdateService",
    "application-autoscaling:RegisterScalableTarget",
}


def _template() -> dict[str, Any]:
    template, errors = decode_str(TEMPLATE.read_text())
    assert not errors, errors
    return dict(template)


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Effect" in node and "Action" in node:
                found.append(node)
            for key, value in node.items():
                if key != "AssumeRolePolicyDocument":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template["Resources"])
    return found


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_it_passes_cfn_lint() -> None:
    cfn_lint = shutil.which("cfn-lint") or str(Path(sys.executable).parent / "cfn-lint")
    result = subprocess.run([cfn_lint, str(TEMPLATE)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_grants_only_the_calls_the_backends_make() -> None:
    statements = _statements(_template())
    granted = set().union(*(_actions(s) for s in statements))
    assert granted == READS | WRITES
    assert all(s["Effect"] == "Allow" and "*" not in "".join(_actions(s)) for s in statements)


def test_write_calls_are_scoped_to_named_resources_or_conditional() -> None:
    template = _template()
    for statement in _statements(template):
        if _actions(statement) & {"sagemaker:UpdateEndpointWeightsAndCapacities", "ecs:UpdateService"}:
            assert statement["Resource"] != "*"
        if "application-autoscaling:RegisterScalableTarget" in _actions(statement):
            assert template["Resources"]["AutoscalingWritePolicy"]["Condition"] == "WritesAutoscaling"
    assert set(template["Parameters"]) >= {"Environment", "SageMakerEndpointNames", "EcsClusterArn", "EcsServiceArns"}
