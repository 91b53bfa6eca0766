"""What is inside an image, read from its layers' indexes: the merged file tree (whiteouts
applied, as an overlay mount would show it), one layer's own changes, the efficiency of the
layering (as ``dive`` scores it), and one file's bytes or a directory as a tar, streamed from
the layer blob that holds them.

Paths are the image's own: ``/etc/os-release``. Symbolic links are resolved inside the
image's root (an absolute target means the image's ``/``, ``..`` stops at it), never on the
host; the index is only strings, and bytes come from the tar member itself.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import tarfile
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils.translation import gettext

from ..blobs import get_store
from ..errors import BadRequest, NotFound
from ..models import Image, ImageLayer, Layer
from ..oci.compression import open_decompressed
from ..oci.layerindex import DIR, FILE, HARDLINK, OPAQUE, SYMLINK, WHITEOUT, Entry, LayerIndex
from ..oci.tarsafe import clean_member_name, open_tar_stream
from . import layerindex

MAX_LINK_HOPS = 40  # as Linux's MAXSYMLINKS
CHUNK = 1 << 20
MAX_GLOB = 512


@dataclass(frozen=True, slots=True)
class Node:
    entry: Entry
    layer: int  # position of the layer that last wrote it


@dataclass
class Tree:
    """A file tree: path -> node, and each directory's children's names."""

    nodes: dict[str, Node] = field(default_factory=dict)
    children: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    implied: set[str] = field(default_factory=set)  # directories no tar entry describes

    def remove(self, path: str) -> list[Node]:
        """Remove ``path`` and everything below it; the nodes removed."""
        removed = []
        stack = [path]
        while stack:
            current = stack.pop()
            node = self.nodes.pop(current, None)
            if node is not None:
                removed.append(node)
            for name in self.children.pop(current, ()):
                stack.append(_join(current, name))
        parent, _, name = path.rpartition("/")
        self.children.get(parent, set()).discard(name)
        return removed

    def put(self, entry: Entry, layer: int) -> None:
        path = entry.path
        old = self.nodes.get(path)
        if old is not None and old.entry.type == DIR and entry.type != DIR:
            self.remove(path)
        self._parents(path, layer, entry.mtime)
        self.nodes[path] = Node(entry, layer)
        self.implied.discard(path)
        if path:
            parent, _, name = path.rpartition("/")
            self.children[parent].add(name)

    def _parents(self, path: str, layer: int, mtime: int) -> None:
        """Directories a tar implies without listing them (``a/b`` without ``a/``)."""
        parent = path.rpartition("/")[0] if "/" in path else ""
        missing = []
        while parent:
            node = self.nodes.get(parent)
            if node is not None and node.entry.type == DIR:
                break
            missing.append(parent)
            parent = parent.rpartition("/")[0] if "/" in parent else ""
        for directory in reversed(missing):
            if directory in self.nodes:  # a file where a directory is now needed: replaced
                self.remove(directory)
            self.nodes[directory] = Node(Entry(directory, DIR, mode=0o755, mtime=mtime), layer)
            self.implied.add(directory)
            up, _, name = directory.rpartition("/")
            self.children[up].add(name)


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _root_path(entry_path: str) -> str:
    return "" if entry_path == "." else entry_path


@dataclass
class ImageContents:
    image: Image
    layers: list[Layer]
    indexes: list[LayerIndex]
    _merged: Tree | None = None

    @property
    def merged(self) -> Tree:
        if self._merged is None:
            self._merged = merge(self.indexes)
        return self._merged


def merge(indexes: list[LayerIndex], upto: int | None = None) -> Tree:
    """The tree of layers ``0..upto`` (all by default) stacked, whiteouts applied."""
    tree = Tree()
    for n, index in enumerate(indexes if upto is None else indexes[:upto + 1]):
        apply_layer(tree, index, n)
    return tree


def apply_layer(tree: Tree, index: LayerIndex, n: int) -> list[Node]:
    """Stack one layer on ``tree``; the nodes of lower layers it removed (whiteouts first,
    as they apply to the layers below, then the layer's own entries)."""
    removed: list[Node] = []
    for entry in index.entries:
        if entry.type == WHITEOUT:
            removed.extend(tree.remove(_root_path(entry.path)))
        elif entry.type == OPAQUE:
            directory = _root_path(entry.path)
            for name in list(tree.children.get(directory, ())):
                removed.extend(tree.remove(_join(directory, name)))
    for entry in index.entries:
        if entry.type in (WHITEOUT, OPAQUE):
            continue
        path = _root_path(entry.path)
        if path != entry.path:
            entry = Entry(path, entry.type, entry.size, entry.mode, entry.uid, entry.gid, entry.mtime, entry.link,
                          entry.digest)
        tree.put(entry, n)
    return removed


class _ContentsCache:
    """Merged trees of recently viewed images (an image's layers never change), within a budget
    of entries per process (as layerindex.CACHE_ENTRIES, for the same reason)."""

    def __init__(self, size: int = 8, budget: int = layerindex.CACHE_ENTRIES) -> None:
        self.size = size
        self.budget = budget
        self.items: OrderedDict[str, ImageContents] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> ImageContents | None:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: str, value: ImageContents) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > 1 and (len(self.items) > self.size or sum(
                    len(i.entries) for v in self.items.values() for i in v.indexes) > self.budget):
                self.items.popitem(last=False)


