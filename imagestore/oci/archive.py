"""Writing image archives the way ``docker save`` (Docker 25+) does, as a stream.

One tar holds both formats: the docker-archive files (``manifest.json``,
``repositories``) and an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256/...``), every blob once however many images share it.
https://github.com/moby/moby/blob/master/image/spec/spec.md ,
https://github.com/opencontainers/image-spec/blob/main/image-layout.md
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from . import mediatypes
from .config import encode
from .digest import Digest
from .errors import OCIError
from .layout import LAYOUT_VERSION, REF_NAME
from .manifest import Descriptor, descriptor_for, oci_manifest
from .reference import Reference

BLOCK = 512
IMAGE_NAME_ANNOTATION = "io.containerd.image.name"


@dataclass
class ArchiveImage:
    config: Descriptor
    layers: list[Descriptor]
    refs: list[Reference] = field(default_factory=list)  # tagged references
    platform: dict[str, str] | None = None


def tar_header(name: str, size: int, *, directory: bool = False) -> bytes:
    """A header with Docker's choices: mtime 0 (the epoch), root-owned, 0644/0755."""
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mtime = 0
    return info.tobuf(format=tarfile.PAX_FORMAT)


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


END_OF_ARCHIVE = b"\0" * (2 * BLOCK)


@dataclass
class ArchivePlan:
    """Everything of an archive but the blob bytes: small documents, and blobs by digest."""

    documents: dict[str, bytes]  # top-level files
    blobs: dict[str, int]  # digest -> size, of blobs read from the store
    generated: dict[str, bytes]  # digest -> bytes, of blobs made here (manifests)

    def blob_names(self) -> list[str]:
        return sorted(set(self.blobs) | set(self.generated))

    def size(self) -> int:
        """The exact length of the tar stream, for Content-Length."""
        total = len(tar_header("blobs/", 0, directory=True)) + len(tar_header("blobs/sha256/", 0, directory=True))
        for digest in self.blob_names():
            size = self.blobs[digest] if digest in self.blobs else len(self.generated[digest])
            total += len(tar_header(_blob_path(digest), size)) + size + len(padding(size))
        for name, data in self.documents.items():
            total += len(tar_header(name, len(data))) + len(data) + len(padding(len(data)))
        return total + len(END_OF_ARCHIVE)


def _blob_path(digest: str) -> str:
    d = Digest.parse(digest)
    return f"blobs/{d.algorithm}/{d.hex}"


def plan_archive(images: list[ArchiveImage]) -> ArchivePlan:
    blobs: dict[str, int] = {}
    generated: dict[str, bytes] = {}
    manifest_items = []
    repositories: dict[str, dict[str, str]] = {}
    index_manifests = []
    for image in images:
        manifest = oci_manifest(image.config, image.layers)
        descriptor = descriptor_for(mediatypes.OCI_MANIFEST, manifest, platform=image.platform)
        generated[str(descriptor.digest)] = manifest
        blobs[str(image.config.digest)] = image.config.size
        for layer in image.layers:
            blobs[str(layer.digest)] = layer.size
        repo_tags = []
        for ref in image.refs:
            repo_tags.append(ref.familiar)
            if image.layers:
                repositories.setdefault(ref.familiar_name, {})[ref.tag or ""] = image.layers[-1].digest.hex
            tagged = Descriptor(
                descriptor.media_type, descriptor.digest, descriptor.size,
                annotations={IMAGE_NAME_ANNOTATION: str(ref), REF_NAME: ref.tag or ""},
                platform=image.platform,
            )
            index_manifests.append(tagged.to_json())
        if not image.refs:
            index_manifests.append(descriptor.to_json())
        manifest_items.append(
            {
                "Config": _blob_path(str(image.config.digest)),
                "RepoTags": repo_tags or None,
                "Layers": [_blob_path(str(layer.digest)) for layer in image.layers],
            }
        )
    documents = {
        "index.json": encode({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": index_manifests}),
        "manifest.json": encode(manifest_items),
        "oci-layout": json.dumps(LAYOUT_VERSION).encode(),
        "repositories": encode(repositories),
    }
    return ArchivePlan(documents=documents, blobs=blobs, generated=generated)


BlobReader = Callable[[str], Iterator[bytes]]


def stream_archive(
    plan: ArchivePlan,
    read_blob: BlobReader,
    on_blob: Callable[[str, int, int], None] | None = None,
) -> Iterator[bytes]:
    """The archive, chunk by chunk: no blob is ever held whole in memory."""
    yield tar_header("blobs/", 0, directory=True)
    yield tar_header("blobs/sha256/", 0, directory=True)
    for digest in plan.blob_names():
        if digest in plan.generated:
            data = plan.generated[digest]
            yield tar_header(_blob_path(digest), len(data)) + data + padding(len(data))
            continue
        size = plan.blobs[digest]
        yield tar_header(_blob_path(digest), size)
        done = 0
        for chunk in read_blob(digest):
            done += len(chunk)
            if done > size:
                raise OCIError(f"blob {digest} in the store is larger than recorded ({size} bytes)")
            yield chunk
            if on_blob is not None:
                on_blob(digest, done, size)
        if done != size:
            raise OCIError(f"blob {digest} in the store is shorter than recorded ({done} of {size} bytes)")
        yield padding(size)
    for name, data in plan.documents.items():
        yield tar_header(name, len(data)) + data + padding(len(data))
    yield END_OF_ARCHIVE
