"""Webhooks through a real Celery worker to a loopback receiver (allowed by OUTBOUND_ALLOW, as
the outbound policy wants): a signed delivery that verifies with the secret; a receiver that
fails twice then succeeds gets three attempts, spaced by the back-off, all in the delivery log."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from imagestore.models import WebhookDelivery
from imagestore.services import webhooks
from imagestore.services.tag import tag_image
from tests.integration.registry import allow_outbound

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class Receiver:
    """Answers 500 to the first ``failures`` POSTs, then 204; keeps what it was sent."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append({"body": body, "headers": dict(self.headers), "at": time.monotonic()})
                failing = len(outer.received) <= outer.failures
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} deliveries arrived"
            time.sleep(0.05)


@pytest.fixture
def receivers(start_worker, monkeypatch):  # type: ignore[no-untyped-def]
    made: list[Receiver] = []

    def make(failures: int = 0) -> Receiver:
        receiver = Receiver(failures)
        allow_outbound(receiver.url.split("/")[2])
        made.append(receiver)
        return receiver

    monkeypatch.setenv("WEBHOOK_RETRY_BASE", "1")  # the worker's: 1 s, then 2 s
    yield make, start_worker
    for receiver in made:
        receiver.server.shutdown()


def test_signed_delivery_and_retries_with_back_off(receivers, make_image, operator) -> None:  # type: ignore[no-untyped-def]
    make, start_worker = receivers
    good, flaky = make(), make(failures=2)
    start_worker()
    webhooks.create_webhook(url=good.url, secret="s3cret", events=["tag"], name="good", owner=operator)
    webhooks.create_webhook(url=flaky.url, secret="other", events=["tag"], name="flaky")
    image = make_image(None)
    tag_image(image, "hooked:1")

    good.wait_for(1)
    sent = good.received[0]
    assert sent["headers"]["X-Signature-256"] == "sha256=" + hmac.new(b"s3cret", sent["body"], hashlib.sha256).hexdigest()
    event = json.loads(sent["body"])["event"]
    assert (event["action"], event["object_id"], event["object_names"]) == ("tag", image.id, ["hooked:1"])
    assert sent["headers"]["X-Imagestore-Event"] == "tag"

    flaky.wait_for(3)
    gaps = [b["at"] - a["at"] for a, b in zip(flaky.received, flaky.received[1:], strict=False)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # 1 s, then 2 s
    deadline = time.monotonic() + 10
    while (row := WebhookDelivery.objects.get(webhook__name="flaky")).state == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (row.state, row.attempts, row.last_status) == ("delivered", 3, 204)
    assert WebhookDelivery.objects.get(webhook__name="good").attempts == 1
    assert len(flaky.received) == 3 and len(good.received) == 1  # the import's events were not asked for
