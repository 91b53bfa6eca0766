"""What the REST API answers to requests it cannot serve, and what its document says it answers.

Each of these was a finding of the schemathesis run (test_schema_fuzz.py), kept as a plain test.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db


@pytest.fixture
def document() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_a_form_with_too_many_fields_is_a_400_not_a_500(operator, client_for) -> None:  # type: ignore[no-untyped-def]
    fields = "&".join(f"images=a{i}" for i in range(1200))
    response = client_for(operator).post("/api/v1/images/save/", fields, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["detail"]


def test_a_body_over_the_upload_limit_is_a_413_not_a_500(operator, client_for, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"images": ["a" * 100] * 20})
    response = client_for(operator).post("/api/v1/images/save/", body, content_type="application/json")
    assert response.status_code == 413 and "detail" in response.json()


@pytest.mark.parametrize("path", ["/api/v1/containers/.x/", "/api/v1/jobs/a.b/cancel/", "/api/v1/nothing/", "/v1/search/x"])
def test_a_path_no_api_route_matches_is_a_json_404(path: str, operator, client_for) -> None:  # type: ignore[no-untyped-def]
    for method in ("get", "post", "delete"):
        response = getattr(client_for(operator), method)(path)
        assert response.status_code == 404 and response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Not found."}


def test_pages_outside_the_apis_keep_the_html_404(operator, client_for) -> None:  # type: ignore[no-untyped-def]
    response = Client().get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_the_apis_own_500_is_json_too(rf) -> None:  # type: ignore[no-untyped-def]
    from dashboard.error_views import server_error

    assert json.loads(server_error(rf.get("/api/v1/images/")).content) == {"detail": "internal error"}
    assert json.loads(server_error(rf.get("/docker/v1.47/info")).content) == {"message": "internal server error"}
    assert server_error(rf.get("/images/"))["Content-Type"].startswith("text/html")


def test_collection_actions_are_documented_at_their_own_paths(document: dict) -> None:
    paths = document["paths"]
    for action in ("import", "save", "load", "prune", "remove", "pull"):
        assert list(paths[f"/api/v1/images/{action}/"]) == ["post"]
        assert not any(p["in"] == "path" for p in paths[f"/api/v1/images/{action}/"]["post"].get("parameters", []))
    # ...and no longer folded into one "POST /images/{ref}/" that said only one of them.
    assert "post" not in paths["/api/v1/images/{ref}/"]


def _schema_of(document: dict, path: str, method: str, status: str = "200") -> dict:
    return document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]


@pytest.mark.parametrize("path, method", [
    ("/api/v1/images/{ref}/history/", "get"),
    ("/api/v1/images/{ref}/", "delete"),
    ("/api/v1/images/remove/", "post"),
    ("/api/v1/containers/{id}/diff/", "get"),
    ("/api/v1/search/", "get"),
])
def test_array_answers_are_documented_as_arrays_not_pages(document: dict, path: str, method: str) -> None:
    assert _schema_of(document, path, method)["type"] == "array"


def test_lists_are_still_documented_as_pages(document: dict) -> None:
    assert _schema_of(document, "/api/v1/images/", "get")["$ref"].endswith("/PaginatedImageRowList")


def test_every_operation_documents_its_errors_in_the_detail_shape(document: dict) -> None:
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"] and error["properties"]["detail"]["type"] == "string"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert {"400", "401", "403"} <= statuses, (method, path)
            if "{" in path or method != "get":
                assert "404" in statuses, (method, path)
            if method != "get":
                assert {"409", "503"} <= statuses, (method, path)
            for status in statuses - {"200", "201", "202", "204"}:
                assert _schema_of(document, path, method, status) == {"$ref": "#/components/schemas/Error"}


def test_inspect_documents_its_text_answer_for_a_template(document: dict) -> None:
    content = document["paths"]["/api/v1/images/{ref}/inspect/"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/plain"}


def test_writing_the_schema_does_not_reconcile_containers(member, client_for, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from imagestore.services import containers

    calls: list[int] = []
    monkeypatch.setattr(containers, "reconcile_all", lambda: calls.append(1) or 0)
    assert client_for(member).get("/api/schema/").status_code == 200
    assert calls == []
    assert client_for(member).get("/api/v1/containers/").status_code == 200 and calls == [1]


@pytest.mark.parametrize("path, status", [
    ("/api/v1/containers/a%00b/", 404),
    ("/api/v1/containers/a%00b/logs/", 404),
    ("/api/v1/containers/?name=a%00b", 400),
    ("/api/v1/containers/?status=a%00b", 400),
    ("/v1/search?q=a%00b", 400),
])
def test_a_nul_character_is_refused_before_the_database_sees_it(path: str, status: int, operator, client_for) -> None:  # type: ignore[no-untyped-def]
    # PostgreSQL cannot compare a text holding NUL: asking it was a 500 (psycopg's DataError).
    response = client_for(operator).get(path)
    assert response.status_code == status and "detail" in response.json()
