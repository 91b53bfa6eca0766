"""Store-wide sums the pages show on every visit (bytes on disk, own and shared, disk by
repository, counts), computed in SQL and cached until the store changes.

Each is a grouped query over every layer link (30,000 rows for 10,000 images), too slow to
run on each page view (bench/images_page.py: 150 ms per page at that size). They are kept in
the cache (Redis where configured: one copy for every web and worker process) under a
*version*: any save or delete of an image, layer, layer link, tag or repository, in whatever
process, sets a new version (at once and again when its transaction commits, so a reader that
ran between the two does not keep a sum from before the commit). A write that sends no signal
(``bulk_create``, ``QuerySet.update``) is seen within ``TTL`` seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

T = TypeVar("T")

VERSION_KEY = "imagestore:store-stats:version"
TTL = 60


def _version() -> str:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, uuid.uuid4().hex, None)  # add: a version another process set stays
        version = cache.get(VERSION_KEY) or "none"
    return str(version)


def cached(name: str, compute: Callable[[], T]) -> T:
    """``compute()``'s answer, from the cache while the store has not changed."""
    key = f"imagestore:store-stats:{name}:{_version()}"
    value: Any = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, TTL)
    return value  # type: ignore[no-any-return]


def changed(**_: Any) -> None:
    """The store changed: every cached sum is recomputed on its next read."""
    cache.set(VERSION_KEY, uuid.uuid4().hex, None)
    transaction.on_commit(lambda: cache.set(VERSION_KEY, uuid.uuid4().hex, None))


def connect() -> None:
    """Called once from the app's ready()."""
    from ..models import Image, ImageLayer, Layer, Repository, Tag

    for model in (Image, ImageLayer, Layer, Repository, Tag):
        post_save.connect(changed, sender=model, dispatch_uid=f"store-stats-save-{model.__name__}")
        post_delete.connect(changed, sender=model, dispatch_uid=f"store-stats-delete-{model.__name__}")
