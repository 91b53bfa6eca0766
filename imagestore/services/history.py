"""``docker history``: one row per history entry of the config, newest first."""

from __future__ import annotations

from typing import Any

from ..blobs import get_store
from ..models import Image, ImageLayer
from ..oci.config import ImageConfig, parse_time


def _unix(text: str | None, fallback: int) -> int:
    if not text:
        return fallback
    try:
        return int(parse_time(text).timestamp())
    except ValueError:
        return fallback


def image_history(image: Image) -> list[dict[str, Any]]:
    """Rows shaped like the Engine API's ImageHistoryResponseItem, plus the layer's diff_id.

    Entries marked ``empty_layer`` have size 0 and no layer; the others take the image's
    layers in order. Layers the history does not describe (configs without history)
    still get a row each, so every byte of the image is accounted for.
    """
    config = ImageConfig.parse(get_store().read_bytes(image.id))
    links = list(ImageLayer.objects.filter(image=image).select_related("layer").order_by("position"))
    created = int(image.created.timestamp()) if image.created else 0
    rows: list[dict[str, Any]] = []
    layers = iter(links)
    for entry in config.history:
        link = None if entry.get("empty_layer") else next(layers, None)
        rows.append(
            {
                "Id": "<missing>",
                "Created": _unix(entry.get("created"), created),
                "CreatedBy": str(entry.get("created_by") or ""),
                "Tags": None,
                "Size": link.layer.uncompressed_size if link else 0,
                "Comment": str(entry.get("comment") or ""),
                "Layer": link.layer.diff_id if link else None,
            }
        )
    for link in layers:
        rows.append({"Id": "<missing>", "Created": created, "CreatedBy": "", "Tags": None,
                     "Size": link.layer.uncompressed_size, "Comment": "", "Layer": link.layer.diff_id})
    rows.reverse()
    if rows:
        rows[0]["Id"] = image.id
        tags = sorted(f"{t.repository.name}:{t.name}" for t in image.tags.select_related("repository"))
        rows[0]["Tags"] = tags or None
    _name_ancestors(image, rows)
    return rows


def _name_ancestors(image: Image, rows: list[dict[str, Any]]) -> None:
    """Where a parent image's history ends, its row carries the parent's id, as Docker shows."""
    parent = image.parent
    while parent is not None:
        depth = len(ImageConfig.parse(get_store().read_bytes(parent.id)).history) or parent.layers.count()
        index = len(rows) - depth
        if 0 < index < len(rows):
            rows[index]["Id"] = parent.id
            tags = sorted(f"{t.repository.name}:{t.name}" for t in parent.tags.select_related("repository"))
            rows[index]["Tags"] = tags or None
        parent = parent.parent
