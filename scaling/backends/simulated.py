"""The simulated fleet as a backend: the same interfaces the AWS backends implement.

Fleet state lives in the database (SimulatedFleet) so every worker process
sees the same replicas; demand comes from the game calendar in the Game table.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from django.db import transaction

from scaling import selectors
from scaling.backends.base import ActuationResult, FleetStatus, MetricWindow
from scaling.models import Service, SimulatedFleet
from scaling.policy import capacity
from scaling.policy.types import GameSpec
from scaling.sim.fleet import FleetState, observe
from scaling.sim.gentrace import GenParams
from scaling.sim.live import demand_at
from scaling.sim.serving import ServingModel


def _fleet(service: Service) -> SimulatedFleet:
    fleet, _ = SimulatedFleet.objects.get_or_create(service=service, defaults={"ready_at": [], "seed": service.pk or 0})
    return fleet


def _state(fleet: SimulatedFleet) -> FleetState:
    return FleetState(tuple(datetime.fromisoformat(t) for t in fleet.ready_at))


def serving_model(service: Service) -> ServingModel:
    return capacity.serving_model(selectors.service_spec(service))


def traffic_params(fleet: SimulatedFleet) -> GenParams:
    """The benchmark generator's shape, scaled to this service's share of the product's traffic."""
    base = GenParams()
    return replace(
        base, base_rps=base.base_rps * fleet.demand_scale, per_game_rps=base.per_game_rps * fleet.demand_scale
    )


def games_around(now: datetime) -> list[GameSpec]:
    """Games whose traffic can reach into the demo day around `now`."""
    return list(selectors.game_specs(now - timedelta(hours=36), now + timedelta(hours=36)))


class SimulatedMetricSource:
    def fetch(self, service: Service, now: datetime) -> MetricWindow:
        fleet = _fleet(service)
        games, params = games_around(now), traffic_params(fleet)
        point = observe(
            _state(fleet),
            now,
            lambda t: demand_at(t, games, params=params, seed=fleet.seed),
            serving_model(service),
            seed=fleet.seed,
        )
        return MetricWindow(points=(point,))


class SimulatedActuator:
    def status(self, service: Service, now: datetime) -> FleetStatus:
        state = _state(_fleet(service))
        return FleetStatus(provisioned=state.provisioned(), ready=state.ready(now), desired=state.provisioned())

    def set_capacity(self, service: Service, replicas: int, now: datetime) -> ActuationResult:
        with transaction.atomic():
            _fleet(service)
            fleet = SimulatedFleet.objects.select_for_update().get(service=service)
            state = _state(fleet).set_capacity(replicas, now, service.provisioning_delay_s)
            fleet.ready_at = [t.isoformat() for t in state.ready_at]
            fleet.save(update_fields=["ready_at", "updated_at"])
        return ActuationResult("ok", f"set to {replicas}")
