"""Chinese and English: the zh_Hans catalogue is complete, every page of ui/urls.py rendered for
``Accept-Language: zh-Hans`` shows no English string of the catalogue, and the language switch
(Django's set_language) remembers the choice in a cookie.

Which English is "left over" (the rule of ``leftover_english``): each msgid of the catalogue
whose translation differs from it (brand names, ``REST API``-like strings kept as they are do
not count), cut at its placeholders (``%(name)s``) and HTML tags into literal pieces; a piece
counts when it has at least four letters and the translation does not keep it (``centos``,
``docker run``: names) (``ID``, ``URL``, `` ago`` are too short to tell
English from a name). A piece is found when it stands in the page's visible text as whole words,
case-sensitive. Visible text is the text nodes and the ``title``, ``aria-label``, ``placeholder``
and ``alt`` attributes, outside ``script``, ``style``, ``code``, ``pre``, ``kbd``, ``samp`` and
any element marked ``translate="no"`` (HTML's own mark for content that is data, not words:
a JSON document, a log, a command line).

Pages are discovered from ui/urls.py (tests/ui/pages.py), so a page another issue adds is covered
without touching this test: its URL's arguments come from an image, a container and a job;
pages that only take POST (405 on GET) and answers that are not HTML are left out.
"""

from __future__ import annotations

import re
import secrets
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polib
import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from imagestore.models import Container, Image, Job
from tests.ui.pages import page_urls

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans"}


def test_the_chinese_catalogue_is_complete() -> None:
    po = polib.pofile(str(CATALOGUE))
    assert not po.metadata_is_fuzzy
    untranslated = [e.msgid for e in po.untranslated_entries()]
    fuzzy = [e.msgid for e in po.fuzzy_entries()]
    assert (untranslated, fuzzy) == ([], [])
    placeholder = re.compile(r"%\(\w+\)[sd]")
    for entry in po.translated_entries():
        translations = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        for text in translations:  # the same named placeholders, so no translation breaks its %
            assert sorted(placeholder.findall(text)) == sorted(placeholder.findall(entry.msgid)), entry.msgid


