"""The what-if page: starts a background replay, polls its progress, shows results side by side."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from unittest.mock import Mock
from zoneinfo import ZoneInfo

import pytest
import redis
import time_machine
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from dashboard import whatif as whatif_page
from dashboard.forms import local_input
from scaling import services as scaling_services
from scaling import tasks
from scaling.models import MetricSample, Service, WhatIfRun
from scaling.sim.whatif import WhatIfError
from scaling.whatif import RUN_SOFT_TIME_LIMIT_S, RUN_TIME_LIMIT_S, whatif_execute
from tests.factories import make_service, make_user, make_whatif_run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("whatif_slots_free")]


@pytest.fixture
def service() -> Service:
    service = make_service("win-probability")
    now = timezone.now()
    MetricSample.objects.bulk_create(
        MetricSample(
            service=service,
            ts=now - timedelta(minutes=60) + timedelta(seconds=15 * i),
            rps=900.0,
            provisioned=8,
            ready=8,
        )
        for i in range(200)
    )
    return service


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Capture enqueued jobs instead of sending them to a broker."""
    jobs: list[str] = []
    monkeypatch.setattr(tasks.whatif_run, "delay", jobs.append)
    yield jobs


def _login(client: Client, role: str) -> Client:
    client.force_login(make_user(role, role))
    return client


def test_it_shows_the_form(client: Client, service: Service) -> None:
    response = _login(client, "viewer").get(reverse("dashboard:whatif", args=[service.name]))
    assert response.status_code == 200
    assert b"Run what-if" in response.content


def test_it_refuses_a_viewer_starting_a_job(client: Client, service: Service, queued: list[str]) -> None:
    response = _login(client, "viewer").post(
        reverse("dashboard:whatif", args=[service.name]), {"range": "1h", "policy": "hpa"}
    )
    assert response.status_code == 403
    assert queued == []


