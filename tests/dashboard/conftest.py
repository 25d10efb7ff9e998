"""Logged-in clients for the dashboard's page tests, one per role they read or change pages as."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import make_user


@pytest.fixture
def viewer(client: Client) -> Client:
    client.force_login(make_user("viewer", "viewer"))
    return client


@pytest.fixture
def admin(client: Client) -> Client:
    client.force_login(make_user("admin", "admin"))
    return client
