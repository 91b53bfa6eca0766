"""The REST API's error ``detail`` in the request's language: Chinese for ``Accept-Language:
zh-Hans`` (the service's message and DRF's own), English otherwise, the status the same."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_a_service_error_detail_follows_accept_language(client_for, member) -> None:  # type: ignore[no-untyped-def]
    client = client_for(member)
    chinese = client.get("/api/v1/images/nope/", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert chinese.status_code == 404 and chinese.json()["detail"] == "没有这个镜像：nope"
    english = client.get("/api/v1/images/nope/")
    assert english.status_code == 404 and english.json()["detail"] == "No such image: nope"


def test_a_refusal_and_a_bad_filter_in_chinese(client_for, member) -> None:  # type: ignore[no-untyped-def]
    anonymous = client_for(None).get("/api/v1/images/", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert anonymous.status_code in (401, 403) and "身份" in anonymous.json()["detail"]  # DRF's catalogue
    bad = client_for(member).get("/api/v1/images/", {"reference": "[-x]"}, HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert bad.status_code == 400 and "模式语法错误" in bad.json()["detail"]


def test_an_oci_layer_error_is_translated_at_the_interface(client_for, operator) -> None:  # type: ignore[no-untyped-def]
    """imagestore/oci imports no Django: its errors keep their template, the API translates it."""
    client = client_for(operator)
    bad = client.post("/api/v1/images/pull/", {"reference": "Bad Name"}, format="json",
                      HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert bad.status_code == 400 and bad.json()["detail"].startswith("引用格式无效"), bad.json()
    english = client.post("/api/v1/images/pull/", {"reference": "Bad Name"}, format="json")
    assert english.json()["detail"].startswith("invalid reference format"), english.json()