def test_it_runs_a_job_in_the_background_and_shows_results_side_by_side(
    client: Client, service: Service, queued: list[str]
) -> None:
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[service.name])
    response = operator.post(url, {"range": "1h", "policy": "static-peak"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert len(queued) == 1
    job_id = queued[0]
    assert b'data-whatif-status="queued"' in response.content
    assert f"?job={job_id}".encode() in response.content  # polls for progress
    assert WhatIfRun.objects.get(pk=job_id).status == "queued"

    assert whatif_execute(job_id) == "done"  # what the Celery task does

    page = operator.get(f"{url}?job={job_id}", headers={"HX-Request": "true"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "What happened" in body
    assert "static-peak" in body
    assert 'id="whatif-figures"' in body
    result = WhatIfRun.objects.get(pk=job_id).result
    assert result is not None
    # The charts' time axis is the operator's wall clock and says so, as the service page's charts do.
    figures = whatif_page._figures(result)
    first = datetime.fromisoformat(result["series"]["ts"][0])
    local = first.astimezone(ZoneInfo(settings.OPERATOR_TIME_ZONE)).replace(tzinfo=None)
    assert figures["rate"]["data"][0]["x"][0] == local.isoformat()
    assert figures["rate"]["layout"]["xaxis"]["title"]["text"] == f"time ({settings.OPERATOR_TIME_ZONE})"
    assert figures["replicas"]["layout"]["yaxis"]["title"]["text"] == "replicas"
    assert result["actual"]["attainment"] == 0.0
    assert result["replayed"]["attainment"] > 0.999


def test_a_result_over_the_repeated_hour_when_clocks_fall_back_draws_each_instant_at_its_own_place(
    settings: Any,
) -> None:
    settings.OPERATOR_TIME_ZONE = "America/New_York"
    # 01:30 EDT, 01:30 EST (05:30 and 06:30 UTC on the first Sunday of November), then 02:30 EST.
    ts = ["2025-11-02T05:30:00+00:00", "2025-11-02T06:30:00+00:00", "2025-11-02T07:30:00+00:00"]
    series = {"ts": ts, **{key: [1, 2, 3] for key in ("actual_provisioned", "replayed_provisioned", "oracle", "rps")}}
    figures = whatif_page._figures({"series": series, "policy": "hpa"})
    xs = [datetime.fromisoformat(x) for x in figures["rate"]["data"][0]["x"]]
    assert [b - a for a, b in pairwise(xs)] == [timedelta(hours=1)] * 2
    assert xs[-1] == datetime(2025, 11, 2, 2, 30)  # on the clock at the range's end
    assert "EST (UTC−5)" in figures["rate"]["layout"]["xaxis"]["title"]["text"]


def test_it_rejects_edited_parameters_naming_the_problem(client: Client, service: Service, queued: list[str]) -> None:
    response = _login(client, "operator").post(
        reverse("dashboard:whatif", args=[service.name]),
        {"range": "1h", "policy": "edited", "params": '{"target_utilisation": 0.5}'},
    )
    assert response.status_code == 400
    assert b"unknown policy parameter" in response.content
    assert queued == []


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"range": "1h", "policy": "edited", "params": "{not json"}, "not valid JSON: line 1"),
        ({"start_local": "2026-01-01 00:00", "end_local": "2026-01-09 00:00", "policy": "hpa"}, "at most 7 days"),
    ],
    ids=["bad-json", "eight-days"],
)
def test_under_htmx_the_errors_replace_the_form_with_an_answer_htmx_swaps(
    client: Client, service: Service, queued: list[str], data: dict[str, str], named: str
) -> None:
    response = _login(client, "operator").post(
        reverse("dashboard:whatif", args=[service.name]), {"range": "1h", **data}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200  # htmx 2 swaps no 4xx
    assert response["HX-Retarget"] == "#whatif-form" and response["HX-Reswap"] == "outerHTML"
    assert body.lstrip().startswith('<form id="whatif-form"') and named in body
    assert queued == []


def test_under_htmx_a_started_job_clears_the_errors_of_the_try_before(
    client: Client, service: Service, queued: list[str]
) -> None:
    response = _login(client, "operator").post(
        reverse("dashboard:whatif", args=[service.name]),
        {"range": "1h", "policy": "static-peak"},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert "HX-Retarget" not in response and 'data-whatif-status="queued"' in body
    assert '<form id="whatif-form"' in body and 'hx-swap-oob="true"' in body and "error" not in body


def test_a_failed_job_says_why(client: Client, service: Service, queued: list[str]) -> None:
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[service.name])
    operator.post(url, {"range": "1h", "policy": "hpa"})
    MetricSample.objects.filter(service=service).delete()  # gone before a worker took the job
    assert whatif_execute(queued[0]) == "failed"
    page = operator.get(f"{url}?job={queued[0]}")
    assert b"fewer than two recorded samples" in page.content


def test_a_range_that_ends_in_the_future_is_refused_beside_its_end_and_takes_no_slot(
    client: Client, service: Service, queued: list[str]
) -> None:
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[service.name])
    now = timezone.now()
    data = {
        "range": "1h",
        "policy": "hpa",
        "start_local": local_input(now - timedelta(minutes=50)),
        "end_local": local_input(now + timedelta(hours=2)),
    }

    response = operator.post(url, data)

    assert response.status_code == 400 and queued == []
    errors = response.context["form"].errors
    assert list(errors) == ["end_local"] and "in the future" in errors["end_local"][0]
    ends = (now + timedelta(hours=2)).astimezone(ZoneInfo(settings.OPERATOR_TIME_ZONE))
    assert f"({ends:%Y-%m-%d %H:%M} {ends.tzname()} (" in errors["end_local"][0]  # as typed, UTC beside
    assert [_run(operator, service).status_code for _ in range(2)] == [303, 303]  # both slots still free


@pytest.mark.parametrize(
    ("given", "field"),
    [({"range": "1h"}, "range"), ({"start_local": "2026-01-01 00:00", "end_local": "2026-01-01 06:00"}, "start_local")],
)
def test_a_range_with_fewer_than_two_recorded_samples_is_refused_naming_the_field_and_takes_no_slot(
    client: Client, queued: list[str], given: dict[str, str], field: str
) -> None:
    empty = make_service("empty-service")
    MetricSample.objects.create(service=empty, ts=timezone.now() - timedelta(minutes=5), rps=900.0)
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[empty.name])

    response = operator.post(url, {"range": "1h", "policy": "hpa", **given})

    assert response.status_code == 400 and queued == []
    errors = response.context["form"].errors
    assert list(errors) == [field] and "fewer than two recorded samples" in errors[field][0]
    htmx = operator.post(url, {"range": "1h", "policy": "hpa", **given}, headers={"HX-Request": "true"})
    assert htmx["HX-Retarget"] == "#whatif-form" and "fewer than two recorded samples" in htmx.content.decode()
    assert "?job=" not in operator.get(url).content.decode()  # no job listed: none was started


