"""``docker pull``: registry -> store.

The manifest (a list or index is resolved to the requested platform) and the
config are fetched and verified; layers download in parallel (a bounded number),
each verified while it streams (its digest, and the diff_id its config promises)
into the blob store; a broken download resumes with ``Range``; a layer the store
has is not fetched again; two pulls needing one blob at once fetch it once (a
file lock per digest). Then the image, its tag and its RepoDigest are registered
together. Progress follows Docker's per-layer phases.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from ..blobs import BlobStore, Pins, get_store, hold_lock_file
from ..errors import BadRequest, about
from ..models import Image, Job, Layer, RepoDigest, Tag
from ..oci import jsonbounds, mediatypes
from ..oci.config import ImageConfig, InvalidConfig
from ..oci.diffid import DiffIdHasher
from ..oci.digest import Digest
from ..oci.errors import CorruptArchive, DigestMismatch, InvalidDigest, InvalidJSON, LimitExceeded, SizeLimitExceeded
from ..oci.outbound import OutboundRefused, ResponseTooLarge, read_capped
from ..oci.platform import Platform, host_platform
from ..oci.redact import redact_text, redact_url
from ..oci.reference import Reference, parse_normalized
from ..oci.registry import MAX_CONFIG, RegistryClient, RegistryError, retry
from . import audit, layerindex
from .jobs import JobProgress, create_job, handler
from .manifests import ManifestBytes, keep_manifests
from .progress import NULL_PROGRESS, Progress
from .registries import check_reachable, client_for, endpoints_for
from .repositories import get_or_create_repository
from .store import LayerRecord, register_image
from .tag import tag_image
from .updates import mark_current

CHUNK = 1 << 20
READ_SIZE = 256 << 10
LAYER_TYPES = {
    mediatypes.OCI_LAYER_GZIP, mediatypes.OCI_LAYER_TAR, mediatypes.OCI_LAYER_ZSTD,
    mediatypes.DOCKER_LAYER_GZIP, mediatypes.DOCKER_LAYER_TAR,
}
MAX_RESUMES = 5


def parse_platform(text: str | None) -> Platform:
    """``linux/arm64/v8`` -> Platform; empty means this server's own."""
    if not text:
        return host_platform()
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise BadRequest(gettext("invalid platform %(text)s: use os/architecture[/variant], e.g. linux/amd64")
                         % {"text": repr(text)},
                         field="platform")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def _pick(manifests: list[dict[str, Any]], platform: Platform) -> dict[str, Any]:
    candidates = [m for m in manifests if (m.get("platform") or {}).get("os") == platform.os
                  and (m.get("platform") or {}).get("architecture") == platform.architecture]
    if platform.variant:
        exact = [m for m in candidates if (m.get("platform") or {}).get("variant", "") == platform.variant]
        candidates = exact or [m for m in candidates if not (m.get("platform") or {}).get("variant")] or candidates
    if not candidates:
        available = sorted({f"{(m.get('platform') or {}).get('os')}/{(m.get('platform') or {}).get('architecture')}"
                            for m in manifests})
        raise BadRequest(gettext("no matching manifest for %(platform)s in the manifest list entries (available: "
                                 "%(value)s)") % {"platform": platform, "value": ', '.join(available) or 'none'})
    return candidates[0]


@dataclass
class PullResult:
    image: Image
    reference: Reference
    manifest_digest: Digest
    downloaded: bool
    status: str


@contextmanager
def _digest_lock(store: BlobStore, digest: Digest) -> Iterator[None]:
    """One downloader per blob across threads and worker processes (housekeeping
    removes a lock file only while holding it, which hold_lock_file allows for)."""
    with hold_lock_file(store.root / "locks" / digest.hex):
        yield


@contextmanager
def _closing(hasher: DiffIdHasher) -> Iterator[None]:
    try:
        yield
    finally:
        hasher.close()


def _record_diff_id(store: BlobStore, digest: Digest, diff_id: Digest, size: int) -> None:
    """Note what a downloaded blob was verified to decompress to, for pulls waiting on it."""
    (store.root / "locks" / f"{digest.hex}.diffid").write_text(f"{diff_id} {size}")


