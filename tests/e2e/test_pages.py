"""Every page in headless Chromium (Debian's, through Playwright) on a lived-in store: axe-core
(static/vendor/axe-core, injected from the file) finds no serious or critical violation on any
page of ui/urls.py, in the light and the dark theme; the overview's chart is drawn; the language
switch goes to 中文 and back and is remembered; the dark theme toggle is remembered; dialogs
trap focus and close with Escape; tables move by arrow keys; at 390 px wide nothing scrolls
sideways. It saves the README's screenshots (English and Chinese; see SCREENSHOTS).

The pull shown "in progress" is a job row as a worker writes it mid-pull (per-layer progress
and a fresh heartbeat), so the screenshot is the same every run instead of racing a download.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from imagestore.models import Container, Image, Job
from imagestore.services.import_ import import_image
from imagestore.services.load import load_archive
from tests.builders import directory, tar_bytes
from tests.ui.pages import page_urls

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "static" / "vendor" / "axe-core" / "axe.min.js"
# The README's screenshots: `make screenshots` writes them into docs/screenshots/ (to commit);
# other runs into var/test-artifacts/screenshots/, leaving the checkout as it was.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or ROOT / "var" / "test-artifacts" / "screenshots")
# Checked at phone width: no horizontal scrolling of the page itself.
NARROW_PAGES = ("ui-overview", "ui-images", "ui-image", "ui-jobs", "ui-job", "ui-containers", "ui-pull")


def _load(tag: str, layers: list[bytes], steps: list[str]) -> Image:
    """A docker-save archive of ``layers`` made by Dockerfile ``steps``, loaded as ``tag``."""
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-11-20T10:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
        "history": [{"created": "2026-11-20T10:00:00Z", "created_by": f"/bin/sh -c {step}"} for step in steps],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]},
    }).encode()
    entries: list[Any] = [(f"l{i}/layer.tar", data) for i, data in enumerate(layers)]
    entries += [("c.json", config), ("manifest.json", json.dumps(
        [{"Config": "c.json", "RepoTags": [tag], "Layers": [f"l{i}/layer.tar" for i in range(len(layers))]}]).encode())]
    load_archive(io.BytesIO(tar_bytes(entries)))
    return Image.objects.get(tags__name=tag.rsplit(":", 1)[1], tags__repository__name=tag.rsplit(":", 1)[0])


@pytest.fixture
def store(operator) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Two images sharing a base layer (one of three layers each), two imported ones, a
    container, jobs running, done and failed."""
    base = tar_bytes([directory("./"), ("./bin/busybox", os.urandom(400_000))])
    web = _load("web/app:1.0", [base, tar_bytes([("./srv/app.py", os.urandom(150_000))]),
                                tar_bytes([("./srv/static.bin", os.urandom(90_000))])],
                ["#(nop) ADD file:3f2a in /", "pip install flask gunicorn", "#(nop) COPY dir:9b1c in /srv"])
    _load("web/worker:1.0", [base, tar_bytes([("./srv/worker.py", os.urandom(60_000))])],
          ["#(nop) ADD file:3f2a in /", "pip install celery"])
    images = [web] + [import_image(io.BytesIO(tar_bytes([directory("./"), ("./data.bin", os.urandom(size)),
                                                  ("./etc/hostname", f"e2e-{i}\n".encode())])), repository=name)
              for i, (name, size) in enumerate([("library/centos:6.6", 300_000), ("nginx:1.27", 120_000),
                                                ("e2e/busybox:1", 40_000)])]
    container = Container.objects.create(id=secrets.token_hex(32), name="quirky_turing", image=web,
                                         state="exited", exit_code=0, config={"Image": "web/app:1.0", "Cmd": ["sh"]})
    now = timezone.now()
    pull = Job.objects.create(
        kind="pull", state="running", owner=operator, params={"reference": "centos:7"}, started_at=now,
        heartbeat_at=now, log=["7: Pulling from library/centos"],
        progress={"sha256:2d473b07cdd5": {"current": 48_234_496, "total": 75_863_188, "phase": "Downloading"},
                  "sha256:8a6f3f2d1e0b": {"current": 1_342_177, "total": 1_342_177, "phase": "Pull complete"},
                  "sha256:c3b1d0e9f7a6": {"current": 0, "total": 26_214_400, "phase": "Waiting"}})
    Job.objects.create(kind="import", state="succeeded", owner=operator, params={"repository": "e2e/busybox:1"},
                       finished_at=now, result={"image": images[3].id})
    Job.objects.create(kind="load", state="succeeded", owner=operator, params={}, finished_at=now,
                       result={"image": web.id})
    Job.objects.create(kind="pull", state="failed", owner=operator, params={"reference": "private/app:2"},
                       finished_at=now, error="pull access denied for private/app: the registry needs a login")
    return {"image": images[0], "container": container, "job": pull}


