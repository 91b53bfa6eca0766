"""The browser terminal end to end in headless Chromium: an operator runs a container from
the image's page (the Run form, `sh` with a terminal), its page opens the container's own
terminal (xterm.js over the dashboard's WebSocket), `echo $((6*7))` typed there prints 42 and
the terminal follows the window's size; a new shell from a running container's page does
the same, and closing the tab ends that shell, not the container."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestore.models import Container, Image
from imagestore.services import containers as service
from imagestore.services.containers.console import exec_terminal
from imagestore.services.import_ import import_image
from tests.builders import busybox_rootfs, tar_directory
from tests.conftest import require_tool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_container_left_running() -> Iterator[None]:
    """What the tests (and their Run forms) started is stopped and removed after them."""
    yield
    for container in Container.objects.all():
        service.remove_container(container, force=True)


@pytest.fixture
def busybox(tmp_path: Path) -> Image:
    require_tool("runc")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    return import_image(io.BytesIO(tar_directory(rootfs, "gzip")), repository="e2e/busybox:1")


def _screen(page) -> str:  # type: ignore[no-untyped-def]
    return page.inner_text(".xterm-rows")


def _size(page, marker: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """rows and columns as the shell's terminal has them (``stty size``)."""
    page.keyboard.type(f"echo SIZE{marker} $(stty size)\n")
    pattern = f"SIZE{marker} (\\d+) (\\d+)"
    page.wait_for_function(f"/{pattern}/.test(document.querySelector('.xterm-rows').innerText)")
    found = re.search(pattern, _screen(page))
    assert found is not None
    return int(found[1]), int(found[2])


def _sign_in(page, url: str, next_path: str, user: str = "olive", password: str = "pw-operator") -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}{next_path}")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{url}{next_path}")


def _type_and_see(page, typed: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    page.click(".xterm")
    page.keyboard.type(typed)
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelector('.xterm-rows').innerText.includes({expected!r})")


def test_run_form_starts_a_container_and_opens_its_terminal(browser_page, start_dashboard, operator,  # type: ignore[no-untyped-def]
                                                            busybox: Image) -> None:
    """`docker run -it IMAGE sh` from the image's page: the container's own terminal, attached."""
    page = browser_page
    url = start_dashboard()
    _sign_in(page, url, f"/images/{busybox.id}/")
    page.click("button:has-text('Run a container')")  # a dialog
    page.fill("#id_command", "sh")
    page.fill("#id_name", "e2e_shell")
    page.fill("#id_env", "GREETING=hello there")
    page.check("#id_tty")
    started = time.monotonic()
    page.click("form[data-run] button[type=submit]")
    page.wait_for_url("**/containers/*/?terminal=attach")
    container = Container.objects.get(name="e2e_shell")
    assert container.config["Cmd"] == ["sh"] and container.config["Tty"]
    page.wait_for_selector("[data-terminal-status]:has-text('attached')")
    page.wait_for_function("document.querySelector('.xterm-rows').innerText.includes('#')")  # its first prompt
    first_prompt = time.monotonic() - started

    _type_and_see(page, "echo $((6*7)) $GREETING", "42 hello there")

    # The terminal follows the window: a narrower window, fewer columns for the shell.
    before = _size(page, "A")
    page.set_viewport_size({"width": 700, "height": 800})
    page.wait_for_timeout(300)
    after = _size(page, "B")
    assert after[1] < before[1] and after[0] == before[0], (before, after)

    page.goto("about:blank")  # the tab goes: the attached container goes on
    time.sleep(1)
    container.refresh_from_db()
    assert service.reconcile(container).state == "running"
    print(f"Run form (sh, -it) to its first prompt in the browser: {first_prompt:.2f} s")


def test_a_new_shell_in_a_running_container(browser_page, start_dashboard, operator,  # type: ignore[no-untyped-def]
                                            busybox: Image) -> None:
    """The container's page, New shell: `echo $((6*7))` prints 42; closing the tab ends the
    shell, not the container."""
    container = service.start_container(service.create_container("e2e/busybox:1", cmd=["sleep", "600"]))
    page = browser_page
    url = start_dashboard()
    _sign_in(page, url, f"/containers/{container.id}/")
    started = time.monotonic()
    page.click("button[data-terminal-mode=exec]")
    page.wait_for_selector("[data-terminal-status]:has-text('connected')")
    page.wait_for_function("document.querySelector('.xterm-rows').innerText.includes('#')")
    first_prompt = time.monotonic() - started
    _type_and_see(page, "echo $((6*7))", "42")
    assert "42" in _screen(page).split("echo $((6*7))", 1)[1]

    page.keyboard.type("echo $$ > /tmp/shell.pid")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    shell = int((service.rootfs(container) / "tmp" / "shell.pid").read_text())
    page.goto("about:blank")
    deadline = time.monotonic() + 10
    output = b""
    while time.monotonic() < deadline:
        probe = exec_terminal(container)
        probe.write(f"kill -0 {shell} && echo ALIVE || echo GONE\r".encode())
        time.sleep(0.5)
        output = probe.read() or b""
        probe.close()
        if b"GONE" in output:
            break
    assert b"GONE" in output
    container.refresh_from_db()
    assert service.reconcile(container).state == "running"
    print(f"New shell to its first prompt in the browser: {first_prompt:.2f} s")


def test_the_terminal_is_not_offered_to_a_non_operator(browser_page, start_dashboard, member,  # type: ignore[no-untyped-def]
                                                       busybox: Image) -> None:
    container = service.start_container(service.create_container("e2e/busybox:1", cmd=["sleep", "600"]))
    page = browser_page
    url = start_dashboard()
    _sign_in(page, url, f"/containers/{container.id}/", "mia", "pw-member")
    assert page.locator("[data-terminal-url]").count() == 0
    assert "Running" in page.inner_text("[data-state]")