def _verified_diff_id(store: BlobStore, digest: Digest) -> tuple[Digest, int] | None:
    if not store.exists(digest):
        return None
    try:
        text, size = (store.root / "locks" / f"{digest.hex}.diffid").read_text().split()
        return Digest.parse(text), int(size)
    except (FileNotFoundError, ValueError, InvalidDigest):
        return None


class _Puller:
    def __init__(self, client: RegistryClient, ref: Reference, platform: Platform, progress: Progress,
                 store: BlobStore, pins: Pins) -> None:
        self.client = client
        self.ref = ref
        self.repository = ref.path
        self.platform = platform
        self.progress = progress
        self.store = store
        self.pins = pins
        self.existing: set[str] = set()  # items reported "Already exists"
        # The manifest bytes as the registry sent them (an index first, then the platform's
        # manifest), kept so /v2/ serves the same digests (services.registry_serve).
        self.documents: list[ManifestBytes] = []

    def manifest(self) -> tuple[dict[str, Any], Digest]:
        reference = str(self.ref.digest) if self.ref.digest else str(self.ref.tag)
        data, media_type, digest = retry(lambda: self.client.get_manifest(self.repository, reference))
        document = _json(data, "manifest")
        self.documents.append(ManifestBytes(data, str(document.get("mediaType") or media_type), digest))
        if media_type in (mediatypes.OCI_INDEX, mediatypes.DOCKER_MANIFEST_LIST) or "manifests" in document:
            chosen = _pick(document.get("manifests") or [], self.platform)
            child = str(chosen.get("digest"))
            data, media_type, child_digest = retry(lambda: self.client.get_manifest(self.repository, child))
            document = _json(data, "manifest")
            self.documents.append(ManifestBytes(data, str(document.get("mediaType") or media_type), child_digest))
        if document.get("schemaVersion") != 2 or not isinstance(document.get("config"), dict):
            raise BadRequest(gettext("%(ref)s: unsupported manifest (schema 1 and others are not pulled)")
                             % {"ref": self.ref.familiar})
        return document, digest

    def config(self, descriptor: dict[str, Any]) -> tuple[bytes, ImageConfig]:
        digest = _digest(descriptor)
        size = _size(descriptor)
        if size > MAX_CONFIG:  # configs are small; held to the manifests' limit
            raise BadRequest(gettext("image config %(digest)s is larger than %(value)s MiB (%(size)s bytes "
                                     "declared)") % {"digest": digest, "value": MAX_CONFIG >> 20, "size": size})
        if self.store.exists(digest) and self.pins.take(digest):
            data = self.store.read_bytes(digest)
        else:
            response = retry(lambda: self.client.blob(self.repository, digest))
            # Never more than the descriptor declares (the digest check then says if it is the right bytes).
            data = read_capped(response, size, f"image config {digest} ({size} bytes declared)")
            with self.store.writer() as writer:
                writer.write(data)
                writer.commit(digest, pins=self.pins)
        try:
            return data, ImageConfig.parse(data)
        except InvalidConfig as exc:
            raise BadRequest(gettext("%(ref)s: %(exc)s") % {"ref": self.ref.familiar, "exc": exc}) from None

    def _already_exists(self, item: str, size: int) -> None:
        self.existing.add(item)
        self.progress.update(item, size, size, "Already exists")

    def layer(self, descriptor: dict[str, Any], diff_id: Digest, known: Layer | None) -> LayerRecord:
        digest = _digest(descriptor)
        item = digest.short
        media_type = str(descriptor.get("mediaType") or mediatypes.OCI_LAYER_GZIP)
        if media_type not in LAYER_TYPES:
            raise BadRequest(gettext("layer %(digest)s has unsupported media type %(media_type)s")
                             % {"digest": digest, "media_type": media_type})
        size = _size(descriptor)
        if known is not None and self.pins.take(known.digest):
            self._already_exists(item, size)
            return LayerRecord(known.diff_id, known.digest, known.media_type, known.size, known.uncompressed_size)
        with _digest_lock(self.store, digest):
            row = Layer.objects.filter(diff_id=str(diff_id)).first()
            if row is not None and self.pins.take(row.digest):  # another pull registered it meanwhile
                self._already_exists(item, size)
                return LayerRecord(row.diff_id, row.digest, row.media_type, row.size, row.uncompressed_size)
            verified = _verified_diff_id(self.store, digest)
            if verified is not None and verified[0] == diff_id and self.pins.take(digest):
                # Another pull downloaded and verified it, and has not registered it yet.
                self._already_exists(item, size)
                return LayerRecord(str(diff_id), str(digest), _normalise(media_type), size, verified[1])
            uncompressed = self._download(digest, size, diff_id, item)
            _record_diff_id(self.store, digest, diff_id, uncompressed)
        self.progress.update(item, size, size, "Download complete")
        return LayerRecord(str(diff_id), str(digest), _normalise(media_type), size, uncompressed)

    def _download(self, digest: Digest, size: int, diff_id: Digest, item: str) -> int:
        """Stream one blob into the store, resuming with Range after a broken connection."""
        for _fresh_start in range(2):  # once more from byte 0 if the registry cannot resume
            indexer = layerindex.new_indexer()  # the layer is indexed as it is verified: one pass
            hasher = DiffIdHasher(max_output=settings.IMAGESTORE_MAX_LAYER_SIZE, indexer=indexer)
            with self.store.writer() as writer, _closing(hasher):
                done = failures = 0
                restart = False
                while True:
                    try:
                        response = retry(lambda: self.client.blob(self.repository, digest, offset=done))  # noqa: B023
                        if done and response.status_code != 206:
                            response.close()
                            restart = True  # the registry ignored Range: start over
                            break
                        # Modest reads: what arrived before a cut is kept, and resumed from. Never
                        # past the declared size: a registry sending more fails the layer.
                        while chunk := response.raw.read(min(READ_SIZE, size - done + 1)):
                            if done + len(chunk) > size:
                                response.close()
                                raise BadRequest(gettext("layer %(digest)s: the registry sent more than the "
                                                         "%(size)s bytes its descriptor declares; nothing was kept")
                                                 % {"digest": digest, "size": size})
                            if hasher.over_limit:  # a compression bomb: no need to download the rest
                                response.close()
                                raise SizeLimitExceeded(
                                    gettext("layer %(digest)s: %(error)s (IMAGESTORE_MAX_LAYER_SIZE); nothing was "
                                            "kept") % {"digest": digest, "error": hasher.error},
                                    settings.IMAGESTORE_MAX_LAYER_SIZE)
                            writer.write(chunk)
                            hasher.feed(chunk)
                            done += len(chunk)
                            self.progress.update(item, done, size, "Downloading")
                        if size and done < size:
                            raise _CutShort(f"{done} of {size} bytes")
                        break
                    except (requests.RequestException, urllib3.exceptions.HTTPError, _CutShort, RegistryError) as exc:
                        if isinstance(exc, RegistryError) and not exc.temporary:
                            raise
                        failures += 1
                        if failures > MAX_RESUMES:
                            raise RegistryError(gettext("blob %(digest)s: the download kept failing (%(exc)s)")
                                                % {"digest": digest, "exc": exc},
                                                temporary=True) from None
                        time.sleep(0.2 * failures)
                if restart:
                    continue
                self.progress.update(item, done, size, "Verifying Checksum")
                writer.commit(digest, pins=self.pins)  # DigestMismatch here stores nothing
                try:
                    actual_diff = hasher.finish(digest)
                except SizeLimitExceeded as exc:  # a compression bomb
                    self.store.delete(digest)
                    raise SizeLimitExceeded(gettext("layer %(digest)s: %(exc)s (IMAGESTORE_MAX_LAYER_SIZE)")
                                            % {"digest": digest, "exc": exc}, exc.limit) from None
                except (CorruptArchive, zlib.error) as exc:
                    self.store.delete(digest)
                    raise BadRequest(gettext("layer %(digest)s is not a valid compressed tar: %(exc)s")
                                     % {"digest": digest, "exc": exc}) from None
                if actual_diff != diff_id:
                    self.store.delete(digest)
                    raise DigestMismatch(str(diff_id), str(actual_diff), what=f"layer {digest} (diff_id)")
                layerindex.save(diff_id, indexer)
                return hasher.size
        raise RegistryError(gettext("blob %(digest)s: the registry cannot resume and the download kept failing")
                            % {"digest": digest},
                            temporary=True)


