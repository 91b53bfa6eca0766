"""Reading image archives: ``docker save`` (old and Docker 25+), skopeo's docker-archive
and oci-archive, podman save. One pass over the tar stream stages every file on disk,
hashing it as it goes (and, for a compressed layer, hashing what it decompresses to);
then the archive's own index (manifest.json, else index.json) says what the files are.

Every blob named by digest is checked against it as soon as it has been read; every
layer is checked against its config's diff_id before anything is kept.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import jsonbounds, mediatypes
from .compression import CHUNK_SIZE, DEFAULT_MAX_OUTPUT, Readable
from .config import MAX_LAYERS, ImageConfig, InvalidConfig
from .diffid import DiffIdHasher
from .digest import Digest
from .errors import CorruptArchive, DigestMismatch, InvalidDigest, LimitExceeded, SizeLimitExceeded, human_size
from .layerindex import LayerIndex, TarIndexer
from .platform import Platform
from .tarsafe import clean_member_name, open_tar_stream

# manifest.json, index.json, OCI manifests, indexes and configs: small by nature, read with
# the distribution registry's 4 MiB manifest limit and a nesting limit (oci.jsonbounds).
MAX_DOCUMENT = jsonbounds.MAX_DOCUMENT
MAX_LINK_HOPS = 16


@dataclass
class StagedFile:
    path: Path
    size: int
    digest: Digest  # of the bytes as stored in the archive
    compression: str  # "none", "gzip", "zstd", ...
    diff_id: Digest  # of the uncompressed bytes (== digest when not compressed)
    uncompressed_size: int
    error: CorruptArchive | None = None  # the compressed stream would not decompress
    index: LayerIndex | None = None  # its entries, when it is a tar (a layer)

    def read_document(self, what: str) -> bytes:
        """The bytes of a small document (manifest, index, config), never more than MAX_DOCUMENT."""
        if self.size > MAX_DOCUMENT:
            raise LimitExceeded(f"{what} is larger than the limit of {human_size(MAX_DOCUMENT)}", MAX_DOCUMENT)
        with open(self.path, "rb") as f:
            return jsonbounds.read_capped(f, what=what, max_size=MAX_DOCUMENT)


@dataclass
class StagedArchive:
    files: dict[str, StagedFile] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> StagedFile:
        current = clean_member_name(name)
        for _ in range(MAX_LINK_HOPS):
            if current in self.files:
                return self.files[current]
            if current not in self.links:
                break
            current = self.links[current]
        raise CorruptArchive(f"the archive names {name!r}, which it does not contain")

    def document(self, name: str) -> Any:
        return jsonbounds.loads(self.get(name).read_document(name), what=name)

    def has(self, name: str) -> bool:
        name = clean_member_name(name)
        return name in self.files or name in self.links


class _HashingReader:
    """Reads a tar member, hashing the raw bytes (and nothing else)."""

    def __init__(self, src: Readable) -> None:
        self.src = src
        self.hasher = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.hasher.update(data)
        self.size += len(data)
        return data


def _stage_member(fileobj: Readable, target: Path, max_layer: int, index: bool = False) -> StagedFile:
    """Copy one member to ``target``, hashing its bytes as stored and, on a second core,
    what they decompress to (the diff_id of a compressed layer), up to ``max_layer`` bytes.
    With ``index``, what they decompress to is indexed on the way when it is a tar."""
    raw = _HashingReader(fileobj)
    indexer = TarIndexer() if index else None
    hasher = DiffIdHasher(max_output=max_layer, indexer=indexer)
    try:
        with open(target, "wb") as out:
            while chunk := raw.read(CHUNK_SIZE):
                if hasher.over_limit:
                    break  # a compression bomb: no need to copy the rest
                out.write(chunk)
                hasher.feed(chunk)
        if hasher.over_limit:
            hasher.finish(Digest("sha256", raw.hasher.hexdigest()))  # raises LimitExceeded
        digest = Digest("sha256", raw.hasher.hexdigest())
        try:
            diff_id = hasher.finish(digest)
        except CorruptArchive as exc:
            # Reported after the digest check, which names the cause better.
            return StagedFile(target, raw.size, digest, hasher.kind, digest, 0, exc)
    finally:
        hasher.close()
    layer_index = None
    if indexer is not None and indexer.failed is None and indexer.ended:
        layer_index = indexer.result()
    return StagedFile(target, raw.size, digest, hasher.kind, diff_id, hasher.size, index=layer_index)


def _digest_from_blob_path(name: str) -> Digest | None:
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        try:
            return Digest.parse(f"{parts[1]}:{parts[2]}")
        except InvalidDigest:
            raise CorruptArchive(f"{name} is not a valid blob name") from None
    return None


def stage_archive(stream: Readable, staging: Path, *, max_total: int,
                  max_layer: int = DEFAULT_MAX_OUTPUT, index_layers: bool = False) -> StagedArchive:
    """Read the whole tar once into ``staging``; verify blobs named by their digest. The
    archive's files may hold ``max_total`` bytes in all, and none may decompress to more
    than ``max_layer`` (LimitExceeded)."""
    staged = StagedArchive()
    total = 0
    with open_tar_stream(stream, "image archive") as tar:
            for n, info in enumerate(tar):
                name = clean_member_name(info.name)
                if info.issym() or info.islnk():
                    base = "" if info.islnk() else posixpath.dirname(name)
                    target = posixpath.normpath(posixpath.join(base, info.linkname))
                    staged.links[name] = clean_member_name(target)
                elif info.isreg():
                    total += info.size
                    if total > max_total:
                        raise SizeLimitExceeded(f"the archive holds more than the limit of {human_size(max_total)}",
                                            max_total)
                    member = tar.extractfile(info)
                    assert member is not None
                    entry = _stage_member(member, staging / f"{n:06d}", max_layer, index_layers)
                    if entry.size != info.size:
                        raise CorruptArchive(f"unexpected end of archive inside {name}: the file is truncated")
                    expected = _digest_from_blob_path(name)
                    if expected is not None and expected != entry.digest:
                        raise DigestMismatch(str(expected), str(entry.digest), what=f"blob {name}")
                    if entry.error is not None:
                        raise CorruptArchive(f"{name}: {entry.error}")
                    staged.files[name] = entry
                tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps every TarInfo otherwise
    return staged


@dataclass
class ArchivedImage:
    config_bytes: bytes
    config: ImageConfig
    layers: list[StagedFile]
    names: list[str]  # references to tag, as written in the archive


def _check_layer_count(count: int, what: str) -> None:
    if count > MAX_LAYERS:
        raise LimitExceeded(f"{what} has {count} layers, more than the limit of {MAX_LAYERS}", MAX_LAYERS)


def _check_layers(config: ImageConfig, layers: list[StagedFile], what: str) -> None:
    if len(layers) != len(config.diff_ids):
        raise CorruptArchive(
            f"{what} lists {len(layers)} layers but its config has {len(config.diff_ids)} diff_ids"
        )
    for i, (layer, diff_id) in enumerate(zip(layers, config.diff_ids, strict=True)):
        if layer.diff_id != diff_id:
            raise DigestMismatch(str(diff_id), str(layer.diff_id), what=f"layer {i} of {what}")


def _config(staged: StagedArchive, name: str) -> tuple[bytes, ImageConfig]:
    data = staged.get(name).read_document(f"config {name}")
    try:
        return data, ImageConfig.parse(data)
    except InvalidConfig as exc:
        raise CorruptArchive(f"config {name}: {exc}") from exc


def _from_docker_manifest(staged: StagedArchive) -> list[ArchivedImage]:
    items = staged.document("manifest.json")
    if not isinstance(items, list):
        raise CorruptArchive("manifest.json is not a list")
    images = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
            raise CorruptArchive("manifest.json has an entry without a Config")
        paths = item.get("Layers") or []
        if not isinstance(paths, list):
            raise CorruptArchive("manifest.json has an entry whose Layers is not a list")
        _check_layer_count(len(paths), f"image {item['Config']}")
        data, config = _config(staged, item["Config"])
        layers = [staged.get(str(path)) for path in paths]
        _check_layers(config, layers, f"image {item['Config']}")
        names = [str(t) for t in item.get("RepoTags") or []]
        images.append(ArchivedImage(data, config, layers, names))
    return images


def _blob(staged: StagedArchive, descriptor: Any) -> StagedFile:
    if not isinstance(descriptor, dict):
        raise CorruptArchive("the archive's index holds a descriptor that is not an object")
    try:
        digest = Digest.parse(str(descriptor.get("digest")))
    except InvalidDigest as exc:
        raise CorruptArchive(f"index.json: {exc}") from exc
    entry = staged.get(f"blobs/{digest.algorithm}/{digest.hex}")
    if "size" in descriptor and descriptor["size"] != entry.size:
        raise CorruptArchive(f"blob {digest} is {entry.size} bytes, its descriptor says {descriptor['size']}")
    return entry


def _pick_platform(manifests: list[dict[str, Any]], platform: Platform) -> dict[str, Any] | None:
    for wanted_variant in (True, False):
        for m in manifests:
            p = m.get("platform") or {}
            if p.get("os") == platform.os and p.get("architecture") == platform.architecture and (
                not wanted_variant or not platform.variant or p.get("variant", "") in ("", platform.variant)
            ):
                return m
    return manifests[0] if manifests else None


def _name_of(descriptor: dict[str, Any]) -> str | None:
    annotations = descriptor.get("annotations") or {}
    name = annotations.get("io.containerd.image.name")
    if name:
        return str(name)
    ref = annotations.get("org.opencontainers.image.ref.name")
    # A bare tag ("latest") names no repository; skopeo and podman write full names.
    if ref and ("/" in ref or ":" in ref):
        return str(ref)
    return None


def _from_oci_index(staged: StagedArchive, platform: Platform) -> list[ArchivedImage]:
    index = staged.document("index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise CorruptArchive("index.json has no manifests")
    by_config: dict[str, ArchivedImage] = {}
    for descriptor in index["manifests"]:
        if not isinstance(descriptor, dict):
            raise CorruptArchive("index.json lists a manifest that is not an object")
        name = _name_of(descriptor)
        manifest_desc = descriptor
        for _ in range(4):  # an index may point to an index (multi-platform)
            media_type = manifest_desc.get("mediaType")
            entry = _blob(staged, manifest_desc)
            what = f"manifest {entry.digest}"
            document = jsonbounds.loads(entry.read_document(what), what=what)
            if not isinstance(document, dict):
                raise CorruptArchive(f"manifest {entry.digest} is not a JSON object")
            if media_type in (mediatypes.OCI_INDEX, mediatypes.DOCKER_MANIFEST_LIST) or "manifests" in document:
                chosen = _pick_platform(document.get("manifests") or [], platform)
                if chosen is None:
                    raise CorruptArchive("an image index in the archive lists no manifests")
                manifest_desc = chosen
                continue
            break
        if not isinstance(document.get("config"), dict):
            raise CorruptArchive(f"manifest {manifest_desc.get('digest')} has no config")
        config_entry = _blob(staged, document["config"])
        data = config_entry.read_document(f"config {config_entry.digest}")
        try:
            config = ImageConfig.parse(data)
        except InvalidConfig as exc:
            raise CorruptArchive(f"config {config_entry.digest}: {exc}") from exc
        descriptors = document.get("layers") or []
        if not isinstance(descriptors, list):
            raise CorruptArchive(f"manifest {manifest_desc.get('digest')} has layers that are not a list")
        _check_layer_count(len(descriptors), f"manifest {manifest_desc.get('digest')}")
        layers = [_blob(staged, layer) for layer in descriptors]
        _check_layers(config, layers, f"manifest {manifest_desc.get('digest')}")
        image = by_config.setdefault(str(config.digest), ArchivedImage(data, config, layers, []))
        if name and name not in image.names:
            image.names.append(name)
    return list(by_config.values())


def read_archive_index(staged: StagedArchive, platform: Platform) -> list[ArchivedImage]:
    """The images of a staged archive; docker-archive's manifest.json wins when both exist,
    as Docker's own loader reads it."""
    if staged.has("manifest.json"):
        return _from_docker_manifest(staged)
    if staged.has("index.json"):
        return _from_oci_index(staged, platform)
    raise CorruptArchive("not an image archive: it has neither manifest.json nor index.json")