_contents_cache = _ContentsCache()


def contents(image: Image) -> ImageContents:
    """The image's layers and their indexes (a layer stored before indexing is indexed now)."""
    cached = _contents_cache.get(image.id)
    if cached is not None:
        return cached
    layers = [link.layer for link in ImageLayer.objects.filter(image=image).select_related("layer")
              .order_by("position")]
    indexes = []
    for layer in layers:
        try:
            indexes.append(layerindex.load(layer.diff_id))
        except layerindex.NotIndexed:
            layerindex.index_layer(layer, force=True)
            indexes.append(layerindex.load(layer.diff_id))
    value = ImageContents(image, layers, indexes)
    _contents_cache.put(image.id, value)
    return value


# --- paths -----------------------------------------------------------------------------------

def clean_path(path: str | None) -> str:
    """``/etc/``, ``etc``, ``/./etc`` -> ``etc``; ``/`` -> ``""``. ``..`` stops at the root."""
    text = (path or "/").strip()
    if "\x00" in text or len(text) > 4096:
        raise BadRequest(gettext("invalid path"), field="path")
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def resolve(tree: Tree, path: str, *, follow_last: bool = True) -> str:
    """``path`` with every symbolic link in it resolved inside the image's root."""
    pending = [p for p in path.split("/") if p]
    done: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = "/".join([*done, part])
        node = tree.nodes.get(candidate)
        if node is not None and node.entry.type == SYMLINK and (pending or follow_last):
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise BadRequest(gettext("/%(path)s: too many levels of symbolic links") % {"path": path}, field="path")
            target = node.entry.link
            if target.startswith("/"):
                done = []
            pending = [p for p in target.split("/") if p] + pending
            continue
        done.append(part)
    return "/".join(done)


# --- listing -------------------------------------------------------------------------------

def describe(entry: Entry, layer: int, path: str | None = None) -> dict[str, Any]:
    shown = path if path is not None else entry.path
    return {
        "name": posixpath.basename(shown) or "/",
        "path": "/" + shown,
        "type": entry.type,
        "size": entry.size,
        "mode": f"{entry.mode:04o}",
        "uid": entry.uid,
        "gid": entry.gid,
        "mtime": datetime.fromtimestamp(max(entry.mtime, 0), UTC).isoformat().replace("+00:00", "Z"),
        "link": entry.link,
        "layer": layer,
        "digest": entry.digest or None,
    }


