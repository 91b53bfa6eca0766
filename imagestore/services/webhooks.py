"""Webhooks: audit events POSTed to operators' receivers.

Life of a delivery: an event is recorded (services.audit); once its transaction commits, each
active webhook whose event filter matches gets a WebhookDelivery row and a Celery task. The
task makes one attempt through the outbound policy (the receiver must be allowed like any
other target: loopback and private addresses only when OUTBOUND_ALLOW names them), signing the
body with the webhook's secret: ``X-Signature-256: sha256=<hex HMAC-SHA256 of the body>`` (as
GitHub signs, so its verification recipes apply). A 2xx answer delivers it; anything else is
tried again after WEBHOOK_RETRY_BASE x 2^(attempt-1) seconds, up to WEBHOOK_MAX_ATTEMPTS,
then the delivery is failed. Every attempt's status or error is kept on the row.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from ..errors import BadRequest
from ..models import AuditEvent, Webhook, WebhookDelivery
from ..oci.outbound import OutboundRefused
from ..oci.redact import redact_text
from ..secrets import decrypt, encrypt
from .registries import outbound_policy

log = logging.getLogger(__name__)
MAX_ERROR = 2000


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def clean_events(events: Any) -> list[str]:
    if events in (None, ""):
        return []
    if isinstance(events, str):
        events = [e.strip() for e in events.split(",")]
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise BadRequest(gettext("events must be a list of action names"), field="events")
    cleaned = [e.strip() for e in events if e.strip()]
    if any(len(e) > 32 for e in cleaned):
        raise BadRequest(gettext("action names are at most 32 characters"), field="events")
    return sorted(set(cleaned))


def check_url(url: str) -> str:
    try:
        outbound_policy().check_url(url)
    except (OutboundRefused, ValueError) as exc:
        raise BadRequest(str(exc), field="url") from None
    return url


def create_webhook(*, url: str, secret: str, events: Any = None, name: str = "", active: bool = True,
                   owner: Any = None) -> Webhook:
    if not secret:
        raise BadRequest(gettext("a secret is needed to sign the deliveries"), field="secret")
    return Webhook.objects.create(name=name, url=check_url(url), events=clean_events(events),
                                  secret_encrypted=encrypt(secret), active=active,
                                  owner=owner if getattr(owner, "pk", None) else None)


def change_webhook(webhook: Webhook, *, url: str | None = None, secret: str | None = None, events: Any = None,
                   name: str | None = None, active: bool | None = None) -> Webhook:
    if url is not None:
        webhook.url = check_url(url)
    if secret:
        webhook.secret_encrypted = encrypt(secret)
    if events is not None:
        webhook.events = clean_events(events)
    if name is not None:
        webhook.name = name
    if active is not None:
        webhook.active = active
    webhook.save()
    return webhook


def payload(event: AuditEvent) -> dict[str, Any]:
    from .audit import event_row

    return {"event": event_row(event)}


def notify_on_commit(events: list[AuditEvent]) -> None:
    """After the events' transaction commits (a rolled-back change sends nothing)."""
    ids = [e.pk for e in events if e.pk]
    if ids:
        transaction.on_commit(lambda: fan_out(ids))


def fan_out(event_ids: list[int]) -> list[WebhookDelivery]:
    hooks = list(Webhook.objects.filter(active=True))
    if not hooks:
        return []
    deliveries = []
    for event in AuditEvent.objects.filter(pk__in=event_ids).order_by("id"):
        for hook in hooks:
            if hook.events and event.action not in hook.events:
                continue
            deliveries.append(WebhookDelivery(webhook=hook, event=event, payload=payload(event)))
    created = WebhookDelivery.objects.bulk_create(deliveries)
    for delivery in created:
        _send(delivery.pk, countdown=0)
    return created


def _send(delivery_id: int, countdown: float) -> None:
    from .. import tasks

    try:
        tasks.deliver_webhook.apply_async((delivery_id,), countdown=countdown, retry=True)
    except Exception as exc:  # the broker is down: the row stays pending, with the reason
        log.warning("webhook delivery %s not queued: %s", delivery_id, exc)
        WebhookDelivery.objects.filter(pk=delivery_id).update(last_error=redact_text(f"not queued: {exc}")[:MAX_ERROR])


def backoff(attempt: int) -> float:
    """Seconds before the try after ``attempt`` (1-based): base, 2 x base, 4 x base, ..."""
    return float(settings.WEBHOOK_RETRY_BASE) * (2 ** (attempt - 1))


def deliver(delivery_id: int) -> WebhookDelivery | None:
    """One attempt; queues the next one (with back-off) when it fails and attempts are left."""
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update().select_related("webhook")
                    .filter(pk=delivery_id, state=WebhookDelivery.State.PENDING).first())
        if delivery is None:
            return None  # delivered, failed or gone: a repeated task is a no-op
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
    hook = delivery.webhook
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "imagestore-webhook/1",
               "X-Signature-256": sign(decrypt(hook.secret_encrypted), body),
               "X-Imagestore-Event": str(delivery.payload.get("event", {}).get("action", "")),
               "X-Imagestore-Delivery": str(delivery.pk)}
    status: int | None = None
    error = ""
    try:
        response = outbound_policy().session().post(hook.url, data=body, headers=headers,
                                                    timeout=settings.WEBHOOK_TIMEOUT, allow_redirects=False)
        status = response.status_code
        response.close()
        if not 200 <= status < 300:
            error = f"the receiver answered {status}"
    except (requests.RequestException, OutboundRefused, OSError) as exc:
        error = redact_text(str(exc)) or exc.__class__.__name__
    now = timezone.now()
    fields: dict[str, Any] = {"last_status": status, "last_error": error[:MAX_ERROR]}
    if not error:
        fields.update(state=WebhookDelivery.State.DELIVERED, delivered_at=now, next_attempt_at=None)
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        fields.update(state=WebhookDelivery.State.FAILED, next_attempt_at=None)
    else:
        wait = backoff(delivery.attempts)
        fields.update(next_attempt_at=now + timedelta(seconds=wait))
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    if error and delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        _send(delivery.pk, countdown=backoff(delivery.attempts))
    delivery.refresh_from_db()
    return delivery
