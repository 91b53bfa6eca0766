"""The browser terminal end to end in headless Chromium: an operator runs a container from
the image's page (the Run form), its page opens a terminal (xterm.js over the dashboard's
WebSocket), `echo $((6*7))` typed there prints 42; a new shell from the container's page
works the same, resizes with the window, and closing the tab ends the shell, not the container."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest

from imagestore.models import Container, Image
from imagestore.services import containers as service
from imagestore.services.containers.console import exec_terminal
from imagestore.services.import_ import import_image
from tests.builders import busybox_rootfs, tar_directory
from tests.conftest import require_tool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


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


def test_run_a_container_and_type_in_its_terminal(browser_page, start_dashboard, operator,  # type: ignore[no-untyped-def]
                                                  busybox: Image) -> None:
    page = browser_page
    url = start_dashboard()
    page.goto(f"{url}/images/{busybox.id}/")
    page.fill("#id_username", "olive")
    page.fill("#id_password", "pw-operator")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{url}/images/{busybox.id}/")

    page.click("summary:has-text('Run a container')")
    page.fill("#id_command", "sleep 600")
    page.fill("#id_name", "e2e_sleeper")
    page.fill("#id_env", "GREETING=hello there")
    page.uncheck("#id_tty")
    started = time.monotonic()
    page.click("form[data-run] button[type=submit]")
    page.wait_for_url("**/containers/*/?terminal=exec")
    container = Container.objects.get(name="e2e_sleeper")
    assert container.state == "running" and container.config["Cmd"] == ["sleep", "600"]

    page.wait_for_selector("[data-terminal-status]:has-text('connected')")
    page.wait_for_function("document.querySelector('.xterm-rows').innerText.includes('#')")  # the prompt
    first_prompt = time.monotonic() - started
    page.click(".xterm")
    page.keyboard.type("echo $((6*7)) $GREETING\n")
    page.wait_for_function("document.querySelector('.xterm-rows').innerText.includes('42 hello there')")
    assert "42 hello there" in _screen(page)

    # The terminal follows the window: a narrower window, fewer columns for the shell.
    before = _size(page, "A")
    page.set_viewport_size({"width": 700, "height": 800})
    page.wait_for_timeout(300)
    after = _size(page, "B")
    assert after[1] < before[1] and after[0] == before[0], (before, after)

    # Closing the tab ends the shell, not the container.
    page.keyboard.type("echo $$ > /tmp/shell.pid\n")
    page.wait_for_timeout(300)
    shell = int((service.rootfs(container) / "tmp" / "shell.pid").read_text())
    assert shell > 1
    page.goto("about:blank")
    deadline = time.monotonic() + 10
    output = ""
    while time.monotonic() < deadline:
        probe = exec_terminal(container)
        probe.write(f"kill -0 {shell} && echo ALIVE || echo GONE\n".encode())
        time.sleep(0.5)
        output = (probe.read() or b"").decode()
        probe.close()
        if "GONE" in output:
            break
    assert "GONE" in output
    container.refresh_from_db()
    assert service.reconcile(container).state == "running"
    print(f"Run form to first prompt: {first_prompt:.2f} s")


def test_the_terminal_is_not_offered_to_a_non_operator(browser_page, start_dashboard, member,  # type: ignore[no-untyped-def]
                                                       busybox: Image) -> None:
    container = service.start_container(service.create_container("e2e/busybox:1", cmd=["sleep", "600"]))
    page = browser_page
    url = start_dashboard()
    page.goto(f"{url}/containers/{container.id}/")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "pw-member")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{url}/containers/{container.id}/")
    assert page.locator("[data-terminal-url]").count() == 0
    assert "Running" in page.inner_text("[data-state]")
