"""System checks: a stored policy the engine would refuse is named before its ticks fail on it."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks

from scaling.models import Service
from tests.factories import make_service


@pytest.mark.django_db
def test_a_stored_policy_outside_the_ranges_is_named_with_its_field_and_where_to_fix_it() -> None:
    make_service("win-probability")
    make_service("box-scores")
    # Saved before the range narrowed: written past the form and the API, as an older version could have.
    Service.objects.filter(name="box-scores").update(policy={"tolerance": 0.9})
    found = [m for m in run_checks(databases=["default"]) if m.id == "tipoff.W001"]
    assert [m.obj for m in found] == ["box-scores"]
    assert "tolerance" in found[0].msg and "0.9" in found[0].msg
    assert found[0].hint == "save a valid policy on /services/box-scores/policy/ (the form shows each allowed range)"


@pytest.mark.django_db
def test_valid_stored_policies_raise_nothing() -> None:
    make_service("win-probability")
    assert not [m for m in run_checks(databases=["default"]) if m.id == "tipoff.W001"]


@pytest.mark.django_db
def test_a_stored_bearer_token_variable_tipoff_will_not_send_is_named() -> None:
    # Stored before only TIPOFF_PROM_TOKEN_... names were accepted: the fetches now fail on it.
    make_service("win-probability", backend_config={"bearer_token_env": "TIPOFF_PROM_TOKEN_PROD"})
    make_service("box-scores", backend_config={"bearer_token_env": "SECRET_KEY"})
    make_service("props")
    found = [m for m in run_checks(databases=["default"]) if m.id == "tipoff.W002"]
    assert [m.obj for m in found] == ["box-scores"]
    assert "'SECRET_KEY'" in found[0].msg and "TIPOFF_PROM_TOKEN_" in found[0].msg
    assert found[0].hint is not None and "/api/admin/services/box-scores" in found[0].hint


@pytest.mark.django_db
def test_a_stored_url_with_a_user_and_password_is_named_without_the_password() -> None:
    make_service("win-probability", backend_config={"prometheus_url": "http://prom:9090"})
    make_service("box-scores", backend_config={"prometheus_url": "http://ops:s3cret@prom:9090"})
    make_service("props", backend_config={"endpoint_url": "https://ops:s3cret@sagemaker.example"})
    found = [m for m in run_checks(databases=["default"]) if m.id == "tipoff.W003"]
    assert [(m.obj, m.msg.split(": its ")[1].split(" ")[0]) for m in found] == [
        ("box-scores", "prometheus_url"),
        ("props", "endpoint_url"),
    ]
    assert not any("s3cret" in f"{m.msg} {m.hint}" for m in found)
    assert found[0].hint is not None and "/services/box-scores/edit/" in found[0].hint


@pytest.mark.django_db
def test_an_aws_service_stored_without_a_region_is_named_with_where_to_set_it() -> None:
    make_service("odds", backend="ecs", backend_config={"cluster": "c", "service": "s"})
    make_service("win-probability", backend="sagemaker", backend_config={"region": "us-east-1", "endpoint_name": "w"})
    make_service("box-scores")
    found = [m for m in run_checks(databases=["default"]) if m.id == "tipoff.W004"]
    assert [m.obj for m in found] == ["odds"]
    assert found[0].msg == "service 'odds': no region stored, so each Tipoff process uses its own AWS_REGION for it"
    assert found[0].hint == "name its region on /services/odds/edit/ (or save it there where AWS_REGION is set)"