class _CutShort(Exception):
    """The connection ended cleanly before the blob's announced size."""


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        document = jsonbounds.loads(data, what=f"the registry's {what}")
    except (InvalidJSON, LimitExceeded) as exc:
        raise BadRequest(gettext("the registry sent an invalid %(what)s: %(exc)s")
                         % {"what": what, "exc": exc}) from None
    if not isinstance(document, dict):
        raise BadRequest(gettext("the registry sent an invalid %(what)s") % {"what": what})
    return document


def _size(descriptor: dict[str, Any]) -> int:
    """A descriptor's ``size``, which the OCI image spec requires: downloads stop there."""
    size = descriptor.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise BadRequest(gettext("the registry sent a descriptor without a valid size (%(value)s)")
                         % {"value": repr(str(size)[:40])})
    return size


def _digest(descriptor: dict[str, Any]) -> Digest:
    try:
        return Digest.parse(str(descriptor.get("digest")))
    except InvalidDigest as exc:
        raise BadRequest(gettext("the registry sent a descriptor with %(exc)s") % {"exc": exc}) from None


def _normalise(media_type: str) -> str:
    return {
        mediatypes.DOCKER_LAYER_GZIP: mediatypes.OCI_LAYER_GZIP,
        mediatypes.DOCKER_LAYER_TAR: mediatypes.OCI_LAYER_TAR,
    }.get(media_type, media_type)


