"""Manifests as /v2/ serves them: their bytes kept as blobs, one Manifest row per repository.

A pull keeps what the registry sent; a push to this store's /v2/ keeps what the client sent,
so a digest is the same everywhere it is seen. An image with no kept manifest (imported,
loaded, committed) is served the manifest push builds (services.layout.image_manifest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from ..blobs import Pins
from ..models import Image, Manifest, Repository
from ..oci import jsonbounds
from ..oci.digest import Digest, sha256_digest


@dataclass(frozen=True)
class ManifestBytes:
    data: bytes
    media_type: str
    digest: Digest


def store_blob(data: bytes, digest: Digest, pins: Pins) -> None:
    """The manifest's bytes under their digest, pinned until the rows naming them commit."""
    if sha256_digest(data) != digest:
        return  # a registry answering a digest other than its bytes': nothing to keep
    if pins.take(digest):
        return
    with pins.store.writer() as writer:
        writer.write(data)
        writer.commit(digest, pins=pins)


def _fields(data: bytes) -> dict[str, Any]:
    try:
        document = jsonbounds.loads(data, what="the manifest")
    except Exception:  # already parsed once by its caller; this reads optional fields only
        return {}
    if not isinstance(document, dict):
        return {}
    subject = document.get("subject")
    annotations = document.get("annotations")
    children = document.get("manifests")
    return {
        "subject": str(subject.get("digest", ""))[:71] if isinstance(subject, dict) else "",
        "artifact_type": str(document.get("artifactType") or "")[:255],
        "annotations": annotations if isinstance(annotations, dict) else {},
        "blobs": [str(c.get("digest")) for c in children if isinstance(c, dict)] if isinstance(children, list) else [],
    }


def keep_manifests(repository: Repository, documents: list[ManifestBytes], image: Image | None,
                   pins: Pins, *, blobs: list[str] | None = None) -> list[Manifest]:
    """Store the manifests' bytes and their rows (inside the caller's transaction)."""
    rows = []
    for document in documents:
        store_blob(document.data, document.digest, pins)
        if not pins.store.exists(document.digest) and str(document.digest) not in pins.paths:
            continue
        fields = _fields(document.data)
        if blobs is not None:
            fields["blobs"] = blobs
        row, _ = Manifest.objects.update_or_create(
            repository=repository, digest=str(document.digest),
            defaults={"media_type": document.media_type[:255], "size": len(document.data), "image": image, **fields},
        )
        rows.append(row)
    needed: list[Digest | str] = [d.digest for d in documents]
    transaction.on_commit(lambda: pins.ensure_names(needed), robust=True)
    return rows
