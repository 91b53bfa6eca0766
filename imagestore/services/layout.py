"""Writing stored images as an OCI image layout directory (store -> layout)."""

from __future__ import annotations

from pathlib import Path

from ..blobs import get_store
from ..models import Image, ImageLayer
from ..oci import mediatypes
from ..oci.digest import Digest
from ..oci.layout import REF_NAME, LayoutWriter
from ..oci.manifest import Descriptor, descriptor_for, oci_manifest


def image_manifest(image: Image, links: list[ImageLayer] | None = None) -> bytes:
    """The OCI manifest of a stored image, from its rows (config and layer blobs)."""
    if links is None:
        links = list(ImageLayer.objects.filter(image=image).select_related("layer").order_by("position"))
    config = Descriptor(mediatypes.OCI_CONFIG, Digest.parse(image.id), image.config_size)
    layers = [
        Descriptor(link.layer.media_type, Digest.parse(link.layer.digest), link.layer.size) for link in links
    ]
    return oci_manifest(config, layers)


def write_oci_layout(images: list[tuple[Image, str | None]], root: Path) -> None:
    """Write each (image, ref name) into an OCI layout at ``root``; blobs are shared."""
    store = get_store()
    writer = LayoutWriter(root)
    for image, name in images:
        links = list(ImageLayer.objects.filter(image=image).select_related("layer").order_by("position"))
        writer.add_blob_file(Digest.parse(image.id), store.path(image.id))
        for link in links:
            writer.add_blob_file(Digest.parse(link.layer.digest), store.path(link.layer.digest))
        manifest = image_manifest(image, links)
        descriptor = descriptor_for(
            mediatypes.OCI_MANIFEST, manifest, annotations={REF_NAME: name} if name else {}
        )
        writer.add_blob_bytes(descriptor.digest, manifest)
        writer.add_manifest(descriptor)
    writer.finish()