def _layer_tree(indexes: list[LayerIndex], n: int) -> Tree:
    """Layer ``n`` alone: its own entries, whiteouts kept as entries of type whiteout."""
    tree = Tree()
    for entry in indexes[n].entries:
        if entry.type == OPAQUE:
            continue
        path = _root_path(entry.path)
        tree.put(Entry(path, entry.type, entry.size, entry.mode, entry.uid, entry.gid, entry.mtime, entry.link,
                       entry.digest), n)
    return tree


def _check_layer(found: ImageContents, layer: int | None) -> None:
    if layer is not None and not 0 <= layer < len(found.layers):
        raise NotFound(gettext("the image has %(count)s layers: no layer %(layer)s")
                       % {"count": len(found.layers), "layer": layer}, field="layer")


def list_files(image: Image, path: str | None = None, *, layer: int | None = None,
               glob: str | None = None) -> list[dict[str, Any]]:
    """One directory's entries (the merged view, or layer ``layer``'s own), sorted by name;
    with ``glob``, every matching path of the whole image instead."""
    found = contents(image)
    _check_layer(found, layer)
    tree = found.merged if layer is None else _layer_tree(found.indexes, layer)
    if glob:
        matcher = glob_matcher(glob)
        return [describe(node.entry, node.layer) for p, node in sorted(tree.nodes.items())
                if p and matcher(p)]
    directory = clean_path(path)
    if layer is None:
        directory = resolve(tree, directory)
    if directory and directory not in tree.nodes:
        raise NotFound(gettext("no such file or directory: /%(path)s") % {"path": directory}, field="path")
    if directory and tree.nodes[directory].entry.type != DIR:
        node = tree.nodes[directory]
        return [describe(node.entry, node.layer)]
    names = sorted(tree.children.get(directory, ()))
    return [describe(tree.nodes[_join(directory, n)].entry, tree.nodes[_join(directory, n)].layer) for n in names]


def glob_matcher(pattern: str) -> Any:
    """``**/*.so*``: ``**`` spans directories, ``*`` and ``?`` stay within one name."""
    if len(pattern) > MAX_GLOB:
        raise BadRequest(gettext("the glob is longer than %(limit)s characters") % {"limit": MAX_GLOB}, field="glob")
    text = pattern.strip().lstrip("/")
    out = []
    i = 0
    while i < len(text):
        if text.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif text[i] == "*":
            out.append("[^/]*")
            i += 1
        elif text[i] == "?":
            out.append("[^/]")
            i += 1
        elif text[i] == "[":
            end = text.find("]", i + 1)
            if end < 0:
                out.append(re.escape("["))
                i += 1
            else:
                out.append(fnmatch.translate(text[i:end + 1])[4:-3])
                i = end + 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    compiled = re.compile("".join(out) + r"\Z", re.DOTALL)
    return compiled.match


# --- one layer's changes ---------------------------------------------------------------------

def layer_changes(image: Image, n: int) -> dict[str, Any]:
    """What layer ``n`` adds, modifies and removes, against the layers below it."""
    found = contents(image)
    _check_layer(found, n)
    below = merge(found.indexes, n - 1) if n else Tree()
    added: list[dict[str, Any]] = []
    modified: list[dict[str, Any]] = []
    removed = [describe(node.entry, node.layer) for node in
               sorted(apply_layer(_copy(below), found.indexes[n], n), key=lambda node: node.entry.path)]
    for entry in found.indexes[n].entries:
        if entry.type in (WHITEOUT, OPAQUE):
            continue
        path = _root_path(entry.path)
        if not path:
            continue
        (modified if path in below.nodes else added).append(describe(entry, n, path))
    return {"layer": n, "diff_id": found.layers[n].diff_id, "added": added, "modified": modified,
            "removed": removed}


def _copy(tree: Tree) -> Tree:
    copied = Tree(dict(tree.nodes), implied=set(tree.implied))
    for key, value in tree.children.items():
        copied.children[key] = set(value)
    return copied