def test_every_string_marked_in_the_source_is_in_the_catalogue(tmp_path: Path, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``make messages`` run now would add nothing: no string is marked in the code or the
    templates without its entry in the committed catalogue (a page would show it in English).
    Extracted from a copy of the source, so nothing is written beside the real catalogue."""
    import shutil

    from django.core.management import call_command

    source = tmp_path / "source"
    for folder in ("dashboard", "imagestore", "ui", "templates"):
        if (Path(settings.BASE_DIR) / folder).is_dir():
            shutil.copytree(Path(settings.BASE_DIR) / folder, source / folder,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "static"))
    (source / "locale" / "zh_Hans" / "LC_MESSAGES").mkdir(parents=True)
    settings.LOCALE_PATHS = [str(source / "locale")]
    monkeypatch.chdir(source)
    call_command("makemessages", locale=["zh_Hans"], no_location=True, verbosity=0)
    extracted = {(e.msgctxt, e.msgid) for e in polib.pofile(str(source / "locale" / "zh_Hans" / "LC_MESSAGES" /
                                                                "django.po"))}
    committed = {(e.msgctxt, e.msgid) for e in polib.pofile(str(CATALOGUE)) if not e.obsolete}
    assert len(extracted) > 100
    assert sorted(extracted - committed) == [], "run `make messages` and translate the new entries"


# --- every page in Chinese ----------------------------------------------------------------------

HIDDEN = {"script", "style", "code", "pre", "kbd", "samp", "template"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
VISIBLE_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt")


class VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.parts: list[str] = []

    @property
    def hidden(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        hidden = self.hidden or tag in HIDDEN or values.get("translate") == "no"
        if not hidden:
            self.parts += [values[name] or "" for name in VISIBLE_ATTRIBUTES if values.get(name)]
        if tag not in VOID:
            self.stack.append((tag, hidden))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def english_pieces() -> dict[str, str]:
    """Each countable literal piece of an English msgid -> the msgid it comes from."""
    pieces: dict[str, str] = {}
    for entry in polib.pofile(str(CATALOGUE)).translated_entries():
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for msgid in filter(None, [entry.msgid, entry.msgid_plural]):
            if msgid in translations:
                continue  # the same in both languages: a name, not English
            for piece in re.split(r"%\(\w+\)[sd]|<[^>]*>", msgid):
                piece = " ".join(piece.split()).strip(" .,:;·()")
                if len(re.findall(r"[A-Za-z]", piece)) >= 4 and not any(piece in text for text in translations):
                    pieces.setdefault(piece, msgid)
    return pieces


def leftover_english(html: str, pieces: dict[str, str]) -> list[str]:
    text = visible_text(html)
    return sorted(f"{piece!r} (from {msgid!r})" for piece, msgid in pieces.items()
                  if re.search(rf"(?<![A-Za-z]){re.escape(piece)}(?![A-Za-z])", text))


@pytest.fixture
def lived_in_store(make_image, operator) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """An image with a tag and a container, a running job with progress, a failed one."""
    image: Image = make_image("demo/app:1.0", marker="i18n")
    make_image("demo/other:2.0", marker="i18n-2")
    container = Container.objects.create(id=secrets.token_hex(32), name="quirky_turing", image=image,
                                         state="exited", exit_code=1)
    job = Job.objects.create(kind="pull", state="running", owner=operator, params={"reference": "demo/app:1.0"},
                             started_at=timezone.now(),
                             progress={"sha256:ab12": {"current": 512, "total": 2048, "phase": "Downloading"}},
                             log=["Pulling from demo/app"])
    Job.objects.create(kind="import", state="failed", owner=operator, error="the archive is truncated",
                       finished_at=timezone.now(), progress={"import": {"current": 1, "total": 1,
                                                                        "phase": "Importing"}})
    return {"image": image, "container": container, "job": job}


@pytest.mark.django_db
def test_every_page_in_chinese_has_no_english_left(lived_in_store, operator) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(operator)
    pieces = english_pieces()
    assert len(pieces) > 100  # the catalogue was read
    checked, leftovers = [], {}
    for _name, url in page_urls(lived_in_store):
        response = client.get(url, **ZH)
        if response.status_code == 405 or "text/html" not in response.get("Content-Type", ""):
            continue
        assert response.status_code == 200, (url, response.status_code)
        html = response.content.decode()
        checked.append(url)
        found = leftover_english(html, pieces)
        if found:
            leftovers[url] = found
    assert {"/", "/images/", "/jobs/", "/containers/"} <= set(checked)
    assert any(url.startswith("/images/sha256") or url.startswith(f"/images/{lived_in_store['image'].short_id}")
               for url in checked)
    # The pages outside ui/urls.py: sign-in (signed out), an unknown image, a page that is not there.
    extra = [(Client(), "/accounts/login/", 200), (client, "/images/nope/", 404), (client, "/no/such/page/", 404)]
    for who, url, status in extra:
        response = who.get(url, **ZH)
        assert response.status_code == status, url
        found = leftover_english(response.content.decode(), pieces)
        if found:
            leftovers[url] = found
    assert leftovers == {}


@pytest.mark.django_db
def test_chinese_pages_say_it_in_chinese(lived_in_store, operator) -> None:  # type: ignore[no-untyped-def]
    """The check above could pass on a page that fell back to English everywhere it was not
    looking: the words themselves, a date, a relative time and a size are Chinese."""
    client = Client()
    client.force_login(operator)
    overview = client.get("/", **ZH).content.decode()
    assert '<html lang="zh-hans"' in overview and "概览" in overview and "镜像" in overview
    images = visible_text(client.get("/images/", **ZH).content.decode())
    assert "仓库" in images and "标签" in images
    # naturaltime "now" (or a few seconds ago on a slow machine), and a date
    assert re.search(r"现在|\d+\s*秒之前", images) and re.search(r"\d{4}年\d{1,2}月\d{1,2}日", images)
    assert re.search(r"\d(\.\d)? ?(字节|KB|MB)", images)  # a size, its unit as Chinese writes it
    assert "ago" not in images and "bytes" not in images and "now" not in images
    old = Job.objects.create(kind="pull", state="succeeded")
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timezone.timedelta(days=3))
    jobs = visible_text(client.get("/jobs/", **ZH).content.decode())
    assert "3 日前" in jobs and "ago" not in jobs  # naturaltime, in Chinese (Django's own catalogue)


def test_the_leftover_check_finds_english() -> None:
    """The checker itself: it sees English in text and in attributes, not in data."""
    pieces = {"Remove this image?": "Remove this image?", "Images": "Images", "Layers by size": "Layers by size"}
    html = ('<h1>删除此镜像？</h1><div aria-label="Layers by size"></div><pre>Images</pre>'
            '<p translate="no">Remove this image?</p><input value="x"><p>图像 ImagesX</p>')
    assert leftover_english(html, pieces) == ["'Layers by size' (from 'Layers by size')"]
    assert leftover_english("<p>Images</p>", pieces) == ["'Images' (from 'Images')"]


# --- the language switch ------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_language_switch_remembers(member) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(member)
    page = client.get("/images/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'name="language" value="zh-hans"' in page and ">Images<" in page.replace("</i> ", ">")
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/images/"})
    assert response.status_code == 302 and response["Location"] == "/images/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    # Remembered: later pages are Chinese whatever the browser asks for, until switched back.
    again = client.get("/jobs/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="zh-hans"' in again and "任务" in again and 'name="language" value="en"' in again
    client.post("/i18n/setlang/", {"language": "en", "next": "/jobs/"})
    back = client.get("/jobs/", HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert '<html lang="en"' in back and "Jobs" in back


@pytest.mark.django_db
def test_accept_language_chooses_without_a_cookie(member) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(member)
    assert '<html lang="zh-hans"' in client.get("/jobs/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert '<html lang="en"' in client.get("/jobs/", HTTP_ACCEPT_LANGUAGE="fr, en;q=0.5").content.decode()
