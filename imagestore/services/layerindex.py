"""The layer index on disk: ``<IMAGESTORE_ROOT>/index/sha256/<diff_id hex>.zst``, one per layer.

Written once per diff_id when a layer arrives (pull, load, import, commit: the bytes are
indexed in the pass that verifies them, see ``imagestore.oci.layerindex``), so a layer shared
by a hundred images is indexed once. ``manage.py index_layers`` (``backfill``) indexes what
was stored before, reading each blob once. GC removes an index whose layer row is gone;
fsck checks every layer has a readable one.

Indexes are immutable (a diff_id names its bytes), so readers keep the most recently used
ones parsed in memory, within a budget of entries.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext

from ..blobs import BlobStore, get_store
from ..errors import Conflict
from ..models import Layer
from ..oci.compression import open_decompressed
from ..oci.digest import Digest
from ..oci.errors import CorruptArchive
from ..oci.layerindex import LayerIndex, TarIndexer, decode, encode, index_tar

log = logging.getLogger(__name__)

FOLDER = "index"
_NAME = re.compile(r"^([a-f0-9]{64})\.zst$")
# Parsed entries kept in memory per process, across indexes: an entry costs about 300 bytes
# parsed, so 200k (a Debian or Ubuntu base layer is 5-30k) stay under ~60 MB per web process,
# well within what a gunicorn worker may hold; beyond it the least recently used are dropped.
CACHE_ENTRIES = 200_000


class NotIndexed(Conflict):
    """A layer has no index yet (stored before indexing existed, or unreadable)."""


def index_dir(store: BlobStore | None = None) -> Path:
    return (store or get_store()).root / FOLDER / "sha256"


def index_path(diff_id: Digest | str, store: BlobStore | None = None) -> Path:
    return index_dir(store) / f"{Digest.parse(str(diff_id)).hex}.zst"


def new_indexer() -> TarIndexer | None:
    """An indexer for a layer about to stream by, or None when indexing is switched off."""
    return TarIndexer() if settings.IMAGESTORE_INDEX_LAYERS else None


def has_index(diff_id: Digest | str) -> bool:
    return index_path(diff_id).is_file()


def save(diff_id: Digest | str, index: LayerIndex | TarIndexer | None) -> bool:
    """Store the index of ``diff_id`` (atomically: a reader sees a whole file or none).
    An indexer that failed is logged, never raised: the layer itself is fine."""
    if index is None:
        return False
    if isinstance(index, TarIndexer):
        try:
            index = index.result()
        except CorruptArchive as exc:
            log.warning("layer %s: %s", diff_id, exc)
            return False
    store = get_store()
    target = index_path(diff_id, store)
    if target.is_file():
        return True
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="index-", dir=store.tmp_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            encode(index, out)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


class _Cache:
    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.items: OrderedDict[str, LayerIndex] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> LayerIndex | None:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: str, value: LayerIndex) -> None:
        with self.lock:
            if key in self.items:
                return
            self.items[key] = value
            self.size += len(value.entries)
            while self.size > self.budget and len(self.items) > 1:
                _old, dropped = self.items.popitem(last=False)
                self.size -= len(dropped.entries)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.size = 0


_cache = _Cache(CACHE_ENTRIES)


def load(diff_id: Digest | str) -> LayerIndex:
    """The index of one layer; NotIndexed when it has none (``manage.py index_layers``)."""
    path = index_path(diff_id)
    key = f"{diff_id}|{path}"
    cached = _cache.get(key)
    if cached is not None:
        return cached
    try:
        with open(path, "rb") as f:
            index = decode(f)
    except FileNotFoundError:
        raise NotIndexed(gettext("layer %(diff_id)s is not indexed yet (run manage.py index_layers)")
                         % {"diff_id": diff_id}) from None
    except CorruptArchive as exc:
        raise NotIndexed(gettext("the index of layer %(diff_id)s is unreadable (%(error)s); run manage.py index_layers")
                         % {"diff_id": diff_id, "error": exc}) from None
    _cache.put(key, index)
    return index


def index_layer(layer: Layer, *, force: bool = False) -> bool:
    """Index one stored layer from its blob (one read); False when it already was."""
    if not force and has_index(layer.diff_id):
        return False
    store = get_store()
    with store.open(layer.digest) as raw:
        index = index_tar(open_decompressed(raw, max_output=settings.IMAGESTORE_MAX_LAYER_SIZE))
    if force:
        index_path(layer.diff_id, store).unlink(missing_ok=True)
    _cache.clear()
    return save(layer.diff_id, index)


@dataclass
class BackfillResult:
    indexed: list[str]
    skipped: int
    failed: list[tuple[str, str]]


def backfill(layers: Iterable[Layer] | None = None, *, force: bool = False) -> BackfillResult:
    """Index every layer that has no index yet (``manage.py index_layers``)."""
    result = BackfillResult([], 0, [])
    for layer in layers if layers is not None else Layer.objects.order_by("id").iterator():
        try:
            if index_layer(layer, force=force):
                result.indexed.append(layer.diff_id)
            else:
                result.skipped += 1
        except (CorruptArchive, OSError) as exc:
            result.failed.append((layer.diff_id, str(exc)))
    return result


def stored_indexes(store: BlobStore | None = None) -> Iterator[tuple[str | None, Path]]:
    """Every entry of the index folder: (diff_id, path) for an index file, (None, path) for
    anything else there (left alone by GC, listed by fsck)."""
    folder = index_dir(store)
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        path = folder / name
        match = _NAME.match(name)
        if match and path.is_file() and not path.is_symlink():
            yield f"sha256:{match.group(1)}", path
        else:
            yield None, path