def _up_to_date(ref: Reference, config_digest: Digest) -> Image | None:
    """The image the reference already names, when it is the one the registry now serves."""
    image = Image.objects.filter(pk=str(config_digest)).first()
    if image is None or not get_store().exists(image.id):
        return None
    if ref.tag and not Tag.objects.filter(repository__registry=ref.domain, repository__path=ref.path,
                                          name=ref.tag, image=image).exists():
        return None
    return image


def mark_pulled(image: Image, name: str) -> None:
    """A pull of ``image`` (as ``name``): its ``last_pulled_at`` and the audit trail's ``pull``
    event, in the caller's transaction. The registry API's manifest fetches call it too."""
    Image.objects.filter(pk=image.pk).update(last_pulled_at=timezone.now())
    audit.record("pull", object_id=image.id, names=[name], attributes={"name": name})


def pull_image(reference: str, *, platform: str | None = None, progress: Progress = NULL_PROGRESS,
               owner: Any = None, upstream: str | None = None) -> PullResult:
    """``upstream``: fetch from that URL instead (the /v2/ pull-through cache, REGISTRY_PROXY_REMOTE)."""
    with audit.action("pull", names=[reference]):
        return _pull(reference, platform, progress, owner, upstream)


def _pull(reference: str, platform: str | None, progress: Progress, owner: Any, upstream: str | None) -> PullResult:
    ref = parse_normalized(reference).with_default_tag()
    wanted = parse_platform(platform)
    errors = []
    for endpoint, is_mirror in endpoints_for(ref.domain, upstream=upstream):
        client = client_for(ref.domain, owner, endpoint)
        try:
            return _pull_from(client, ref, wanted, progress)
        except (RegistryError, OutboundRefused, ResponseTooLarge) as exc:  # a mirror failing is not the end
            if not is_mirror:
                raise
            errors.append(exc)
            progress.log(redact_text(f"mirror {redact_url(endpoint.base_url)} failed ({exc}); trying the next source"))
    raise RegistryError("; ".join(str(e) for e in errors))  # pragma: no cover - the host itself is last


