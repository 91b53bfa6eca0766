"""The Docker API never answers bad input with a 500 or Django's HTML: unknown paths, bodies that
are not JSON, fields of the wrong type all get Docker's own ``{"message": ...}`` and a 4xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagestore.models import Container
from imagestore.services.tokens import create_token

pytestmark = pytest.mark.django_db

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture
def docker(operator) -> Client:  # type: ignore[no-untyped-def]
    return Client(HTTP_AUTHORIZATION=f"Token {create_token(operator)[1]}")


def _post_json(client: Client, path: str, body: Any) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


def _is_dockers_error(response: Any, status: int) -> bool:
    return (response.status_code == status and response["Content-Type"] == "application/json"
            and isinstance(response.json().get("message"), str))


def test_create_with_a_numeric_user_is_a_400_and_creates_nothing(make_image, docker) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    response = _post_json(docker, "/docker/v1.47/containers/create", {"Image": "busybox:latest", "Cmd": ["sh"], "User": 1000})
    assert _is_dockers_error(response, 400) and "User must be a string" in response.json()["message"]
    assert not Container.objects.exists()
    # A uid as a string is what Docker takes, and it works.
    response = _post_json(docker, "/docker/v1.47/containers/create", {"Image": "busybox:latest", "Cmd": ["sh"], "User": "1000"})
    assert response.status_code == 201 and Container.objects.get().config["User"] == "1000"


@pytest.mark.parametrize("field, value", [("WorkingDir", 5), ("Image", 5), ("Image", ["busybox"]), ("User", {"uid": 0})])
def test_create_with_a_field_of_the_wrong_type_is_a_400(field: str, value: Any, make_image, docker) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    body = {"Image": "busybox:latest", "Cmd": ["sh"], field: value}
    response = _post_json(docker, "/docker/v1.47/containers/create", body)
    assert _is_dockers_error(response, 400) and f"{field} must be a string" in response.json()["message"]
    assert not Container.objects.exists()


def test_login_with_fields_of_the_wrong_type_is_a_400_not_a_500(docker) -> None:  # type: ignore[no-untyped-def]
    for body in ({"serveraddress": 5, "username": "u", "password": "p"},
                 {"serveraddress": "127.0.0.1:1", "username": ["u"], "password": "p"},
                 {"serveraddress": "127.0.0.1:1", "username": "u", "password": 1234}):
        assert _is_dockers_error(_post_json(docker, "/docker/v1.47/auth", body), 400), body


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe\x00", b"[1, 2]", b'"text"', b"null"])
def test_a_body_that_is_not_a_json_object_is_a_400(raw: bytes, docker) -> None:  # type: ignore[no-untyped-def]
    for path in ("/docker/v1.47/containers/create", "/docker/v1.47/auth"):
        assert _is_dockers_error(docker.post(path, data=raw, content_type="application/json"), 400), (path, raw)


@pytest.mark.parametrize("body", [{"Cmd": ["a\x00b"]}, {"Env": ["A=\x00"]}, {"User": "\x00"}, {"Labels": {"\x00": "x"}}])
def test_a_nul_character_in_a_body_is_a_400_not_a_500(body: dict, make_image, docker) -> None:  # type: ignore[no-untyped-def]
    # PostgreSQL stores no NUL in text or jsonb: saving one was a 500 (DataError).
    make_image("busybox:latest")
    response = _post_json(docker, "/docker/v1.47/containers/create", {"Image": "busybox:latest", "Cmd": ["sh"], **body})
    assert _is_dockers_error(response, 400) and "NUL" in response.json()["message"]
    assert not Container.objects.exists()


def test_a_nul_character_in_a_filter_or_container_ref_is_refused(docker) -> None:  # type: ignore[no-untyped-def]
    response = docker.get("/docker/v1.47/containers/json", {"all": "1", "filters": json.dumps({"name": ["a\x00b"]})})
    assert _is_dockers_error(response, 400)
    assert _is_dockers_error(docker.get("/docker/v1.47/containers/a%00b/json"), 404)
    assert _is_dockers_error(docker.post("/docker/v1.47/commit?container=a%00b"), 404)


def test_a_body_over_the_upload_limit_is_a_413(docker, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = _post_json(docker, "/docker/v1.47/containers/create", {"Image": "busybox", "Env": ["A=" + "a" * 2048]})
    assert _is_dockers_error(response, 413)


@pytest.mark.parametrize("path", ["/docker/v1.47/networks", "/docker/networks/create", "/docker/v1.47/containers/x/attach/tcp",
                                  "/docker/v1.47/containers/a/b/json", "/docker/v9/anything", "/docker/"])
def test_an_unknown_path_is_dockers_json_404(path: str, docker) -> None:  # type: ignore[no-untyped-def]
    for client in (docker, Client()):  # signed in or not, and whatever the method (no CSRF page either)
        for method in ("get", "post", "delete", "put"):
            response = getattr(client, method)(path)
            if client is not docker and method != "get":
                # A body-taking request of nobody is refused before anything looks at it (its path either).
                assert _is_dockers_error(response, 401), (method, path)
                continue
            assert _is_dockers_error(response, 404), (method, path)
            assert response.json()["message"] == "page not found"


CREATE_BODIES = st.fixed_dictionaries({}, optional={
    key: JSON_VALUES for key in ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Tty", "OpenStdin", "Labels")
} | {"Image": st.just("busybox:latest") | JSON_VALUES}) | JSON_VALUES
LOGIN_BODIES = st.fixed_dictionaries({}, optional={
    key: JSON_VALUES for key in ("serveraddress", "username", "password", "email")
}) | JSON_VALUES


@settings(max_examples=40, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(create=CREATE_BODIES, login=LOGIN_BODIES)
def test_any_json_body_to_create_or_login_is_answered_without_a_server_error(  # type: ignore[no-untyped-def]
    create: Any, login: Any, busybox_image, docker, no_name_resolution,
) -> None:
    for path, body in (("/docker/v1.47/containers/create", create), ("/docker/v1.47/auth", login)):
        response = _post_json(docker, path, body)
        assert response.status_code < 500 and isinstance(response.json(), dict), (path, body)
        if response.status_code >= 400:
            assert isinstance(response.json()["message"], str), (path, body)


@pytest.fixture
def busybox_image(make_image):  # type: ignore[no-untyped-def]
    return make_image("busybox:latest")


FILTER_KEYS = ("dangling", "reference", "before", "since", "label", "status", "ancestor", "name", "stars",
               "is-official", "is-automated")
QUERIES = st.fixed_dictionaries({}, optional={
    "filters": st.one_of(st.text(max_size=20), st.dictionaries(st.sampled_from(FILTER_KEYS), JSON_VALUES, max_size=3)
                         .map(json.dumps)),
    "all": st.sampled_from(["1", "true", "0", "x", ""]),
    "term": st.text(max_size=20), "limit": st.text(max_size=6), "names": st.text(max_size=20),
    "path": st.text(max_size=20), "signal": st.text(max_size=8), "t": st.text(max_size=6),
    "repo": st.text(max_size=20), "tag": st.text(max_size=20), "force": st.sampled_from(["1", "0", "x"]),
})
GET_PATHS = ("images/json", "containers/json", "images/search", "images/{image}/json", "images/{image}/history",
             "images/get", "containers/{container}/json", "containers/{container}/changes",
             "containers/{container}/archive", "containers/{container}/logs", "version", "info")


@settings(max_examples=15, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERIES, name=st.sampled_from(["busybox:latest", "busybox", "nothere:1", "sha256:00", "UPPER", "a@b"]))
def test_any_query_to_the_reading_endpoints_is_answered_without_a_server_error(  # type: ignore[no-untyped-def]
    query: dict[str, str], name: str, busybox_image, docker, no_name_resolution,
) -> None:
    from imagestore.services.containers import create_container

    container = Container.objects.first() or create_container("busybox:latest", cmd=["sh"])
    for template in GET_PATHS:
        path = "/docker/v1.47/" + template.format(image=name, container=container.id if "busy" in name else name)
        response = docker.get(path, {k: v for k, v in query.items() if k != "follow"})
        assert response.status_code < 500, (path, query, response.content[:200])
        if response.status_code >= 400:
            assert isinstance(response.json()["message"], str), (path, query)
