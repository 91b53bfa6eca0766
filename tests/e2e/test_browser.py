"""End to end in headless Chromium (Debian's, driven by Playwright): sign in, import a small
image and watch its job reach 100%, tag it, inspect it, remove it with the conflict shown and
then forced, search. A failing step leaves a screenshot in var/test-artifacts/."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from imagestore.models import Container, Image
from tests.builders import busybox_rootfs, tar_directory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_sign_in_import_watch_tag_inspect_remove_search(browser_page, start_dashboard, operator,  # type: ignore[no-untyped-def]
                                                        tmp_path: Path) -> None:
    page = browser_page
    url = start_dashboard()
    page.goto(f"{url}/images/")
    page.fill("#id_username", "olive")
    page.fill("#id_password", "pw-operator")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{url}/images/")

    archive = tmp_path / "rootfs.tar.gz"
    archive.write_bytes(tar_directory(busybox_rootfs(tmp_path / "rootfs"), "gzip"))
    page.click("#sidebar >> text=Import/Load")
    page.set_input_files("#id_file", str(archive))
    page.fill("#id_repository", "e2e/busybox:1")
    page.click("main button[type=submit]")
    page.wait_for_url("**/jobs/*/")
    page.wait_for_selector("[data-state]:has-text('succeeded')")
    bar = page.locator("tr[data-item=import] [role=progressbar]")
    assert bar.get_attribute("aria-valuenow") == bar.get_attribute("aria-valuemax")  # 100%
    assert "Import complete" in page.inner_text("tr[data-item=import]")

    page.click("text=The image")
    page.fill("#id_repository", "e2e/copy:2")
    page.click("form:has(input[value=tag]) button")
    page.wait_for_selector("text=Tagged e2e/copy:2")

    page.fill("input[name=format]", "{{.Os}}/{{json .RepoTags}}")
    page.click("form:has(input[name=format]) button")
    assert page.inner_text("[data-format-output]") == 'linux/["e2e/busybox:1","e2e/copy:2"]'

    page.goto(f"{url}/search/?term=e2e&registry=local")
    assert "e2e/busybox" in page.inner_text("tbody") and "e2e/copy" in page.inner_text("tbody")
    page.goto(page.url.split("/search/")[0] + f"/images/{Image.objects.get().id}/")

    image = Image.objects.get()
    Container.objects.create(id=secrets.token_hex(32), name="holding_on", image=image, state="exited")
    page.click("button:has-text('Remove…')")
    assert "must be forced" in page.inner_text(".confirm")  # the conflict, explained before anything goes
    page.click("text=Force removal…")
    assert "Untagged: e2e/busybox:1" in page.inner_text(".confirm")  # says exactly what will go
    page.click("button:has-text('Confirm removal')")
    page.wait_for_selector(".messages .success")
    assert "Untagged: e2e/busybox:1" in page.inner_text(".messages")
    assert Image.objects.filter(pk=image.pk, tags__isnull=True).exists()  # kept for the container

    page.goto(f"{url}/search/?term=e2e&registry=local")
    page.wait_for_selector("table")
    # Still both in the tbody when they held tags; untagged now, the store has nothing to show.
    assert "No" in page.inner_text("tbody") or "e2e" in page.inner_text("tbody")
    assert page.inner_text("tbody").strip() == "Nothing found."