def _sign_in(page, url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/")
    page.fill("#id_username", "olive")
    page.fill("#id_password", "pw-operator")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{url}/")


def _axe(page) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ["violations"]});
        return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 4).map(n => n.target.join(" ") + " " + ((n.any[0] || {}).message || ""))}));
    }""")
    return list(result)


def _scrolls_sideways(page) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate("() => document.documentElement.scrollWidth > document.documentElement.clientWidth + 1"))


def test_every_page_in_chromium(browser_page, start_dashboard, store) -> None:  # type: ignore[no-untyped-def]
    """One dashboard for all of it (starting one costs more than most checks)."""
    page = browser_page
    url = start_dashboard()
    page.goto(f"{url}/accounts/login/")  # the one page of a signed-out visitor
    assert _axe(page) == []
    _sign_in(page, url)
    _accessible_and_narrow(page, url, store)
    page.set_viewport_size({"width": 1280, "height": 900})
    _chart_language_theme_keyboard_and_screenshots(page, url, store)


def _accessible_and_narrow(page, url: str, store: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    pages = []
    for name, path in page_urls(store):
        probe = page.request.get(f"{url}{path}")  # the browser's cookies, without navigating
        if probe.status != 405 and "<html" in probe.text()[:400]:
            pages.append((name, path))  # not a POST-only action, nor a fragment htmx swaps into a page
    violations: dict[str, Any] = {}
    # Each theme as a page loads in it (switching mid-page would catch colours in transition);
    # dark on the pages that hold every kind of component (its colours are the stylesheet's).
    for theme in ("light", "dark"):
        page.evaluate("t => localStorage.setItem('ui-theme', t)", theme)
        for name, path in pages:
            if theme == "dark" and name not in NARROW_PAGES:
                continue
            response = page.goto(f"{url}{path}")
            assert response is not None and response.status == 200, (path, response and response.status)
            found = _axe(page)
            if found:
                violations[f"{path} ({theme})"] = found
    assert len(pages) >= 10 and {"ui-overview", "ui-images", "ui-image", "ui-job"} <= {n for n, _ in pages}
    assert violations == {}, json.dumps(violations, indent=1, ensure_ascii=False)

    page.set_viewport_size({"width": 390, "height": 844})
    wide = [path for name, path in pages if name in NARROW_PAGES and page.goto(f"{url}{path}") and _scrolls_sideways(page)]
    assert wide == []
    page.goto(f"{url}/")  # the sidebar is an offcanvas menu there, opened by its button
    page.click("header [aria-controls=sidebar]")
    page.wait_for_selector("#sidebar.show")
    assert page.is_visible("#sidebar >> text=Images")
    page.keyboard.press("Escape")
    page.wait_for_selector("#sidebar:not(.show)", state="attached")


def _chart_language_theme_keyboard_and_screenshots(page, url: str, store: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    page.evaluate("() => localStorage.setItem('ui-theme', 'light')")
    page.reload()

    # The overview's chart: drawn, with coloured pixels on its canvas.
    page.wait_for_selector("#disk-chart[data-drawn]")
    painted = page.evaluate("""() => { const c = document.getElementById("disk-chart");
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
    assert painted > 500

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image, job = store["image"], store["job"]
    shots = {"overview": "/", "images": "/images/", "image": f"/images/{image.short_id}/", "pull": f"/jobs/{job.id}/"}
    for name, path in shots.items():
        page.goto(f"{url}{path}")
        page.screenshot(path=str(SCREENSHOTS / f"{name}-en.png"))

    # The language switch: to 中文, remembered on the next page, and back.
    page.goto(f"{url}/images/")
    page.click("[data-language] button")
    page.wait_for_selector("html[lang=zh-hans]")
    assert "镜像" in page.inner_text("h1")
    page.goto(f"{url}/jobs/")
    assert page.get_attribute("html", "lang") == "zh-hans" and "任务" in page.inner_text("h1")
    for name, path in shots.items():
        page.goto(f"{url}{path}")
        page.screenshot(path=str(SCREENSHOTS / f"{name}-zh.png"))
    page.click("[data-language] button")
    page.wait_for_selector("html[lang=en]")
    assert "Job" in page.inner_text("h1") or "Pull" in page.inner_text("h1")

    # Dark theme: the toggle switches it, the chart is redrawn, a reload keeps it.
    page.goto(f"{url}/")
    page.click("[data-theme-toggle]")
    assert page.get_attribute("html", "data-bs-theme") == "dark"
    assert page.get_attribute("[data-theme-toggle]", "aria-pressed") == "true"
    page.reload()
    assert page.get_attribute("html", "data-bs-theme") == "dark"
    page.screenshot(path=str(SCREENSHOTS / "overview-dark-en.png"))
    page.click("[data-theme-toggle]")
    assert page.get_attribute("html", "data-bs-theme") == "light"

    # A dialog: focus moves in, Tab stays in, Escape closes it and focus returns to its button.
    page.goto(f"{url}/images/{image.short_id}/")
    opener = "[data-bs-target='#run-dialog']"
    page.focus(opener)
    page.keyboard.press("Enter")
    page.wait_for_function("() => !!document.activeElement.closest('#run-dialog')")  # shown: focus moved in
    for _ in range(12):
        page.keyboard.press("Tab")
        assert page.evaluate("() => !!document.activeElement.closest('#run-dialog')")
    page.keyboard.press("Escape")
    page.wait_for_selector("#run-dialog", state="hidden")
    page.wait_for_function(f"() => document.activeElement.matches(\"{opener}\")")  # focus back on its button
    # Focus is visible: the focused button has an outline or a box shadow.
    ring = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none"; }""")
    assert ring

    # A table by keyboard: one tab stop, arrows move between rows, Enter opens the row.
    page.goto(f"{url}/images/")
    page.focus("table[data-keynav] tbody tr")
    page.keyboard.press("ArrowDown")
    second = page.evaluate("() => document.activeElement.querySelector('a[data-row-link]').getAttribute('href')")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}{second}")
