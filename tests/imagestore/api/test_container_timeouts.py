"""``t=nan``, ``t=inf``, negative or huge stop timeouts are a 400 at once (REST and Docker API),
and the service refuses a non-finite timeout instead of waiting forever."""

from __future__ import annotations

import math
import threading

import pytest
from django.test import Client

from imagestore.errors import BadRequest
from imagestore.services import containers as service
from imagestore.services.containers import lifecycle
from imagestore.services.tokens import create_token

pytestmark = pytest.mark.django_db
BAD = ["nan", "inf", "-inf", "-1", "1e9", "99999999", "ten"]


@pytest.fixture
def container(make_image):  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    return service.create_container("busybox:latest", cmd=["true"], name="c1")


@pytest.mark.parametrize("verb", ["stop", "restart"])
@pytest.mark.parametrize("t", BAD)
def test_rest_stop_and_restart_refuse_a_bad_timeout(container, client_for, operator, verb: str, t: str) -> None:  # type: ignore[no-untyped-def]
    response = client_for(operator).post(f"/api/v1/containers/c1/{verb}/?t={t}")
    assert response.status_code == 400, response.content
    assert "t must be a number of seconds from 0 to 3600" in response.json()["detail"]


@pytest.mark.parametrize("verb", ["stop", "restart"])
@pytest.mark.parametrize("t", BAD)
def test_docker_api_stop_and_restart_refuse_a_bad_timeout(container, operator, verb: str, t: str) -> None:  # type: ignore[no-untyped-def]
    client = Client(HTTP_AUTHORIZATION=f"Token {create_token(operator)[1]}")
    response = client.post(f"/docker/v1.47/containers/c1/{verb}?t={t}")
    assert response.status_code == 400, response.content
    assert "t must be a number of seconds" in response.json()["message"]


def test_a_good_timeout_still_stops(container, client_for, operator) -> None:  # type: ignore[no-untyped-def]
    response = client_for(operator).post("/api/v1/containers/c1/stop/?t=2")
    assert response.status_code == 200 and response.json()["state"] == "created"


@pytest.mark.parametrize("timeout", [math.nan, math.inf, -1.0])
def test_the_service_refuses_a_timeout_that_cannot_end(container, timeout: float) -> None:  # type: ignore[no-untyped-def]
    # Shown running, so the old loop would wait for the deadline (never, for nan and inf).
    container.state = "running"
    container.save()
    outcome: list[object] = []

    def wait() -> None:
        try:
            service.wait_container(container, timeout=timeout)
            outcome.append("returned")
        except BadRequest as exc:
            outcome.append(exc)
        finally:
            from django.db import connection

            connection.close()

    monkey = pytest.MonkeyPatch()
    monkey.setattr(lifecycle, "reconcile", lambda c: c)  # no supervisor to find: stay "running"
    try:
        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        thread.join(5)
    finally:
        monkey.undo()
    assert outcome and isinstance(outcome[0], BadRequest), outcome
    with pytest.raises(BadRequest):
        service.stop_container(container, timeout=timeout)
