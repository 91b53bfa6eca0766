"""Issue 10 finding 7, container environment: values (passwords, API keys) are for operators.
Readers see each variable's name with ``***`` for its value. (The Docker API, including
container inspect, is for operators' tokens only, and the containers page shows no env.)"""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from imagestore.services import containers as service
from imagestore.services.tokens import create_token

pytestmark = pytest.mark.django_db
SECRET = "hunter2-db-password"


@pytest.fixture
def container(make_image):  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    return service.create_container("busybox:latest", cmd=["true"], env=[f"DB_PASSWORD={SECRET}", "MODE=x=y"])


def _as(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_login(user)
    return client


def test_readers_see_env_names_without_values(container, member) -> None:  # type: ignore[no-untyped-def]
    for response in (_as(member).get(f"/api/v1/containers/{container.id}/"),
                     _as(member).get("/api/v1/containers/?all=1")):
        assert response.status_code == 200 and SECRET not in response.content.decode()
    shown = _as(member).get(f"/api/v1/containers/{container.id}/").json()
    assert shown["config"]["Env"] == ["DB_PASSWORD=***", "MODE=***"]
    page = Client()
    page.force_login(member)
    assert SECRET not in page.get("/containers/").content.decode()


def test_operators_see_the_values(container, operator) -> None:  # type: ignore[no-untyped-def]
    shown = _as(operator).get(f"/api/v1/containers/{container.id}/").json()
    assert shown["config"]["Env"] == [f"DB_PASSWORD={SECRET}", "MODE=x=y"]
    inspect = Client(HTTP_AUTHORIZATION=f"Token {create_token(operator)[1]}").get(
        f"/docker/v1.47/containers/{container.id}/json")
    assert f"DB_PASSWORD={SECRET}" in inspect.json()["Config"]["Env"]
