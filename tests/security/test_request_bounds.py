"""Request-driven denial of service by read-only users, and bodies that used to be a 500:
each answers within 2 s with a 400 or a bounded result.

Before: ``{{pad . N 0}}`` built a 286 MiB answer from 61 characters, nested ``range`` ran
for over 15 s, ``?reference=*?*?...#`` became a backtracking regex (seconds per row, growing
tenfold every four characters of name), and a JSON body nested 100,000 deep raised
RecursionError (a 500) in the REST API and the Docker API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from imagestore.services.tokens import create_token

pytestmark = pytest.mark.django_db
DEEP = "[" * 100_000 + "]" * 100_000
EVIL_REFERENCE = "*?*?*?*?*?*?*?*?*?*?*?*?#"
LONG_NAME = "a" * 40  # Python's regex took ~0.15 s at 24 characters, ten times more every 4


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def _docker_client(user) -> Client:  # type: ignore[no-untyped-def]
    return Client(HTTP_AUTHORIZATION=f"Token {create_token(user)[1]}")


@pytest.mark.parametrize("path", ["/api/v1/images/pull/", "/api/v1/containers/", "/api/v1/registries/"])
def test_a_deeply_nested_rest_body_is_a_400(client_for, operator, path: str) -> None:  # type: ignore[no-untyped-def]
    response = client_for(operator).post(path, DEEP, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "nests deeper than the limit of 64 levels" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/docker/v1.47/containers/create", "/docker/v1.47/auth"])
def test_a_deeply_nested_docker_api_body_is_a_400(operator, path: str) -> None:  # type: ignore[no-untyped-def]
    response = _docker_client(operator).post(path, DEEP, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "nests deeper than the limit of 64 levels" in response.json()["message"]


def test_deeply_nested_docker_api_filters_are_a_400(operator) -> None:  # type: ignore[no-untyped-def]
    response = _docker_client(operator).get("/docker/v1.47/images/json", {"filters": "[" * 5000 + "]" * 5000})
    assert response.status_code == 400 and "nests deeper" in response.json()["message"]


def test_a_padded_template_is_a_400_not_a_huge_answer(make_image, client_for, member) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    response, took = _timed(lambda: client_for(member).get(
        "/api/v1/images/busybox/inspect/", {"format": "{{pad . 50000000 0}}"}))
    assert response.status_code == 400 and took < 2
    assert "larger than the limit of 1048576 characters" in response.json()["detail"]
    # Output grown piece by piece is stopped as it passes the limit, too.
    response, took = _timed(lambda: client_for(member).get(
        "/api/v1/images/busybox/inspect/", {"format": '{{range split (pad "x" 0 100000) " "}}{{json $}}{{end}}'}))
    assert response.status_code == 400 and took < 2
    assert "output is larger than the limit" in response.json()["detail"]


def test_nested_range_stops_at_the_time_limit(make_image, client_for, member) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    rows = 'split (pad "x" 0 4000) " "'
    template = f"{{{{range {rows}}}}}{{{{range {rows}}}}}{{{{end}}}}{{{{end}}}}"  # 16 million turns
    response, took = _timed(lambda: client_for(member).get("/api/v1/images/busybox/inspect/", {"format": template}))
    assert response.status_code == 400 and took < 2
    assert "took longer than the limit of 1 s" in response.json()["detail"]


def test_ordinary_templates_still_work(make_image, client_for, member) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    response = client_for(member).get("/api/v1/images/busybox/inspect/",
                                      {"format": "{{range .RepoTags}}{{.}} {{end}}{{pad .Os 1 1}}"})
    assert response.status_code == 200 and response.content.decode() == "busybox:latest  linux \n"


def test_a_backtracking_reference_filter_answers_quickly(make_image, client_for, member, operator) -> None:  # type: ignore[no-untyped-def]
    make_image(f"{LONG_NAME}:latest")
    docker = _docker_client(operator)
    for pattern, expected in ((EVIL_REFERENCE, []), (EVIL_REFERENCE[:-1], [LONG_NAME])):
        response, took = _timed(lambda: client_for(member).get("/api/v1/images/", {"reference": pattern}))  # noqa: B023
        assert response.status_code == 200 and took < 2
        assert [r["repository"] for r in response.json()["results"]] == expected
        filters = json.dumps({"reference": [pattern]})
        response, took = _timed(lambda: docker.get("/docker/v1.47/images/json", {"filters": filters}))  # noqa: B023
        assert response.status_code == 200 and took < 2
        assert [i["RepoTags"] for i in response.json()] == [[f"{n}:latest"] for n in expected]


def test_a_deeply_nested_exec_form_change_is_shell_form_not_a_recursion_error() -> None:
    """``docker import --change`` / ``commit --change`` values come from requests too."""
    from imagestore.oci.changes import apply_changes

    deep = "[" * 100_000
    assert apply_changes({}, [f"CMD {deep}"]) == {"Cmd": ["/bin/sh", "-c", deep]}
    assert apply_changes({}, ['CMD ["echo", "hi"]']) == {"Cmd": ["echo", "hi"]}
