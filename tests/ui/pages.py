"""Every page of ui/urls.py, for the checks that go over all of them (tests/ui/test_i18n.py:
no English left in Chinese; tests/e2e/test_pages.py: axe-core). A page another issue adds is
found here without touching those tests; a URL argument not known below fails, naming itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, reverse

from ui.urls import urlpatterns

# Not pages: a WebSocket endpoint (it refuses plain GETs with 400 by design).
NOT_PAGES = {"ui-container-terminal"}


def page_patterns(patterns: list[Any] = urlpatterns, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from page_patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif entry.name and entry.name not in NOT_PAGES:
            yield prefix + str(entry.pattern), entry


def argument(url_name: str, name: str, objects: dict[str, Any]) -> str:
    """A URL argument's value by its name in ui/urls.py: ``ref`` is an image's (short id) or, for
    the ``ui-container*`` URLs, a container's id; ``job_id`` a job's. ``objects`` holds an
    ``image``, a ``container`` and a ``job``. Add a name here when a page needs another."""
    if name == "ref":
        return str(objects["container"].id if url_name.startswith("ui-container") else objects["image"].short_id)
    if name in ("job_id", "job"):
        return str(objects["job"].id)
    raise AssertionError(f"tests/ui/pages.py: give a value for the argument {name!r} of {url_name}")


def page_urls(objects: dict[str, Any]) -> list[tuple[str, str]]:
    """(URL name, path) of every page, its arguments filled from ``objects``; POST-only ones
    included (callers skip what answers 405)."""
    found = []
    for route, pattern in page_patterns():
        names = [n for pair in re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", route) for n in pair if n]
        found.append((str(pattern.name), reverse(str(pattern.name),
                                                 kwargs={n: argument(str(pattern.name), n, objects) for n in names})))
    return found
