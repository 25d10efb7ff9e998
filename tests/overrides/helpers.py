"""What the override page tests share: the instant they freeze, a form they vary, a pin to collide with, a
small floor to act on, a large one an admin made alone, and what an approver's confirmation carries."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.test import Client
from django.urls import reverse

from scaling.audit import Actor
from scaling.models import Override, Service
from scaling.overrides import override_create

# Thursday 2026-01-15 12:00 in New York
NOW = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)


def pin_form(**extra: object) -> dict[str, object]:
    """The override form for a pin of 6 from 13:00 to 15:00 New York time on NOW's day, with `extra` over it."""
    data: dict[str, object] = {
        "services": ["win-probability"],
        "kind": "pin",
        "replicas": "6",
        "starts_at_local": "2026-01-15T13:00",
        "ends_at_local": "2026-01-15T15:00",
        "reason": "halftime surge test",
    }
    return data | extra


def earlier_pin(service: Service) -> Override:
    """A pin of 4 from half an hour after NOW for an hour and a half, made earlier: one `pin_form` overlaps."""
    [pin] = override_create(
        services=[service],
        kind="pin",
        replicas=4,
        starts_at=NOW + timedelta(minutes=30),
        ends_at=NOW + timedelta(hours=2),
        reason="earlier pin",
        actor=Actor.system("t"),
    )
    return pin


def hour_floor(service: Service) -> Override:
    """A floor of 3 for the next hour (12:00-13:00 in New York), small enough to need no approval."""
    [override] = override_create(
        services=[service],
        kind="floor",
        replicas=3,
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=1),
        reason="r",
        actor=Actor.system("t"),
    )
    return override


def bypassed_floor(service: Service) -> Override:
    """A floor of 30 for the next hour that an admin made without a second person's approval ("seeded"): above
    an approval threshold of 10, so extending it needs a bypass of its own (`service` must allow 30)."""
    [override] = override_create(
        services=[service],
        kind="floor",
        replicas=30,
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=1),
        reason="r",
        actor=Actor.system("t"),
        admin=True,
        bypass_reason="seeded",
    )
    return override


def seen_in(body: str) -> str:
    """What a confirmation drawn in `body` says its approver was shown (its hidden `seen`)."""
    match = re.search(r'name="seen" value="([^"]*)"', body)
    assert match is not None, "no confirmation drawn"
    return match.group(1)


def shown_to(client: Client, o: Override) -> str:
    """Open the approve step for `o` as `client`, and return what its confirmation says they were shown."""
    return seen_in(client.get(reverse("dashboard:override-approve", args=[o.pk])).content.decode())
