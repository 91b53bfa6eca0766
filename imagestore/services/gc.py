"""Garbage collection of the blob store: blobs no row references go."""

from __future__ import annotations

from itertools import chain

from ..blobs import GC_GRACE_SECONDS, get_store
from ..models import Image, Layer


def collect_garbage(grace_seconds: float = GC_GRACE_SECONDS) -> list[str]:
    """Remove unreferenced blobs older than the grace period; returns their digests."""
    referenced = set(
        chain(
            Layer.objects.values_list("digest", flat=True).iterator(),
            Image.objects.values_list("id", flat=True).iterator(),
        )
    )
    return get_store().collect_garbage(referenced, grace_seconds=grace_seconds)
