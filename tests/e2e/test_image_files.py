"""In Chromium: open an image, browse its files to /etc, open os-release."""

from __future__ import annotations

import io

import pytest

from imagestore.services.import_ import import_image
from tests.builders import directory, tar_bytes

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'


def test_open_an_image_browse_to_etc_and_open_os_release(browser_page, start_dashboard, member) -> None:  # type: ignore[no-untyped-def]
    image = import_image(io.BytesIO(tar_bytes([directory("etc"), ("etc/os-release", OS_RELEASE.encode()),
                                               ("etc/hostname", b"box\n"), directory("usr")])),
                         repository="e2e/files:1")
    page = browser_page
    url = start_dashboard()
    page.goto(f"{url}/images/{image.id}/")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "pw-member")
    page.click("main button[type=submit]")
    page.click("[data-inside] >> text=Files")
    page.click("[data-entry='/etc'] a")
    page.wait_for_selector("[data-entry='/etc/os-release']")
    assert page.get_attribute("[data-path]", "data-path") == "/etc"
    page.click("[data-entry='/etc/os-release'] a")
    assert page.inner_text("[data-file-text]").strip() == OS_RELEASE.strip()
