"""Who may open a container's terminal (ui/terminal.py), against a real gunicorn: a
signed-in operator, from a page of this dashboard. Anyone else is refused before the
WebSocket upgrade, so no process is started for them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from imagestore.models import Container
from tests.integration.conftest import redis_broker, start_dashboard, start_worker  # noqa: F401 - fixtures
from tests.integration.terminals import (  # noqa: F401 - fixtures
    Dashboard,
    connect,
    dashboard_fixture,
    handshake,
    read_until,
    running_container_fixture,
    session_cookie,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_anonymous_is_refused(dashboard: Dashboard, running_container: Container) -> None:
    answer = handshake(dashboard.url + dashboard.terminal_path(running_container), Origin=dashboard.url)
    assert answer.status_code == 403


def test_a_signed_in_non_operator_is_refused(dashboard: Dashboard, running_container: Container,
                                             member: User) -> None:
    answer = handshake(dashboard.url + dashboard.terminal_path(running_container), Origin=dashboard.url,
                       Cookie=session_cookie(member))
    assert answer.status_code == 403


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:1", "null", ""])
def test_an_operator_session_from_another_origin_is_refused(dashboard: Dashboard, running_container: Container,
                                                            operator: User, origin: str) -> None:
    """Cross-site WebSocket hijacking: another site's page opening the socket with the
    operator's cookie (or a client sending no Origin at all)."""
    headers = {"Cookie": session_cookie(operator)}
    if origin:
        headers["Origin"] = origin
    answer = handshake(dashboard.url + dashboard.terminal_path(running_container), **headers)
    assert answer.status_code == 403
    assert "Origin" in answer.text


def test_the_same_operator_from_the_dashboards_own_origin_is_upgraded(dashboard: Dashboard,
                                                                      running_container: Container,
                                                                      operator: User) -> None:
    answer = handshake(dashboard.url + dashboard.terminal_path(running_container), Origin=dashboard.url,
                       Cookie=session_cookie(operator))
    assert answer.status_code == 101
    answer.close()
