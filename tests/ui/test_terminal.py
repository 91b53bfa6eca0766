"""The terminal's page parts and its WebSocket's refusals with Django's test client (no
gunicorn): who sees the panel, what each refusal answers, the Run form's validation, and
the hand-over wrapper. The upgrade itself is tested against gunicorn in
tests/integration/test_terminal_socket.py and tests/security/test_terminal_socket.py."""

from __future__ import annotations

import secrets
import subprocess

import pytest
from django.test import Client

from imagestore.handover import HANDED_OVER, HandOverApplication
from imagestore.models import Container

pytestmark = pytest.mark.django_db
UPGRADE = {"HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "Upgrade", "HTTP_SEC_WEBSOCKET_VERSION": "13",
           "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ=="}


@pytest.fixture
def container(make_image) -> Container:  # type: ignore[no-untyped-def]
    return Container.objects.create(id=secrets.token_hex(32), name="busy_hopper", image=make_image("c:1"),
                                    state="running", config={"Cmd": ["sleep", "600"], "Image": "c:1"})


def _signed_in(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_the_terminal_panel_is_for_operators(container: Container, operator, member) -> None:  # type: ignore[no-untyped-def]
    url = f"/containers/{container.id}/"
    # A stand-in supervisor (a process naming the container), so the page's reconcile keeps it running.
    stand_in = subprocess.Popen(["sh", "-c", "sleep 30", container.id])
    try:
        Container.objects.filter(pk=container.pk).update(supervisor_pid=stand_in.pid)
        member_page = _signed_in(member).get(url).content.decode()
        operator_page = _signed_in(operator).get(url).content.decode()
    finally:
        stand_in.kill()
        stand_in.wait()
    assert "busy_hopper" in member_page and "Running" in member_page
    assert "data-terminal-url" not in member_page and "xterm.js" not in member_page
    assert f'data-terminal-url="/containers/{container.id}/terminal/"' in operator_page
    assert "vendor/xterm/xterm.js" in operator_page


def test_a_stopped_container_shows_no_terminal(container: Container, operator) -> None:  # type: ignore[no-untyped-def]
    Container.objects.filter(pk=container.pk).update(state="exited", exit_code=0)
    page = _signed_in(operator).get(f"/containers/{container.id}/").content.decode()
    assert "Exited (0)" in page and "data-terminal-url" not in page


def test_refusals_come_before_any_upgrade(container: Container, operator, member) -> None:  # type: ignore[no-untyped-def]
    url = f"/containers/{container.id}/terminal/"
    origin = {"HTTP_ORIGIN": "http://testserver"}
    assert Client().get(url, **UPGRADE, **origin).status_code == 403  # anonymous: no redirect to a form
    assert _signed_in(member).get(url, **UPGRADE, **origin).status_code == 403
    as_operator = _signed_in(operator)
    assert as_operator.get(url, **UPGRADE, HTTP_ORIGIN="http://evil.example").status_code == 403
    assert as_operator.get(url, **UPGRADE).status_code == 403  # no Origin at all
    assert as_operator.get(url, **origin).status_code == 400  # not a WebSocket handshake
    assert as_operator.post(url, **UPGRADE, **origin).status_code in (403, 405)  # POST: CSRF or method
    assert as_operator.get(url + "?mode=root", **UPGRADE, **origin).status_code in (400, 501)
    # Everything right, but Django's test server gives no socket to take over.
    assert as_operator.get(url, **UPGRADE, **origin).status_code == 501


def test_a_trusted_origin_is_accepted(container: Container, operator, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CSRF_TRUSTED_ORIGINS = ["https://dash.example"]
    answer = _signed_in(operator).get(f"/containers/{container.id}/terminal/", **UPGRADE,
                                      HTTP_ORIGIN="https://dash.example")
    assert answer.status_code == 501  # past the Origin check: only the missing socket stops it


def test_run_form_refuses_a_bad_environment_line(make_image, operator) -> None:  # type: ignore[no-untyped-def]
    image = make_image("c:1")
    answer = _signed_in(operator).post(f"/images/{image.id}/", {"action": "run", "command": "sh", "env": "NOEQUALS"})
    assert answer.status_code == 200 and "is not KEY=value" in answer.content.decode()
    assert not Container.objects.exists()


def test_run_form_is_for_operators(make_image, member) -> None:  # type: ignore[no-untyped-def]
    image = make_image("c:1")
    assert "Run a container" not in _signed_in(member).get(f"/images/{image.id}/").content.decode()
    assert _signed_in(member).post(f"/images/{image.id}/", {"action": "run", "command": "sh"}).status_code == 403
    assert not Container.objects.exists()


def test_a_handed_over_request_makes_gunicorn_write_nothing() -> None:
    """gunicorn closes the connection silently when the application raises StopIteration."""
    def app(environ, start_response):  # type: ignore[no-untyped-def]
        start_response("101 Switching Protocols", [])
        if environ.get("take"):
            environ[HANDED_OVER] = True
        return [b"never"]

    wrapped = HandOverApplication(app)
    assert list(wrapped({}, lambda *a: None)) == [b"never"]
    with pytest.raises(StopIteration):
        wrapped({"take": True}, lambda *a: None)