def test_a_range_older_than_the_samples_kept_says_how_long_they_are_kept(
    client: Client, service: Service, queued: list[str]
) -> None:
    kept_days = settings.METRIC_RETENTION_DAYS
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[service.name])
    start = timezone.now() - timedelta(days=kept_days + 5)
    given = {"start_local": local_input(start), "end_local": local_input(start + timedelta(hours=6))}

    response = operator.post(url, {"range": "1h", "policy": "hpa", **given})

    assert response.status_code == 400 and queued == []
    assert f"samples are kept {kept_days} days, from " in response.context["form"].errors["start_local"][0]


def test_a_started_job_has_a_permalink_the_address_bar_takes(
    client: Client, service: Service, queued: list[str]
) -> None:
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[service.name])

    response = _run(operator, service, {"HX-Request": "true"})

    permalink = f"{url}?job={queued[0]}"
    assert response["HX-Push-Url"] == permalink  # a reload, or the link copied, reopens it
    assert f'href="{permalink}"' in response.content.decode() and queued[0] in response.content.decode()
    assert whatif_execute(queued[0]) == "done"
    page = operator.get(permalink).content.decode()
    assert "data-whatif-result" in page and f'href="{permalink}"' in page
    # Without htmx, the answer sends the browser to it: a reload does not run the job again.
    without_htmx = _run(operator, service)
    assert without_htmx.status_code == 303 and without_htmx["Location"] == f"{url}?job={queued[1]}"


def _listed(page: str) -> dict[str, str]:
    """The recent runs the page lists, in its order: job id -> its row."""
    rows = page.split("data-whatif-recent", 1)[1].split("</table>", 1)[0].split("<tr")[2:]  # after the heading's
    return {row.split("?job=", 1)[1].split('"', 1)[0]: row for row in rows}


def test_the_page_lists_everyones_recent_runs_on_this_service_newest_first_the_viewers_own_marked(
    client: Client, service: Service, queued: list[str]
) -> None:
    other_service = make_service("live-odds")
    MetricSample.objects.bulk_create(
        MetricSample(service=other_service, ts=timezone.now() - timedelta(minutes=i), rps=10.0) for i in range(1, 5)
    )
    operator = _login(client, "operator")
    someone_else = Client()
    someone_else.force_login(make_user("op2", "operator"))
    url = reverse("dashboard:whatif", args=[service.name])
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        operator.post(url, {"range": "1h", "policy": "hpa"})
        assert whatif_execute(queued[0]) == "done"
        traveller.shift(timedelta(seconds=1))
        operator.post(reverse("dashboard:whatif", args=[other_service.name]), {"range": "1h", "policy": "hpa"})
        assert whatif_execute(queued[1]) == "done"
        traveller.shift(timedelta(seconds=1))
        operator.post(url, {"range": "1h", "policy": "static-peak"})
        traveller.shift(timedelta(seconds=1))
        someone_else.post(url, {"range": "1h", "policy": "edited", "params": '{"tolerance": 0.2}'})

        listed = _listed(operator.get(url).content.decode())

        assert list(listed) == [queued[3], queued[2], queued[0]]  # newest first; not another service's
        theirs, waiting, done = listed.values()
        assert "op2" in theirs and "edited" in theirs and "data-whatif-mine" not in theirs
        assert "<strong>you</strong>" in waiting and "data-whatif-mine" in waiting and "static-peak" in waiting
        assert "waiting for a worker" in waiting and "done" in done and "hpa" in done
        queued_at = WhatIfRun.objects.get(pk=queued[0]).created_at.astimezone(ZoneInfo(settings.OPERATOR_TIME_ZONE))
        assert f"{queued_at:%H:%M} {queued_at.tzname()} (" in done  # when, in the operator's zone with UTC beside
        # Everyone's, to anyone who may view the service, none of them marked theirs.
        viewer = Client()
        viewer.force_login(make_user("viewer", "viewer"))
        seen = _listed(viewer.get(url).content.decode())
        assert list(seen) == list(listed) and not any("data-whatif-mine" in row for row in seen.values())
        started = operator.post(url, {"range": "1h", "policy": "hpa"}, headers={"HX-Request": "true"}).content.decode()
        assert 'id="whatif-recent"' in started and f"?job={queued[4]}" in started  # the list comes along, out of band