# --- efficiency, as dive computes it ---------------------------------------------------------

def efficiency(image: Image, top: int = 20) -> dict[str, Any]:
    """dive's score: every path seen in a layer's tree (leaves only) counts its size each time
    it is seen; a whiteout counts what it removes when that was a directory (its files), else
    0. Score = sum over paths of the smallest size seen / sum of every size seen. Wasted bytes
    = the sum of every size seen of the paths seen more than once (dive's "potential wasted
    space"); per path ``wasted`` is what could be saved: all it ever held but its smallest.
    """
    found = contents(image)
    cumulative: dict[str, int] = defaultdict(int)
    minimum: dict[str, int] = {}
    count: dict[str, int] = defaultdict(int)
    stacked = Tree()
    for n, index in enumerate(found.indexes):
        layer_tree = _layer_tree(found.indexes, n)
        for path, node in layer_tree.nodes.items():
            if not path or layer_tree.children.get(path):
                continue  # dive visits the leaves of each layer's tree
            if node.entry.type == WHITEOUT:
                previous = stacked.nodes.get(path)
                size = 0
                if previous is not None and previous.entry.type == DIR:
                    size = sum(stacked.nodes[p].entry.size for p in _below(stacked, path))
            else:
                size = node.entry.size
            cumulative[path] += size
            minimum[path] = size if path not in minimum else min(minimum[path], size)
            count[path] += 1
        apply_layer(stacked, index, n)
    total_min, total = sum(minimum.values()), sum(cumulative.values())
    score = 1.0 if total == 0 else total_min / total
    offenders = sorted((p for p in count if count[p] > 1 and cumulative[p] > 0), key=lambda p: (-cumulative[p], p))
    image_size = sum(layer.uncompressed_size for layer in found.layers)
    return {
        "score": score,
        "wasted_bytes": sum(cumulative[p] for p in offenders),
        "image_size": image_size,
        "offenders": [{"path": "/" + p, "count": count[p], "total_size": cumulative[p],
                       "wasted": cumulative[p] - minimum[p],
                       "removed": p not in found.merged.nodes} for p in offenders[:top]],
        "offender_count": len(offenders),
    }


def _below(tree: Tree, path: str) -> Iterator[str]:
    stack = [path]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(_join(current, name) for name in tree.children.get(current, ()))


# --- bytes -----------------------------------------------------------------------------------

@dataclass
class FileContent:
    entry: Entry
    layer: int
    path: str  # resolved, inside the image
    is_directory: bool
    chunks: Iterator[bytes]
    size: int | None  # known for a file


def _find(found: ImageContents, path: str, layer: int | None) -> tuple[str, Node]:
    tree = found.merged if layer is None else _layer_tree(found.indexes, layer)
    resolved = resolve(tree, clean_path(path))
    node = tree.nodes.get(resolved)
    if node is None and resolved == "":
        node = Node(Entry("", DIR, mode=0o755), 0)
    if node is None or node.entry.type == WHITEOUT:
        raise NotFound(gettext("no such file or directory: /%(path)s") % {"path": clean_path(path)}, field="path")
    return resolved, node


def read_content(image: Image, path: str, *, layer: int | None = None) -> FileContent:
    """A file's bytes (a hard link's, from its target), or a directory as a tar, streamed
    from the layer blobs. Devices, FIFOs and dangling links have no content (BadRequest)."""
    found = contents(image)
    _check_layer(found, layer)
    resolved, node = _find(found, path, layer)
    entry = node.entry
    if entry.type == DIR:
        tree = found.merged if layer is None else _layer_tree(found.indexes, layer)
        return FileContent(entry, node.layer, resolved, True, _directory_tar(found, tree, resolved), None)
    if entry.type == FILE:
        member = entry.path
    elif entry.type == HARDLINK:
        member = entry.link
    else:
        raise BadRequest(gettext("/%(path)s is a %(type)s, which has no content to read")
                         % {"path": resolved, "type": entry.type}, field="path")
    layer_row = found.layers[node.layer]
    return FileContent(entry, node.layer, resolved, False, _member_bytes(layer_row, member), entry.size)


