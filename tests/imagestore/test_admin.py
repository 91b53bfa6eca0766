"""The admin goes through the same removal rules as the API."""

from __future__ import annotations

import secrets

import pytest
from django.contrib.auth.models import User
from django.test import Client

from imagestore.models import Container, Image, Tag
from imagestore.services.tag import tag_image

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(db) -> Client:  # type: ignore[no-untyped-def]
    user = User.objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(user)
    return client


def test_every_model_has_a_changelist(admin_client: Client, make_image) -> None:  # type: ignore[no-untyped-def]
    make_image("centos:6.6")
    for model in ("image", "tag", "repository", "layer", "repodigest", "container", "job", "registrycredential"):
        response = admin_client.get(f"/admin/imagestore/{model}/")
        assert response.status_code == 200, model
    image = Image.objects.get()
    assert admin_client.get(f"/admin/imagestore/image/{image.pk}/change/").status_code == 200


def test_admin_remove_action_follows_rmi_rules(admin_client: Client, make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    tag_image(image, "other/centos:1")
    response = admin_client.post("/admin/imagestore/image/", {"action": "remove_images", "_selected_action": [image.pk]},
                                 follow=True)
    assert "referenced in multiple repositories" in response.content.decode()
    assert Image.objects.filter(pk=image.pk).exists() and Tag.objects.count() == 2
    admin_client.post("/admin/imagestore/image/", {"action": "force_remove_images", "_selected_action": [image.pk]})
    assert not Image.objects.exists()


def test_admin_cannot_raw_delete_an_image_a_container_uses(admin_client: Client, make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    Container.objects.create(id=secrets.token_hex(32), name="busy_turing", image=image, state="exited")
    response = admin_client.post("/admin/imagestore/image/", {"action": "delete_selected",
                                                              "_selected_action": [image.pk]})
    assert response.status_code in (200, 302)
    assert Image.objects.filter(pk=image.pk).exists()
    assert admin_client.get(f"/admin/imagestore/image/{image.pk}/delete/").status_code == 403
    response = admin_client.post("/admin/imagestore/image/", {"action": "remove_images", "_selected_action": [image.pk]},
                                 follow=True)
    assert "busy_turing" in response.content.decode() or "container" in response.content.decode()
    assert Image.objects.filter(pk=image.pk).exists()


def test_admin_needs_staff(make_image) -> None:  # type: ignore[no-untyped-def]
    make_image()
    client = Client()
    assert client.get("/admin/imagestore/image/").status_code == 302
    client.force_login(User.objects.create_user("plain", password="pw"))
    assert client.get("/admin/imagestore/image/").status_code == 302
