"""The Docker API's gate and its error shapes, through Django's test client."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from imagestore.services.tokens import create_token

pytestmark = pytest.mark.django_db


def _client(user=None) -> Client:  # type: ignore[no-untyped-def]
    if user is None:
        return Client()
    return Client(HTTP_AUTHORIZATION=f"Token {create_token(user)[1]}")


def test_ping_answers_before_auth_with_the_version_headers() -> None:
    for path in ("/docker/_ping", "/docker/v1.47/_ping"):
        response = Client().get(path)
        assert response.status_code == 200 and response.content == b"OK"
        assert response["API-Version"] == "1.47" and response["Ostype"] == "linux"


def test_everything_else_needs_an_operators_token(member, operator) -> None:  # type: ignore[no-untyped-def]
    response = Client().get("/docker/v1.47/images/json")
    assert response.status_code == 401 and "Token" in response.json()["message"]
    response = _client(member).get("/docker/images/json")
    assert response.status_code == 401 and "operators group" in response.json()["message"]
    assert _client(operator).get("/docker/v1.47/images/json").json() == []


def test_errors_have_dockers_shape_and_status(make_image, operator) -> None:  # type: ignore[no-untyped-def]
    make_image("centos:6.6")
    client = _client(operator)
    response = client.get("/docker/v1.47/images/nothere:1/json")
    assert response.status_code == 404 and response.json() == {"message": "No such image: nothere:1"}
    response = client.post("/docker/v1.47/images/centos:6.6/tag?repo=Bad&tag=1")
    assert response.status_code == 400 and "lowercase" in response.json()["message"]
    response = client.get("/docker/v1.47/images/json", {"filters": "{not json"})
    assert response.status_code == 400
    response = client.post("/docker/v1.47/containers/create", data=json.dumps({"Image": "centos:6.6", "Tty": "yes"}),
                           content_type="application/json")
    assert response.status_code == 400 and "Tty must be a boolean" in response.json()["message"]
    summary = client.get("/docker/v1.47/images/json").json()[0]
    assert summary["RepoTags"] == ["centos:6.6"] and summary["Id"].startswith("sha256:")


def test_the_endpoint_can_be_switched_off(operator, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DOCKER_API_ENABLED = False
    assert Client().get("/docker/_ping").status_code == 404
    assert _client(operator).get("/docker/images/json").status_code == 404