def _open_layer_tar(layer: Layer) -> Iterator[tuple[tarfile.TarInfo, str, tarfile.TarFile]]:
    with get_store().open(layer.digest) as raw:
        reader = open_decompressed(raw, max_output=settings.IMAGESTORE_MAX_LAYER_SIZE)
        with open_tar_stream(reader, "layer") as tar:
            for info in tar:
                yield info, clean_member_name(info.name), tar
                tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps every TarInfo otherwise


def _member_bytes(layer: Layer, member: str) -> Iterator[bytes]:
    for info, name, tar in _open_layer_tar(layer):
        if name == member and info.isreg():
            source = tar.extractfile(info)
            if source is None:
                return
            while chunk := source.read(CHUNK):
                yield chunk
            return


def _tar_header(name: str, entry: Entry, *, size: int = 0, as_file: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.mode, info.uid, info.gid, info.mtime = entry.mode, entry.uid, entry.gid, max(entry.mtime, 0)
    kind = entry.type
    if as_file or kind == FILE:
        info.type, info.size = tarfile.REGTYPE, size
    elif kind == DIR:
        info.type = tarfile.DIRTYPE
    elif kind == SYMLINK:
        info.type, info.linkname = tarfile.SYMTYPE, entry.link
    elif kind == "fifo":
        info.type = tarfile.FIFOTYPE
    else:
        info.type = tarfile.CHRTYPE if kind == "char" else tarfile.BLKTYPE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _hard_link(name: str, target: str, entry: Entry) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    info.mode, info.uid, info.gid, info.mtime = entry.mode, entry.uid, entry.gid, max(entry.mtime, 0)
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _directory_tar(found: ImageContents, tree: Tree, directory: str) -> Iterator[bytes]:
    """The directory as ``docker cp`` archives one: its own name at the top, links as links,
    hard links as the file they name; file bytes read with one pass per layer holding some."""
    base = posixpath.basename(directory) or "."
    paths = sorted(_below(tree, directory)) if directory else sorted(["", *tree.nodes])

    def name_of(path: str) -> str:
        rel = path[len(directory):].lstrip("/") if directory else path
        return f"{base}/{rel}" if rel else base

    wanted: dict[int, dict[str, list[tuple[str, Entry]]]] = defaultdict(lambda: defaultdict(list))
    for path in paths:
        node = tree.nodes.get(path)
        entry = node.entry if node is not None else Entry("", DIR, mode=0o755)
        if entry.type in (FILE, HARDLINK):
            member = entry.path if entry.type == FILE else entry.link
            wanted[node.layer if node else 0][member].append((name_of(path), entry))
        elif entry.type != WHITEOUT:
            yield _tar_header(name_of(path) + ("/" if entry.type == DIR else ""), entry)
    for n in sorted(wanted):
        members = wanted[n]
        for info, name, tar in _open_layer_tar(found.layers[n]):
            targets = members.pop(name, None) if info.isreg() else None
            if targets:
                (first, entry), *others = targets
                yield _tar_header(first, entry, size=info.size, as_file=True)
                source = tar.extractfile(info)
                left = info.size
                while source is not None and left > 0 and (chunk := source.read(min(CHUNK, left))):
                    left -= len(chunk)
                    yield chunk
                if left:
                    raise BadRequest(gettext("%(name)s: the layer ends inside this file") % {"name": name})
                yield b"\0" * (-info.size % 512)
                for other, other_entry in others:  # the same bytes again: a hard link to the first
                    yield _hard_link(other, first, other_entry)
            if not members:
                break
    yield b"\0" * 1024
