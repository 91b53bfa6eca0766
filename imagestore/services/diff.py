"""The difference between two images, from their layer indexes and package rows: files added,
removed and changed (by content digest, type, link target, mode and owner, never by mtime),
packages added, removed and changed (both versions), config changes (env, cmd, entrypoint,
workdir, user, labels, exposed ports, volumes), layers shared and new, sizes."""

from __future__ import annotations

from typing import Any

from ..blobs import get_store
from ..models import Image
from ..oci.config import ImageConfig
from ..oci.layerindex import DIR, Entry
from . import files, packages

MAX_LISTED = 10_000  # entries per list in one answer; ``truncated`` says when there were more
CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes")


def _same_file(a: Entry, b: Entry) -> bool:
    if a.type != b.type or (a.mode, a.uid, a.gid) != (b.mode, b.uid, b.gid):
        return False
    if a.type == DIR:
        return True  # a directory changes only by its own metadata; its entries are listed themselves
    return (a.digest, a.link, a.size) == (b.digest, b.link, b.size)


def _capped(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    return rows[:MAX_LISTED], len(rows) > MAX_LISTED


def diff_images(old: Image, new: Image) -> dict[str, Any]:
    a, b = files.contents(old), files.contents(new)
    left, right = a.merged.nodes, b.merged.nodes
    added = [files.describe(n.entry, n.layer) for p, n in sorted(right.items()) if p and p not in left]
    removed = [files.describe(n.entry, n.layer) for p, n in sorted(left.items()) if p and p not in right]
    changed = []
    for path, node in sorted(right.items()):
        before = left.get(path)
        if path and before is not None and not _same_file(before.entry, node.entry):
            changed.append({"path": "/" + path, "from": files.describe(before.entry, before.layer),
                            "to": files.describe(node.entry, node.layer)})
    file_lists: dict[str, Any] = {}
    for name, rows in (("added", added), ("removed", removed), ("changed", changed)):
        shown, truncated = _capped(rows)
        file_lists[name] = shown
        file_lists[f"{name}_count"] = len(rows)
        if truncated:
            file_lists[f"{name}_truncated"] = True

    def package_map(image: Image) -> dict[tuple[str, str, str], Any]:
        return {(p.kind, p.name, p.arch): p for p in packages.image_packages(image)}

    pa, pb = package_map(old), package_map(new)
    package_diff = {
        "added": [_package(pb[k]) for k in sorted(pb) if k not in pa],
        "removed": [_package(pa[k]) for k in sorted(pa) if k not in pb],
        "changed": [{"kind": k[0], "name": k[1], "arch": k[2], "from": pa[k].version, "to": pb[k].version}
                    for k in sorted(pb) if k in pa and pa[k].version != pb[k].version],
    }
    store = get_store()
    ca = ImageConfig.parse(store.read_bytes(old.id)).container_config
    cb = ImageConfig.parse(store.read_bytes(new.id)).container_config
    config = {key: {"from": ca.get(key), "to": cb.get(key)} for key in CONFIG_KEYS
              if (ca.get(key) or None) != (cb.get(key) or None)}
    ids_a = [layer.diff_id for layer in a.layers]
    ids_b = [layer.diff_id for layer in b.layers]
    shared = [d for d in ids_b if d in set(ids_a)]
    size_a = sum(layer.uncompressed_size for layer in a.layers)
    size_b = sum(layer.uncompressed_size for layer in b.layers)
    return {
        "from": old.id, "to": new.id,
        "files": file_lists,
        "packages": package_diff,
        "config": config,
        "layers": {"shared": shared, "new": [d for d in ids_b if d not in set(ids_a)],
                   "dropped": [d for d in ids_a if d not in set(ids_b)]},
        "size": {"from": size_a, "to": size_b, "delta": size_b - size_a},
    }


def _package(row: Any) -> dict[str, Any]:
    return {"kind": row.kind, "name": row.name, "version": row.version, "arch": row.arch, "purl": row.purl,
            "layer": row.layer}