def _pull_from(client: RegistryClient, ref: Reference, platform: Platform, progress: Progress) -> PullResult:
    store = get_store()
    name = ref.familiar
    progress.log(f"{ref.tag or ref.digest}: Pulling from {ref.path}")
    with store.pins() as pins:
        puller = _Puller(client, ref, platform, progress, store, pins)
        document, manifest_digest = puller.manifest()
        current = _up_to_date(ref, _digest(document["config"]))
        if current is not None:
            with transaction.atomic():
                repository = get_or_create_repository(ref)
                RepoDigest.objects.get_or_create(repository=repository, digest=str(manifest_digest), image=current)
                keep_manifests(repository, puller.documents, current, pins)
                mark_pulled(current, name)
                if ref.tag:
                    mark_current(current)
            progress.log(f"Digest: {manifest_digest}")
            status = f"Status: Image is up to date for {name}"
            progress.log(status)
            return PullResult(current, ref, manifest_digest, False, status)
        config_bytes, config = puller.config(document["config"])
        layers = document.get("layers") or []
        if len(layers) != len(config.diff_ids):
            raise BadRequest(gettext("%(name)s: the manifest lists %(layers)s layers, its config %(diff_ids)s")
                             % {"name": name, "layers": len(layers), "diff_ids": len(config.diff_ids)})
        known = {row.diff_id: row for row in Layer.objects.filter(diff_id__in=[str(d) for d in config.diff_ids])}
        for descriptor in layers:
            progress.update(_digest(descriptor).short, 0, _size(descriptor), "Waiting")
        with ThreadPoolExecutor(max_workers=settings.PULL_CONCURRENCY) as pool:
            futures = [
                pool.submit(_in_thread, puller.layer, descriptor, diff_id, known.get(str(diff_id)))
                for descriptor, diff_id in zip(layers, config.diff_ids, strict=True)
            ]
            records = [f.result() for f in futures]
        existed = Image.objects.filter(pk=str(config.digest)).exists()
        with transaction.atomic():
            image = register_pulled(ref, manifest_digest, config, records, pins, puller.documents)
            mark_pulled(image, name)
            if ref.tag:
                mark_current(image)  # what the registry serves for the tag now
        for descriptor in layers:
            size = _size(descriptor)
            item = _digest(descriptor).short
            if item not in puller.existing:
                progress.update(item, size, size, "Pull complete")
        progress.log(f"Digest: {manifest_digest}")
        # A tag that now names this image is news even when the image was here (docker says so too).
        fresh = bool(ref.tag) or not existed
        status = f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} for {name}"
        progress.log(status)
        return PullResult(image, ref, manifest_digest, fresh, status)


def register_pulled(ref: Reference, manifest_digest: Digest, config: ImageConfig, records: list[LayerRecord],
                    pins: Pins, documents: list[ManifestBytes]) -> Image:
    """Turn a manifest with its config and layers (all stored, verified) into the image, its tag,
    its RepoDigest and the manifests /v2/ serves, in one transaction: a pull and a push to this
    store's /v2/ (services.registry_serve) end here alike."""
    with transaction.atomic():
        image = register_image(config, records, pins=pins)
        if ref.tag:
            tag_image(image, ref)
        repository = get_or_create_repository(ref)
        RepoDigest.objects.get_or_create(repository=repository, digest=str(manifest_digest), image=image)
        keep_manifests(repository, documents, image, pins)
    return image


def _in_thread(fn: Any, *args: Any) -> Any:
    from django.db import connection

    try:
        return fn(*args)
    finally:
        connection.close()


def start_pull(reference: str, platform: str | None = None, owner: Any = None) -> Job:
    with about("reference"):
        ref = parse_normalized(reference).with_default_tag()  # a bad name is said now, not by the job
    parse_platform(platform)
    check_reachable(ref.domain)  # and a registry the outbound policy refuses
    return create_job(Job.Kind.PULL, {"reference": ref.familiar, "platform": platform or ""}, owner=owner)


@handler(Job.Kind.PULL)
def run_pull_job(job: Job, progress: JobProgress) -> dict[str, Any]:
    result = pull_image(job.params["reference"], platform=job.params.get("platform") or None,
                        progress=progress, owner=job.owner)
    return {"image": result.image.id, "short_id": result.image.short_id, "digest": str(result.manifest_digest),
            "reference": result.reference.familiar, "status": result.status}