def test_a_run_is_listed_and_opens_at_its_link_after_an_hour_and_a_redis_flush(
    client: Client, service: Service, queued: list[str]
) -> None:
    from scaling.services import redis_client

    user = make_user("operator", "operator")
    client.force_login(user)
    url = reverse("dashboard:whatif", args=[service.name])
    client.post(url, {"range": "1h", "policy": "hpa"})
    assert whatif_execute(queued[0]) == "done"
    client.post(url, {"range": "1h", "policy": "static-peak"})  # no worker ever takes it
    redis_client().flushdb()

    with time_machine.travel(timezone.now() + timedelta(days=29)):
        client.force_login(user)  # a new session: the old one went with Redis
        listed = _listed(client.get(url).content.decode())
        assert list(listed) == [queued[1], queued[0]]
        assert "killed" in listed[queued[1]] and "done" in listed[queued[0]]
        viewer = Client()
        viewer.force_login(make_user("viewer", "viewer"))  # anyone who may view opens the link
        page = viewer.get(f"{url}?job={queued[0]}")
        assert page.status_code == 200 and "data-whatif-result" in page.content.decode()
        gone = viewer.get(f"{url}?job={queued[1]}", headers={"HX-Request": "true"}).content.decode()
        assert 'data-whatif-status="killed"' in gone and "no worker took it" in gone and "hx-get" not in gone


def test_the_page_lists_the_20_newest_runs(client: Client, service: Service) -> None:
    from tests.factories import make_whatif_run

    now = timezone.now()
    runs = [make_whatif_run(service, created_at=now - timedelta(minutes=i), status="done") for i in range(21)]
    listed = _listed(_login(client, "viewer").get(reverse("dashboard:whatif", args=[service.name])).content.decode())
    assert list(listed) == [run.job_id for run in runs[:20]]
    assert "a deleted user" in listed[runs[0].job_id]  # made by no one


def test_an_unknown_job_is_not_found(client: Client, service: Service) -> None:
    response = _login(client, "viewer").get(reverse("dashboard:whatif", args=[service.name]) + "?job=nope")
    assert response.status_code == 404


def test_rates_from_before_tipoff_ran_the_service_are_replayed_and_said_so(client: Client, queued: list[str]) -> None:
    history = make_service("history-only")
    now = timezone.now()
    MetricSample.objects.bulk_create(
        MetricSample(service=history, ts=now - timedelta(minutes=50) + timedelta(seconds=15 * i), rps=900.0)
        for i in range(160)
    )
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[history.name])
    operator.post(url, {"range": "1h", "policy": "static-peak"})
    assert whatif_execute(queued[0]) == "done"
    body = operator.get(f"{url}?job={queued[0]}").content.decode()
    assert "only the replay is scored" in body
    assert "<th>SLO attainment</th><td>—</td>" in body  # nothing recorded to set beside it
    # Once Tipoff records replica counts, both columns are scored from the first of them.
    MetricSample.objects.create(service=history, ts=now - timedelta(minutes=5), rps=900.0, provisioned=8, ready=8)
    MetricSample.objects.create(service=history, ts=now - timedelta(minutes=4), rps=900.0, provisioned=8, ready=8)
    operator.post(url, {"range": "1h", "policy": "static-peak"})
    assert whatif_execute(queued[1]) == "done"
    body = operator.get(f"{url}?job={queued[1]}").content.decode()
    assert "Both columns are scored from" in body and "the first recorded replica count" in body


