"""The Repositories page and the image page say how to pull from this dashboard's /v2/ and who may push."""

from __future__ import annotations

import pytest
from django.test import Client

from imagestore.models import Repository, RepositoryGrant

pytestmark = pytest.mark.django_db
HOST = "127.0.0.1:8000"


def test_repositories_page_shows_the_pull_command_and_pushers(make_image, member, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    image = make_image("127.0.0.1:8000/team/app:1")
    make_image("busybox:latest", marker="b")
    make_image("quay.io/org/tool:2", marker="c")
    RepositoryGrant.objects.create(path="team/*", user=member, can_push=True)
    Repository.objects.filter(path="team/app").update(public=True)
    client = Client(HTTP_HOST=HOST)
    client.force_login(member)
    with django_assert_max_num_queries(12):
        page = client.get("/repositories/").content.decode()
    assert f"docker pull {HOST}/team/app:1" in page
    assert f"docker pull {HOST}/library/busybox:latest" in page
    assert f"docker pull {HOST}/quay.io/org/tool:2" in page
    assert "operators, mia" in page and "public" in page
    detail = client.get(f"/images/{image.short_id}/").content.decode()
    assert f"docker pull {HOST}/team/app:1" in detail
