"""Operators manage webhooks over REST, on their page and in the admin; the secret is stored
encrypted and never shown; the outbound policy refuses a receiver it would never reach."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from imagestore.models import Webhook, WebhookDelivery
from imagestore.secrets import decrypt
from imagestore.services import webhooks
from imagestore.services.tag import tag_image

pytestmark = pytest.mark.django_db


def test_rest_create_list_change_and_the_delivery_log(client_for, operator, member, make_image,
                                                     django_capture_on_commit_callbacks, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    api = client_for(operator)
    made = api.post("/api/v1/webhooks/", {"url": "https://hooks.example.com/x", "secret": "not-in-clear-9", "events": ["tag"]},
                    format="json")
    assert made.status_code == 201 and "secret" not in made.json() and made.json()["events"] == ["tag"]
    hook = Webhook.objects.get()
    assert decrypt(hook.secret_encrypted) == "not-in-clear-9" and "not-in-clear" not in hook.secret_encrypted
    assert api.post("/api/v1/webhooks/", {"url": "http://169.254.169.254/x", "secret": "k"},
                    format="json").status_code == 400
    assert api.post("/api/v1/webhooks/", {"url": "https://a.example.com/"}, format="json").status_code == 400
    assert client_for(member).get("/api/v1/webhooks/").status_code == 403
    assert api.patch(f"/api/v1/webhooks/{hook.pk}/", {"active": False}, format="json").json()["active"] is False
    api.patch(f"/api/v1/webhooks/{hook.pk}/", {"active": True}, format="json")
    sent: list[int] = []
    monkeypatch.setattr(webhooks, "_send", lambda delivery_id, countdown: sent.append(delivery_id))
    image = make_image(None)
    with django_capture_on_commit_callbacks(execute=True):
        tag_image(image, "x:1")
    delivery = WebhookDelivery.objects.get()
    assert sent == [delivery.pk] and delivery.payload["event"]["action"] == "tag"
    log = api.get(f"/api/v1/webhooks/{hook.pk}/deliveries/").json()["results"]
    assert [(d["state"], d["attempts"]) for d in log] == [("pending", 0)]


def test_back_off_doubles(settings) -> None:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_RETRY_BASE = 10
    assert [webhooks.backoff(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]


def test_page_and_admin(operator, member) -> None:  # type: ignore[no-untyped-def]
    page = Client()
    page.force_login(operator)
    assert page.post("/webhooks/", {"action": "add", "url": "https://h.example.com/", "secret": "s",
                                    "events": "tag, push"}).status_code == 302
    hook = Webhook.objects.get()
    assert hook.events == ["push", "tag"] and "https://h.example.com/" in page.get("/webhooks/").content.decode()
    page.post("/webhooks/", {"action": "toggle", "webhook": hook.pk})
    hook.refresh_from_db()
    assert not hook.active
    page.post("/webhooks/", {"action": "delete", "webhook": hook.pk})
    assert not Webhook.objects.exists()
    outsider = Client()
    outsider.force_login(member)
    assert outsider.get("/webhooks/").status_code == 403
    admin = Client()
    admin.force_login(User.objects.create_superuser("boss", password="pw"))
    response = admin.post("/admin/imagestore/webhook/add/", {"name": "a", "url": "https://a.example.com/",
                                                              "active": "on", "secret": "z", "events_text": "tag"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert decrypt(Webhook.objects.get().secret_encrypted) == "z"
    refused = admin.post("/admin/imagestore/webhook/add/", {"name": "b", "url": "https://b.example.com/",
                                                             "active": "on"})
    assert refused.status_code == 200 and Webhook.objects.count() == 1