def test_a_job_the_time_limit_stops_says_it_failed_instead_of_running(
    client: Client, service: Service, queued: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import scaling.whatif

    def stopped(*args: object, **kwargs: object) -> dict[str, Any]:
        raise SoftTimeLimitExceeded()

    _login(client, "operator").post(reverse("dashboard:whatif", args=[service.name]), {"range": "1h", "policy": "hpa"})
    monkeypatch.setattr(scaling.whatif, "compare", stopped)
    with pytest.raises(SoftTimeLimitExceeded):
        whatif_execute(queued[0])
    run = WhatIfRun.objects.get(pk=queued[0])
    assert run.status == "failed" and run.finished_at is not None
    assert run.error == f"it stopped at the time limit of {RUN_SOFT_TIME_LIMIT_S} s; run it again over a shorter range"


def test_a_job_killed_at_the_hard_time_limit_shows_as_stopped_and_the_page_stops_polling(
    client: Client, service: Service, queued: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import scaling.whatif

    def killed(*args: object, progress: Callable[[float], None], **kwargs: object) -> dict[str, Any]:
        progress(0.3)
        # The worker kills the process: nothing after this line runs, so nothing more is written or freed.
        monkeypatch.setattr(scaling.whatif, "_update", lambda run_id, **fields: False)
        monkeypatch.setattr(scaling.whatif, "_release_slot", lambda user_id, job_id: None)
        raise SystemExit()

    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[service.name])
    _run(operator, service)
    _run(operator, service)  # both of the operator's slots taken
    monkeypatch.setattr(scaling.whatif, "compare", killed)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        with pytest.raises(SystemExit):
            whatif_execute(queued[0])
        monkeypatch.undo()  # the next job's worker lives
        traveller.shift(timedelta(seconds=RUN_TIME_LIMIT_S - 1))
        body = operator.get(f"{url}?job={queued[0]}", headers={"HX-Request": "true"}).content.decode()
        assert 'data-whatif-status="running"' in body and "hx-get" in body  # it may yet finish
        assert "replaying, 30 %" in _run(operator, service).content.decode()  # and holds its slot

        traveller.shift(timedelta(seconds=1))
        body = operator.get(f"{url}?job={queued[0]}", headers={"HX-Request": "true"}).content.decode()
        assert 'data-whatif-status="killed"' in body and "hx-get" not in body  # no more polling
        assert f"stopped at the time limit of {RUN_TIME_LIMIT_S} s" in body and "shorter range" in body
        assert _run(operator, service).status_code == 303  # its slot came back at the same instant


def test_the_page_sees_a_job_progress(
    client: Client, service: Service, queued: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import scaling.whatif

    seen: list[float] = []
    update = scaling.whatif._update

    def spy(run_id: Any, **fields: Any) -> bool:
        written = update(run_id, **fields)
        if "status" not in fields:  # a report of progress while it runs, as the page reads it
            seen.append(WhatIfRun.objects.get(pk=run_id).progress)
        return written

    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[service.name])
    operator.post(url, {"range": "1h", "policy": "hpa"})
    monkeypatch.setattr(scaling.whatif, "_update", spy)
    monkeypatch.setattr("scaling.sim.replay.PROGRESS_EVERY_STEPS", 50)  # an hour is fewer steps than a report's
    assert whatif_execute(queued[0]) == "done"
    assert len(seen) > 2 and seen == sorted(seen) and 0.0 < seen[0] < seen[-1] < 1.0
    # Each report of at least PROGRESS_STEP: a handful of writes of the run's row, not one per slice of the trace.
    assert all(b - a >= scaling.whatif.PROGRESS_STEP - 0.001 for a, b in pairwise(seen))


def _busy_block(body: str) -> str:
    """The refusal naming the jobs that hold the slots (the recent runs below name them too)."""
    return body.split("data-whatif-busy", 1)[1].split("</div>", 1)[0]


def _run(client: Client, service: Service, headers: dict[str, str] | None = None) -> Any:
    return client.post(
        reverse("dashboard:whatif", args=[service.name]), {"range": "1h", "policy": "hpa"}, headers=headers
    )


def test_a_third_job_is_refused_while_two_are_queued_naming_them(
    client: Client, service: Service, queued: list[str]
) -> None:
    operator = _login(client, "operator")
    assert [_run(operator, service).status_code for _ in range(2)] == [303, 303]
    refused = _run(operator, service)
    body = refused.content.decode()
    assert refused.status_code == 429
    assert len(queued) == 2  # nothing more queued
    assert "data-whatif-busy" in body and "as one person may at once (2)" in body
    for job_id in queued:
        assert f"?job={job_id}" in body  # a link to each job holding a slot
    busy = _busy_block(body)
    assert busy.count("waiting for a worker") == 2 and "when one of them finishes" in busy


def test_under_htmx_a_refusal_replaces_the_form_with_an_answer_htmx_swaps(
    client: Client, service: Service, queued: list[str]
) -> None:
    operator = _login(client, "operator")
    _run(operator, service)
    _run(operator, service)
    response = _run(operator, service, {"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200  # htmx 2 swaps no 4xx
    assert response["HX-Retarget"] == "#whatif-form" and response["HX-Reswap"] == "outerHTML"
    assert body.lstrip().startswith('<form id="whatif-form"') and "data-whatif-busy" in body
    assert len(queued) == 2


def test_a_running_job_is_named_with_its_progress(client: Client, service: Service, queued: list[str]) -> None:

    operator = _login(client, "operator")
    _run(operator, service)
    _run(operator, service)
    # As a worker reports it.
    WhatIfRun.objects.filter(pk=queued[0]).update(status="running", started_at=timezone.now(), progress=0.4)
    body = _run(operator, service).content.decode()
    busy = _busy_block(body)
    assert "replaying, 40 %" in busy and busy.count("waiting for a worker") == 1


def test_another_user_is_not_held_back(client: Client, service: Service, queued: list[str]) -> None:
    operator = _login(client, "operator")
    _run(operator, service)
    _run(operator, service)
    assert _run(operator, service).status_code == 429
    other = Client()
    other.force_login(make_user("another-operator", "operator"))
    assert _run(other, service).status_code == 303
    assert len(queued) == 3


@pytest.mark.parametrize("ending", ["done", "failed", "stopped"])
def test_a_job_gives_its_slot_back_when_it_ends(
    client: Client, service: Service, queued: list[str], monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    import scaling.whatif

    operator = _login(client, "operator")
    _run(operator, service)
    _run(operator, service)
    assert _run(operator, service).status_code == 429
    if ending == "done":
        assert whatif_execute(queued[0]) == "done"
    elif ending == "failed":
        monkeypatch.setattr(scaling.whatif, "compare", Mock(side_effect=WhatIfError("no samples")))
        assert whatif_execute(queued[0]) == "failed"
    else:  # the soft time limit, or the worker shutting down
        monkeypatch.setattr(scaling.whatif, "compare", Mock(side_effect=SoftTimeLimitExceeded()))
        with pytest.raises(SoftTimeLimitExceeded):
            whatif_execute(queued[0])
    assert _run(operator, service).status_code == 303
    assert _run(operator, service).status_code == 429  # one slot came back, not more


def test_edited_parameters_are_checked_as_the_policy_editor_checks_them_naming_every_bad_value(
    client: Client, service: Service, queued: list[str]
) -> None:
    response = _login(client, "operator").post(
        reverse("dashboard:whatif", args=[service.name]),
        {"range": "1h", "policy": "edited", "params": '{"tolerance": 7, "scale_down_percent": 150, "nope": 1}'},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "Tolerance must be in [0, 0.5] (got 7)" in body  # the policy editor's own words
    assert "Scale down (%) must be in [0, 100] (got 150)" in body
    assert "unknown policy parameter &#x27;nope&#x27;" in body
    assert queued == []


def test_edited_parameters_the_policy_editor_accepts_run(client: Client, service: Service, queued: list[str]) -> None:
    response = _login(client, "operator").post(
        reverse("dashboard:whatif", args=[service.name]),
        {"range": "1h", "policy": "edited", "params": '{"tolerance": 0.2}'},
    )
    assert response.status_code == 303 and len(queued) == 1
    run = WhatIfRun.objects.get(pk=queued[0])
    assert run.policy == "current" and run.params == {"tolerance": 0.2}


def test_start_and_end_say_their_zone(client: Client, service: Service, settings: Any) -> None:
    settings.OPERATOR_TIME_ZONE = "America/Chicago"
    form = _login(client, "viewer").get(reverse("dashboard:whatif", args=[service.name])).context["form"]
    assert form["start_local"].label == "Start (America/Chicago)" and form["end_local"].label == "End (America/Chicago)"
    # The choice for the repeated hour is offered only when a time falls in it.
    assert [field.name for field in form.shown_fields()] == ["range", "start_local", "end_local", "policy", "params"]


def test_an_unreadable_start_is_its_own_error_naming_the_format(
    client: Client, service: Service, queued: list[str]
) -> None:
    response = _login(client, "operator").post(
        reverse("dashboard:whatif", args=[service.name]),
        {"range": "1h", "policy": "hpa", "start_local": "yesterday at 7", "end_local": "2026-01-02 00:00"},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["start_local"]  # beside the field
    assert "YYYY-MM-DD HH:MM" in body and "Give both start and end" not in body
    assert queued == []


def test_giving_only_one_end_of_the_range_says_give_both(client: Client, service: Service, queued: list[str]) -> None:
    response = _login(client, "operator").post(
        reverse("dashboard:whatif", args=[service.name]),
        {"range": "1h", "policy": "hpa", "start_local": "2026-01-01 00:00", "end_local": ""},
    )
    assert response.status_code == 400 and b"Give both start and end" in response.content


def test_a_result_shows_its_times_in_the_operators_zone_with_utc_beside(
    client: Client, service: Service, queued: list[str]
) -> None:
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[service.name])
    operator.post(url, {"range": "1h", "policy": "hpa"})
    assert whatif_execute(queued[0]) == "done"
    body = operator.get(f"{url}?job={queued[0]}").content.decode()
    heading = body.split('<section class="card whatif-result" data-whatif-result>', 1)[1].split("</h2>", 1)[0]
    assert "UTC)" in heading and "Z" not in heading.replace("UTC", "")


def test_reopening_a_result_shows_the_request_it_came_from(client: Client, service: Service, queued: list[str]) -> None:
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[service.name])
    ends_at = timezone.now() - timedelta(minutes=2)
    start, end = local_input(ends_at - timedelta(minutes=45)), local_input(ends_at)
    operator.post(url, {"range": "6h", "policy": "hpa", "start_local": start, "end_local": end})
    page = operator.get(f"{url}?job={queued[0]}")
    form = page.context["form"]
    assert form["policy"].value() == "hpa"
    assert (form["start_local"].value(), form["end_local"].value()) == (start, end)
    assert form["range"].value() == whatif_page.CUSTOM_RANGE  # not "last 6h": the run did not use it

    operator.post(url, {"range": "1h", "policy": "edited", "params": '{"tolerance": 0.2}'})
    form = operator.get(f"{url}?job={queued[1]}").context["form"]
    assert form["policy"].value() == "edited" and form["range"].value() == "1h"
    assert not form["start_local"].value()  # a preset is sent again as a preset
    assert WhatIfRun.objects.get(id=queued[1]).range_preset == "1h"
    assert WhatIfRun.objects.get(id=queued[0]).range_preset == ""
    assert '"tolerance": 0.2' in form["params"].value()


def test_a_reopened_run_typed_an_hour_long_shows_a_custom_range_not_the_last_hour(
    client: Client, service: Service
) -> None:
    url = reverse("dashboard:whatif", args=[service.name])
    asked_at = timezone.now().replace(microsecond=123_000)
    typed = make_whatif_run(service, created_at=asked_at)  # an hour typed in
    preset = make_whatif_run(service, created_at=asked_at, range_preset="1h")  # "last 1h", as asked
    operator = _login(client, "operator")
    form = operator.get(f"{url}?job={typed.job_id}").context["form"]
    assert form["range"].value() == whatif_page.CUSTOM_RANGE and form["start_local"].value()
    form = operator.get(f"{url}?job={preset.job_id}").context["form"]
    # Sent again, a preset runs over the last hour now, as its own request did: no typed times to hold it.
    assert form["range"].value() == "1h" and not form["start_local"].value() and not form["end_local"].value()


def test_a_custom_range_needs_its_start_and_end(client: Client, service: Service, queued: list[str]) -> None:
    url = reverse("dashboard:whatif", args=[service.name])
    refused = _login(client, "operator").post(url, {"range": whatif_page.CUSTOM_RANGE, "policy": "hpa"})
    assert refused.status_code == 400 and queued == []
    assert "give its start and end" in refused.context["form"].errors["range"][0]


def test_start_and_end_are_read_in_the_operators_zone_asking_which_time_when_the_clocks_fall_back(
    client: Client, queued: list[str], settings: Any
) -> None:
    settings.OPERATOR_TIME_ZONE = "America/New_York"
    night = make_service("fall-back-night")
    # Recorded from 04:00 to 07:00 UTC on the first Sunday of November: 00:00 EDT to 02:00 EST.
    first = datetime(2025, 11, 2, 4, 0, tzinfo=ZoneInfo("UTC"))
    MetricSample.objects.bulk_create(
        MetricSample(service=night, ts=first + timedelta(minutes=i), rps=300.0) for i in range(180)
    )
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[night.name])
    asked = {"range": "1h", "policy": "hpa", "start_local": "2025-11-02T00:30", "end_local": "2025-11-02T01:30"}

    refused = operator.post(url, asked)

    assert refused.status_code == 400 and queued == []
    form = refused.context["form"]
    assert list(form.errors) == ["end_local"] and "happens twice in America/New_York" in form.errors["end_local"][0]
    assert "end_occurrence" in [field.name for field in form.shown_fields()]  # the choice it asks for, beside it
    assert "start_occurrence" not in [field.name for field in form.shown_fields()]

    assert operator.post(url, {**asked, "end_occurrence": "second"}).status_code == 303
    run = WhatIfRun.objects.get(pk=queued[0])
    assert (run.range_start, run.range_end) == (first + timedelta(minutes=30), first + timedelta(hours=2, minutes=30))
    # Reopened, it says which 01:30 it ran to, so that running it again asks nothing.
    reopened = operator.get(f"{url}?job={queued[0]}").context["form"]
    assert (reopened["end_local"].value(), reopened["end_occurrence"].value()) == ("2025-11-02T01:30", "second")
    assert reopened["start_local"].value() == "2025-11-02T00:30"


def test_a_start_the_clocks_skip_is_refused_beside_it(
    client: Client, service: Service, queued: list[str], settings: Any
) -> None:
    settings.OPERATOR_TIME_ZONE = "America/New_York"
    response = _login(client, "operator").post(
        reverse("dashboard:whatif", args=[service.name]),
        {"range": "1h", "policy": "hpa", "start_local": "2026-03-08T02:30", "end_local": "2026-03-08T05:00"},
    )
    assert response.status_code == 400 and queued == []
    errors = response.context["form"].errors
    assert list(errors) == ["start_local"]
    assert "2026-03-08 02:30 does not exist in America/New_York" in errors["start_local"][0]
    assert 'data-field-error="start_local"' in response.content.decode()


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: a connection to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_run_says_it_could_not_be_queued_when_redis_is_unreachable_and_records_nothing(
    client: Client, service: Service, queued: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[service.name])
    with monkeypatch.context() as patched:  # undone before the slots are cleared, in the real Redis
        patched.setattr(scaling_services, "_redis", redis.Redis(host="127.0.0.1", port=_closed_port()))
        response = operator.post(url, {"range": "1h", "policy": "hpa"}, headers={"HX-Request": "true"})
        # Without htmx: the page, saying the service it needs is unavailable.
        page = operator.post(url, {"range": "1h", "policy": "hpa"})
    # The form again, in its own place, with the reason: not a bare 500.
    assert response.status_code == 200 and response["HX-Retarget"] == "#whatif-form"
    body = response.content.decode()
    assert '<form id="whatif-form"' in body
    assert "The run could not be queued: the what-if worker&#x27;s broker (Redis) is unreachable" in body
    assert "(ConnectionError: " in body
    assert queued == [] and not WhatIfRun.objects.exists()
    assert page.status_code == 503 and "The run could not be queued" in page.content.decode()
    assert not WhatIfRun.objects.exists()


def test_run_says_it_could_not_be_queued_when_the_broker_refuses_it(
    client: Client, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(job_id: str) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(tasks.whatif_run, "delay", broker_down)
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[service.name])
    response = operator.post(url, {"range": "1h", "policy": "hpa"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and response["HX-Retarget"] == "#whatif-form"
    assert "The run could not be queued" in response.content.decode()
    # Recorded as what it is, never as "waiting for a worker".
    assert list(WhatIfRun.objects.values_list("status", "error")) == [
        ("failed", "it could not be queued (OperationalError)")
    ]


def test_each_poll_brings_the_recent_runs_and_they_name_the_range_the_result_does(
    client: Client, service: Service, queued: list[str]
) -> None:
    operator = _login(client, "operator")
    url = reverse("dashboard:whatif", args=[service.name])
    operator.post(url, {"range": "1h", "policy": "hpa"}, headers={"HX-Request": "true"})
    job_id = queued[0]

    def poll() -> tuple[str, str]:
        body = operator.get(f"{url}?job={job_id}", headers={"HX-Request": "true"}).content.decode()
        recent = body[body.index('<section id="whatif-recent"') :]
        return body[: body.index('<section id="whatif-recent"')], recent

    _, recent = poll()
    assert 'hx-swap-oob="true"' in recent.split(">", 1)[0] and "waiting for a worker" in recent
    assert whatif_execute(job_id) == "done"
    job, recent = poll()
    assert "done</td>" in recent and "replaying" not in recent and "waiting for a worker" not in recent
    heading = job[job.index("<h2>") + len("<h2>") : job.index(" · ", job.index("<h2>"))]
    listed = recent[recent.index("data-whatif-range>") + len("data-whatif-range>") : recent.index("</a>")]
    assert heading == listed and " → " in listed
