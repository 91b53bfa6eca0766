"""This store served as an OCI Distribution registry at /v2/ (the interface: imagestore.registryapi).

Names: a /v2/ name (``team/app``) is first this registry's own repository (registry = the host
clients name this dashboard by, REGISTRY_NAME or the request's Host: what ``docker push
HOST:PORT/team/app`` leaves on a Docker host), then Docker Hub's (``library/centos``, the name
a ``registry-mirrors`` client sends), then ``host/path`` for other registries
(``quay.io/org/app``): every image in the store can be pulled by its names.

Pushes: blobs stream into the blob store's temporary files (``tmp/upload-*``), hashed on the way,
and get their final name only when the digest the client names matches; an interrupted upload
leaves its temporary file, which housekeeping removes after GC_GRACE_SECONDS. A pushed image
manifest becomes an Image like a pulled one (services.pull.register_pulled: image id = config
digest, its Tag and RepoDigest); indexes and artifacts are Manifest rows (with ManifestTag).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from ..blobs import BlobStore, get_store, mark_in_use
from ..errors import Conflict, ServiceError
from ..models import Image, ImageLayer, Layer, Manifest, ManifestTag, RepoDigest, Repository, Tag
from ..oci import distribution as spec
from ..oci import mediatypes
from ..oci.config import ImageConfig, InvalidConfig
from ..oci.diffid import DiffIdHasher
from ..oci.digest import Digest, sha256_digest
from ..oci.errors import CorruptArchive, OCIError
from ..oci.layerindex import TarIndexer
from ..oci.reference import DEFAULT_DOMAIN, Reference
from . import audit, layerindex
from .layout import image_manifest
from .manifests import ManifestBytes, keep_manifests
from .pull import _normalise, _record_diff_id, _verified_diff_id, register_pulled
from .store import LayerRecord

READ_SIZE = 1 << 20
UPLOAD_PREFIX = "upload-"


# --- names ----------------------------------------------------------------------------------------

def local_registry(host: str) -> str:
    """The registry name this dashboard's own repositories carry."""
    return settings.REGISTRY_NAME or host


def _candidates(name: str, host: str) -> list[tuple[str, str]]:
    out = [(local_registry(host), name), (DEFAULT_DOMAIN, name)]
    if "/" not in name:
        out.append((DEFAULT_DOMAIN, f"library/{name}"))
    first, _, rest = name.partition("/")
    if rest and ("." in first or first == "localhost"):
        out.append((first, rest))
    return out


def find_repository(name: str, host: str) -> Repository | None:
    candidates = _candidates(name, host)
    condition = Q()
    for registry, path in candidates:
        condition |= Q(registry=registry, path=path)
    found = {(r.registry, r.path): r for r in Repository.objects.filter(condition)}
    for key in candidates:
        if key in found:
            return found[key]
    return None


def v2_name(repository: Repository, host: str) -> str | None:
    """The /v2/ name that reaches ``repository`` here (None when another repository shadows it)."""
    if repository.registry == local_registry(host):
        return repository.path
    if repository.registry == DEFAULT_DOMAIN:
        name = repository.path
    else:
        name = f"{repository.registry}/{repository.path}"
        if not spec.NAME_RE.match(name):
            return None
    found = find_repository(name, host)
    return name if found is None or found.pk == repository.pk else None


def repository_for_push(name: str, host: str) -> Repository:
    repository, _ = Repository.objects.get_or_create(registry=local_registry(host), path=name)
    return repository


# --- blobs ----------------------------------------------------------------------------------------

@dataclass
class Blob:
    path: Path
    size: int
    digest: Digest


def blob_in_repository(repository: Repository, digest: str) -> bool:
    """Whether a repository's images, manifests or artifacts use this blob."""
    return (Manifest.objects.filter(repository=repository).filter(
                Q(digest=digest) | Q(image_id=digest) | Q(image__image_layers__layer__digest=digest)).exists()
            or Tag.objects.filter(repository=repository).filter(
                Q(image_id=digest) | Q(image__image_layers__layer__digest=digest)).exists()
            or any(digest in (blobs or []) for blobs in Manifest.objects.filter(
                repository=repository, image__isnull=True).values_list("blobs", flat=True)))


def get_blob(digest_text: str, *, repository: Repository | None = None, scoped: bool = False) -> Blob:
    """A stored blob; with ``scoped`` (anonymous readers of a public repository), only one the
    repository uses. Signed-in users may pull every repository, so a blob by digest is theirs."""
    digest = spec.parse_digest(digest_text)
    store = get_store()
    path = store.path(digest)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise spec.BlobUnknown(f"blob {digest} is unknown to this registry", detail={"digest": str(digest)}) from None
    if scoped and (repository is None or not blob_in_repository(repository, str(digest))):
        raise spec.BlobUnknown(f"blob {digest} is unknown to this repository", detail={"digest": str(digest)})
    return Blob(path, size, digest)


# --- uploads --------------------------------------------------------------------------------------

class _Session:
    """What this process knows of an upload it is receiving: the sha256 (and diff_id) so far."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.offset = 0
        # Every blob might be a layer: its diff_id and index are made as it arrives (one pass),
        # kept only when it turns out to be a tar (services.layerindex).
        self.indexer: TarIndexer | None = layerindex.new_indexer()
        self.diff: DiffIdHasher | None = DiffIdHasher(max_output=settings.IMAGESTORE_MAX_LAYER_SIZE,
                                                      indexer=self.indexer)
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {}  # the last checkpoint (see _checkpoint)


_sessions: dict[str, _Session] = {}
_sessions_lock = threading.Lock()


def _upload_path(store: BlobStore, name: str, upload_id: str) -> Path:
    try:
        uuid.UUID(hex=upload_id)
    except ValueError:
        raise spec.BlobUploadUnknown("unknown upload") from None
    owner = hashlib.sha256(name.encode()).hexdigest()[:16]  # an upload belongs to its repository
    return store.tmp_dir / f"{UPLOAD_PREFIX}{uuid.UUID(hex=upload_id).hex}-{owner}"


def start_upload(name: str) -> str:
    store = get_store()
    upload_id = uuid.uuid4().hex
    path = _upload_path(store, name, upload_id)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    return upload_id


def upload_offset(name: str, upload_id: str) -> int:
    try:
        return _upload_path(get_store(), name, upload_id).stat().st_size
    except FileNotFoundError:
        raise spec.BlobUploadUnknown("unknown upload, or it was cancelled or finished") from None


def _session_for(upload_id: str, offset: int) -> _Session | None:
    with _sessions_lock:
        session = _sessions.get(upload_id)
        if session is None and offset == 0:
            session = _sessions[upload_id] = _Session()
    if session is not None and session.offset != offset:
        return None  # another process took part of it: hash from the file at the end
    return session


def _forget(upload_id: str) -> None:
    with _sessions_lock:
        session = _sessions.pop(upload_id, None)
    if session is not None and session.diff is not None:
        session.diff.close()


def append(name: str, upload_id: str, stream: BinaryIO, *, start: int | None = None,
           length: int | None = None) -> int:
    """Stream a chunk onto the upload (``start``: its Content-Range start, which must be where the
    upload stands); returns the new size. Nothing is held in memory beyond one read."""
    store = get_store()
    path = _upload_path(store, name, upload_id)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        raise spec.BlobUploadUnknown("unknown upload, or it was cancelled or finished") from None
    limit = settings.IMAGESTORE_MAX_UPLOAD_SIZE
    with os.fdopen(fd, "ab") as out:
        mark_in_use(out.fileno())  # housekeeping leaves it while we write
        offset = os.fstat(out.fileno()).st_size
        if start is not None and start != offset:
            raise spec.RangeInvalid(f"the chunk starts at {start}, the upload is at {offset}",
                                   detail={"offset": offset})
        if length is not None and offset + length > limit:
            raise spec.SizeInvalid(f"the upload would be larger than {limit} bytes (IMAGESTORE_MAX_UPLOAD_SIZE)",
                                   status=413)
        session = _session_for(upload_id, offset)
        if session is not None and not session.lock.acquire(blocking=False):
            session = None
        try:
            received = 0
            while True:
                want = READ_SIZE if length is None else min(READ_SIZE, length - received)
                if want <= 0:
                    break
                chunk = stream.read(want)
                if not chunk:
                    break
                if offset + received + len(chunk) > limit:
                    raise spec.SizeInvalid(f"the upload is larger than {limit} bytes (IMAGESTORE_MAX_UPLOAD_SIZE)",
                                           status=413)
                out.write(chunk)
                received += len(chunk)
                if session is not None:
                    session.sha.update(chunk)
                    if session.diff is not None:
                        session.diff.feed(chunk)
            out.flush()
            if length is not None and received != length:
                raise spec.SizeInvalid(f"the chunk ended after {received} of {length} bytes")
            if session is not None:
                session.offset = offset + received
                _checkpoint(path, session)
        except BaseException:
            if session is not None:
                _forget(upload_id)  # what was written stays; the digest is taken from the file
            raise
        finally:
            if session is not None and session.lock.locked():
                session.lock.release()
        return offset + received


def _state_path(path: Path) -> Path:
    return path.with_name(path.name + ".state")


def _checkpoint(path: Path, session: _Session) -> None:
    """What this process knows of the upload after a chunk, on disk: the final PUT often comes to
    another web process (clients open new connections), which then needs neither to hash the
    blob again nor to decompress it. The diff_id is finished here (a later chunk in this process
    carries on with the sha256 only; the manifest then reads such a blob once)."""
    state: dict[str, Any] = {"offset": session.offset, "sha256": session.sha.hexdigest()}
    if session.diff is not None:
        try:
            diff_id = session.diff.finish(Digest("sha256", state["sha256"]))
            state.update(diff_id=str(diff_id), diff_size=session.diff.size)
            _save_index(diff_id, session.indexer)
        except (OCIError, ValueError, EOFError):
            pass  # not a layer (or not one we can read): checked at the manifest
        session.diff = None
        session.indexer = None
    session.state = state
    tmp = path.with_name(path.name + ".state-new")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, _state_path(path))


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(_state_path(path).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _file_digest(path: Path) -> Digest:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(READ_SIZE):
            sha.update(chunk)
    return Digest("sha256", sha.hexdigest())


def finish_upload(name: str, upload_id: str, digest_text: str, stream: BinaryIO | None = None,
                  length: int | None = None) -> Digest:
    """The final PUT: the last chunk (if any), then the digest check; the blob gets its name."""
    expected = spec.parse_digest(digest_text)
    if stream is not None and length != 0:
        append(name, upload_id, stream, length=length)
    store = get_store()
    path = _upload_path(store, name, upload_id)
    if not path.exists():
        raise spec.BlobUploadUnknown("unknown upload, or it was cancelled or finished")
    size = path.stat().st_size
    with _sessions_lock:
        session = _sessions.pop(upload_id, None)
    if session is not None and session.diff is not None:
        session.diff.close()
    state = session.state if session is not None and session.offset == size else _read_state(path)
    diff_id: tuple[Digest, int] | None = None
    if state.get("offset") == size and state.get("sha256"):
        actual = Digest("sha256", str(state["sha256"]))
        if state.get("diff_id"):
            diff_id = (Digest.parse(str(state["diff_id"])), int(state["diff_size"]))
    else:
        actual = _file_digest(path)
    _state_path(path).unlink(missing_ok=True)
    if actual != expected:
        path.unlink(missing_ok=True)
        raise spec.DigestInvalid(f"the upload's bytes hash to {actual}, not {expected}",
                                 detail={"expected": str(expected), "actual": str(actual)})
    final = store.path(actual)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, final)  # verified: the same bytes whether or not the store had them
    if diff_id is not None:
        (store.root / "locks").mkdir(exist_ok=True)
        _record_diff_id(store, actual, diff_id[0], diff_id[1])
    return actual


def _save_index(diff_id: Digest, indexer: TarIndexer | None) -> None:
    """Keep a blob's index when it was a tar (a config or an artifact is not: nothing kept, nothing said)."""
    if indexer is None or layerindex.has_index(diff_id):
        return
    try:
        result = indexer.result()
    except CorruptArchive:
        return
    layerindex.save(diff_id, result)


def cancel_upload(name: str, upload_id: str) -> None:
    path = _upload_path(get_store(), name, upload_id)
    _forget(upload_id)
    _state_path(path).unlink(missing_ok=True)
    try:
        path.unlink()
    except FileNotFoundError:
        raise spec.BlobUploadUnknown("unknown upload, or it was cancelled or finished") from None


def monolithic_upload(name: str, digest_text: str, stream: BinaryIO, length: int | None) -> Digest:
    upload_id = start_upload(name)
    try:
        return finish_upload(name, upload_id, digest_text, stream, length)
    finally:
        path = _upload_path(get_store(), name, upload_id)
        path.unlink(missing_ok=True)
        _state_path(path).unlink(missing_ok=True)
        _forget(upload_id)


def mount_blob(digest_text: str, source: Repository | None, *, scoped: bool) -> Digest | None:
    """A cross-repository mount: the blob is in the store already (stored once), so mounting is
    saying yes. None when the source does not have it (the client then uploads)."""
    try:
        return get_blob(digest_text, repository=source, scoped=scoped).digest
    except spec.BlobUnknown:
        return None


# --- manifests: reading ---------------------------------------------------------------------------

@dataclass
class ServedManifest:
    data: bytes
    media_type: str
    digest: Digest


def _kept(row: Manifest) -> ServedManifest | None:
    try:
        data = get_store().read_bytes(row.digest)
    except FileNotFoundError:
        return None
    return ServedManifest(data, row.media_type, Digest.parse(row.digest))


def _descriptors(image: Image) -> tuple[spec.Descriptor, list[spec.Descriptor], list[ImageLayer]]:
    links = list(ImageLayer.objects.filter(image=image).select_related("layer").order_by("position"))
    config = spec.Descriptor(mediatypes.OCI_CONFIG, Digest.parse(image.id), image.config_size)
    layers = [spec.Descriptor(link.layer.media_type, Digest.parse(link.layer.digest), link.layer.size)
              for link in links]
    return config, layers, links


def _built(repository: Repository, image: Image, accepted: list[str]) -> ServedManifest:
    """The manifest push builds for an image that came with none (imported, loaded, committed),
    kept, so asking by its digest later gets the same bytes."""
    config, layers, links = _descriptors(image)
    if not spec.acceptable(mediatypes.OCI_MANIFEST, accepted) and spec.acceptable(mediatypes.DOCKER_MANIFEST,
                                                                                  accepted) \
            and spec.has_docker_form(layers):
        data, media_type = spec.docker_manifest(config, layers), mediatypes.DOCKER_MANIFEST
    else:
        data, media_type = image_manifest(image, links), mediatypes.OCI_MANIFEST
    digest = sha256_digest(data)
    store = get_store()
    with store.pins() as pins, transaction.atomic():
        if Image.objects.filter(pk=image.pk).exists():
            keep_manifests(repository, [ManifestBytes(data, media_type, digest)], image, pins)
    return ServedManifest(data, media_type, digest)


def _for_image(repository: Repository, image: Image, accepted: list[str]) -> ServedManifest:
    """The manifest a tag naming ``image`` serves: the newest one kept for it here that the client
    accepts (what was pushed or pulled, byte for byte), else one built from the rows."""
    rows = list(Manifest.objects.filter(repository=repository, image=image))
    referenced = dict(RepoDigest.objects.filter(repository=repository, image=image)
                      .values_list("digest", "created_at"))
    # A RepoDigest names the top-level manifest (an index when one was pulled); newest first.
    rows.sort(key=lambda r: (r.digest in referenced, referenced.get(r.digest) or r.created_at, r.created_at),
              reverse=True)
    for row in rows:
        if spec.acceptable(row.media_type, accepted):
            served = _kept(row)
            if served is not None:
                return served
    return _built(repository, image, accepted)


def record_pull(repository: Repository, reference: str, served: ServedManifest) -> None:
    """A client fetched an image's manifest: a pull (``last_pulled_at``, the audit trail). An
    index or an artifact names no image here, so it is no image's pull."""
    from .pull import mark_pulled

    image_id = (Manifest.objects.filter(repository=repository, digest=str(served.digest))
                .values_list("image_id", flat=True).first())
    if image_id is None and not spec.is_digest(reference):
        image_id = Tag.objects.filter(repository=repository, name=reference).values_list("image_id", flat=True).first()
    image = Image.objects.filter(pk=image_id).first() if image_id else None
    if image is not None:
        name = f"{repository.name}@{reference}" if spec.is_digest(reference) else f"{repository.name}:{reference}"
        with transaction.atomic():
            mark_pulled(image, name)


def get_manifest(repository: Repository | None, reference: str, accepted: list[str]) -> ServedManifest:
    if repository is None:
        raise spec.NameUnknown("repository name not known to registry")
    if spec.is_digest(reference):
        digest = spec.parse_digest(reference)
        row = Manifest.objects.filter(repository=repository, digest=str(digest)).first()
        served = _kept(row) if row is not None else None
        if served is None:
            raise spec.ManifestUnknown(f"manifest {digest} is unknown to this repository",
                                       detail={"digest": str(digest)})
        return served  # by digest: exactly these bytes, whatever Accept says (the digest is the contract)
    spec.check_tag(reference)
    artifact = ManifestTag.objects.filter(repository=repository, name=reference).select_related("manifest").first()
    if artifact is not None:
        served = _kept(artifact.manifest)
        if served is not None:
            return served
    tag = Tag.objects.filter(repository=repository, name=reference).select_related("image").first()
    if tag is None:
        raise spec.ManifestUnknown(f"manifest tagged {reference} is unknown to this repository",
                                   detail={"tag": reference})
    return _for_image(repository, tag.image, accepted)


# --- the pull-through cache -----------------------------------------------------------------------

def proxied(name: str, repository: Repository | None) -> bool:
    """Whether a missing ``name`` is fetched from REGISTRY_PROXY_REMOTE: a Docker Hub name (no host
    in it) in one of REGISTRY_PROXY_NAMESPACES, not shadowed by a repository of this registry."""
    if not settings.REGISTRY_PROXY_REMOTE:
        return False
    if repository is not None and repository.registry != DEFAULT_DOMAIN:
        return False
    first, _, rest = name.partition("/")
    if "." in first or first == "localhost":
        return False
    namespace = first if rest else "library"
    allowed = settings.REGISTRY_PROXY_NAMESPACES
    return "*" in allowed or namespace in allowed


def pull_through(name: str, reference: str, host: str, user: Any) -> Repository | None:
    """Fetch ``name`` from the upstream with the pull service (its outbound policy, the user's
    Docker Hub login when the upstream is Docker Hub), store it, and return its repository."""
    from ..oci.registry import RegistryError
    from .pull import pull_image

    path = name if "/" in name else f"library/{name}"
    suffix = f"@{spec.parse_digest(reference)}" if spec.is_digest(reference) else f":{spec.check_tag(reference)}"
    try:
        pull_image(f"{DEFAULT_DOMAIN}/{path}{suffix}", owner=user if user is not None else None,
                   upstream=settings.REGISTRY_PROXY_REMOTE)
    except RegistryError as exc:
        if exc.status in (401, 403, 404):
            raise spec.ManifestUnknown(f"{name}:{reference} is not here, nor upstream ({exc})") from None
        raise spec.Unsupported(f"the upstream registry failed: {exc}", status=502) from None
    return find_repository(name, host)


# --- manifests: pushing ---------------------------------------------------------------------------

def _layer_record(store: BlobStore, descriptor: spec.Descriptor, diff_id: Digest,
                  known: dict[str, Layer]) -> LayerRecord:
    row = known.get(str(diff_id))
    if row is not None and row.digest == str(descriptor.digest):
        return LayerRecord(row.diff_id, row.digest, row.media_type, row.size, row.uncompressed_size)
    verified = _verified_diff_id(store, descriptor.digest)
    if verified is None or not layerindex.has_index(verified[0]):
        # Uploaded through another process (or mounted): read it once to learn what it holds.
        indexer = layerindex.new_indexer()
        hasher = DiffIdHasher(max_output=settings.IMAGESTORE_MAX_LAYER_SIZE, indexer=indexer)
        try:
            with store.open(descriptor.digest) as f:
                while chunk := f.read(READ_SIZE):
                    hasher.feed(chunk)
            verified = (hasher.finish(descriptor.digest), hasher.size)
        except (OCIError, ValueError, EOFError) as exc:
            raise spec.ManifestInvalid(f"layer {descriptor.digest} is not a readable layer: {exc}") from None
        finally:
            hasher.close()
        (store.root / "locks").mkdir(exist_ok=True)
        _record_diff_id(store, descriptor.digest, verified[0], verified[1])
        if verified[0] == diff_id:
            _save_index(diff_id, indexer)
    if verified[0] != diff_id:
        raise spec.ManifestInvalid(f"layer {descriptor.digest} holds {verified[0]}, its config says {diff_id}")
    if descriptor.media_type not in (mediatypes.OCI_LAYER_GZIP, mediatypes.OCI_LAYER_TAR, mediatypes.OCI_LAYER_ZSTD,
                                     mediatypes.DOCKER_LAYER_GZIP, mediatypes.DOCKER_LAYER_TAR):
        raise spec.ManifestInvalid(f"layer {descriptor.digest} has media type {descriptor.media_type[:100]}")
    return LayerRecord(str(diff_id), str(descriptor.digest), _normalise(descriptor.media_type), descriptor.size,
                       verified[1])


def _check_blobs(store: BlobStore, descriptors: list[spec.Descriptor]) -> None:
    for descriptor in descriptors:
        try:
            size = store.size(descriptor.digest)
        except FileNotFoundError:
            raise spec.ManifestBlobUnknown(f"blob {descriptor.digest} is unknown to this registry",
                                           detail={"digest": str(descriptor.digest)}) from None
        if size != descriptor.size:
            raise spec.ManifestInvalid(f"blob {descriptor.digest} holds {size} bytes, the manifest says "
                                       f"{descriptor.size}")


def put_manifest(name: str, host: str, reference: str, data: bytes, content_type: str) -> tuple[Digest, Manifest]:
    digest = sha256_digest(data)
    tag: str | None = None
    if spec.is_digest(reference):
        if spec.parse_digest(reference) != digest:
            raise spec.DigestInvalid(f"the manifest's bytes hash to {digest}, not {reference}",
                                     detail={"expected": reference, "actual": str(digest)})
    else:
        tag = spec.check_tag(reference)
    parsed = spec.parse_manifest(data, content_type)
    store = get_store()
    repository = repository_for_push(name, host)
    document = ManifestBytes(data, parsed.media_type, digest)
    if parsed.is_index:
        children = {d.digest for d in parsed.manifests}
        have = set(Manifest.objects.filter(repository=repository, digest__in=[str(c) for c in children])
                   .values_list("digest", flat=True))
        missing = [c for c in children if str(c) not in have and not store.exists(c)]
        if missing:
            raise spec.ManifestBlobUnknown(f"manifest {missing[0]} is unknown to this repository",
                                           detail={"digest": str(missing[0])})
        return digest, _keep_other(repository, document, tag, [str(c) for c in children])
    _check_blobs(store, parsed.blobs)
    if not parsed.is_image:
        return digest, _keep_other(repository, document, tag, [str(d.digest) for d in parsed.blobs])
    assert parsed.config is not None
    try:
        config = ImageConfig.parse(store.read_bytes(parsed.config.digest))
    except (InvalidConfig, OCIError) as exc:
        raise spec.ManifestInvalid(f"config {parsed.config.digest}: {exc}") from None
    if len(config.diff_ids) != len(parsed.layers):
        raise spec.ManifestInvalid(f"the manifest lists {len(parsed.layers)} layers, its config "
                                   f"{len(config.diff_ids)}")
    known = {row.diff_id: row for row in Layer.objects.filter(diff_id__in=[str(d) for d in config.diff_ids])}
    records = [_layer_record(store, descriptor, diff_id, known)
               for descriptor, diff_id in zip(parsed.layers, config.diff_ids, strict=True)]
    ref = Reference(repository.registry, repository.path, tag)
    with store.pins() as pins, transaction.atomic():
        if tag is not None:
            ManifestTag.objects.filter(repository=repository, name=tag).delete()  # the tag moves to an image
        image = register_pulled(ref, digest, config, records, pins, [document])
        row = Manifest.objects.get(repository=repository, digest=str(digest))
        pushed = ref.familiar if tag is not None else f"{ref.familiar}@{digest}"
        audit.record("push", object_id=image.id, names=[pushed], attributes={"name": pushed})
    del image
    return digest, row


def _keep_other(repository: Repository, document: ManifestBytes, tag: str | None, blobs: list[str]) -> Manifest:
    """An index or an artifact: its row (no image), its tag as a ManifestTag."""
    with get_store().pins() as pins, transaction.atomic():
        (row,) = keep_manifests(repository, [document], None, pins, blobs=blobs)
        if tag is not None:
            Tag.objects.filter(repository=repository, name=tag).delete()  # an image tag moves to this manifest
            ManifestTag.objects.update_or_create(repository=repository, name=tag, defaults={"manifest": row})
        pushed = f"{repository.name}:{tag}" if tag is not None else f"{repository.name}@{row.digest}"
        audit.record("push", object_type="manifest", object_id=row.digest, names=[pushed],
                     attributes={"name": pushed, "media_type": row.media_type, "artifact_type": row.artifact_type})
    return row


# --- discovery ------------------------------------------------------------------------------------

def _page(names: list[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    names = sorted(set(names))
    if last:
        names = [x for x in names if x > last]
    if n is not None and len(names) > n:
        return names[:n], True
    return names, False


def list_tags(repository: Repository | None, n: int | None, last: str | None) -> tuple[list[str], bool]:
    if repository is None:
        raise spec.NameUnknown("repository name not known to registry")
    names = list(Tag.objects.filter(repository=repository).values_list("name", flat=True))
    names += list(ManifestTag.objects.filter(repository=repository).values_list("name", flat=True))
    return _page(names, n, last)


def catalog(host: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
    repositories = Repository.objects.filter(Q(tags__isnull=False) | Q(manifests__isnull=False)).distinct()
    names = []
    local = local_registry(host)
    taken = {r.path for r in repositories if r.registry == local}
    for repository in repositories:
        if repository.registry == local:
            names.append(repository.path)
        elif repository.registry == DEFAULT_DOMAIN:
            if repository.path not in taken:
                names.append(repository.path)
        elif spec.NAME_RE.match(f"{repository.registry}/{repository.path}"):
            names.append(f"{repository.registry}/{repository.path}")
    return _page(names, n, last)


def referrers(repository: Repository | None, digest_text: str, artifact_type: str = "") -> dict[str, Any]:
    """The referrers API (spec "Listing Referrers"): an image index of the manifests whose
    ``subject`` is this digest; an unknown digest has none (200 and an empty list)."""
    digest = spec.parse_digest(digest_text)
    rows = (Manifest.objects.filter(repository=repository, subject=str(digest)) if repository
            else Manifest.objects.none())
    if artifact_type:
        rows = rows.filter(artifact_type=artifact_type)
    manifests = []
    for row in rows.order_by("created_at", "id"):
        entry: dict[str, Any] = {"mediaType": row.media_type, "digest": row.digest, "size": row.size}
        if row.artifact_type:
            entry["artifactType"] = row.artifact_type
        if row.annotations:
            entry["annotations"] = row.annotations
        manifests.append(entry)
    return {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": manifests}


# --- deleting -------------------------------------------------------------------------------------

def delete_manifest(repository: Repository | None, reference: str) -> None:
    """DELETE of a manifest (by digest: it, and the tags naming it) or of a tag, by the removal
    rules of ``docker rmi`` (services.remove): an image no name needs any more is deleted with
    the layers only it used; one a container uses keeps its rows (409)."""
    from .remove import remove_image

    if repository is None:
        raise spec.NameUnknown("repository name not known to registry")
    ref = Reference(repository.registry, repository.path)
    if spec.is_digest(reference):
        digest = spec.parse_digest(reference)
        row = Manifest.objects.filter(repository=repository, digest=str(digest)).first()
        if row is None:
            raise spec.ManifestUnknown(f"manifest {digest} is unknown to this repository")
        if row.image_id is None:
            with transaction.atomic():
                row.delete()  # its ManifestTags go with it; GC frees the bytes
                audit.record("delete", object_type="manifest", object_id=str(digest),
                             names=[f"{repository.name}@{digest}"])
            return
        names = [f"{ref.name}:{t}" for t in Tag.objects.filter(repository=repository, image_id=row.image_id)
                 .values_list("name", flat=True)]
        names += [f"{ref.name}@{d}" for d in RepoDigest.objects.filter(repository=repository, image_id=row.image_id)
                  .values_list("digest", flat=True)]
        if not names:
            row.delete()
        for name in names:
            _remove(remove_image, name)
        Manifest.objects.filter(repository=repository, digest=str(digest)).delete()
        return
    spec.check_tag(reference)
    with transaction.atomic():
        deleted, _ = ManifestTag.objects.filter(repository=repository, name=reference).delete()
        if deleted:
            audit.record("untag", object_type="manifest", names=[f"{repository.name}:{reference}"])
            return
    if not Tag.objects.filter(repository=repository, name=reference).exists():
        raise spec.ManifestUnknown(f"manifest tagged {reference} is unknown to this repository")
    _remove(remove_image, f"{ref.name}:{reference}")


def _remove(remove_image: Any, name: str) -> None:
    try:
        remove_image(name)
    except Conflict as exc:
        raise spec.Denied(str(exc), status=409) from None
    except ServiceError as exc:
        if exc.status == 404:
            return  # gone already (an earlier name took the image with it)
        raise


def iter_file(path: Path, start: int, length: int) -> Iterator[bytes]:
    """A byte range of a blob, streamed."""
    with open(path, "rb") as f:
        f.seek(start)
        left = length
        while left > 0:
            chunk = f.read(min(READ_SIZE, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


# --- the Repositories page ------------------------------------------------------------------------

@dataclass
class RepositoryRow:
    repository: Repository
    v2_name: str | None
    tags: list[str]
    pull_command: str
    pushers: list[str]  # users and groups granted push (operators always may)


def _v2_name(repository: Repository, local: str, shadowed: set[str]) -> str | None:
    """The name ``repository`` has at this dashboard's /v2/: its path when pushed here; a Docker
    Hub path unless a repository of ours by that path shadows it; ``registry/path`` for another
    registry's, when that is a valid /v2/ name; None otherwise."""
    if repository.registry == local:
        return repository.path
    if repository.registry == DEFAULT_DOMAIN:
        return None if repository.path in shadowed else repository.path
    candidate = f"{repository.registry}/{repository.path}"
    return candidate if spec.NAME_RE.match(candidate) else None


def repository_rows(host: str) -> list[RepositoryRow]:
    """Every repository with tags, with the ``docker pull`` command that reaches it through this
    dashboard's /v2/ and who may push to it. Four queries whatever the number of repositories."""
    repositories = list(Repository.objects.filter(Q(tags__isnull=False) | Q(manifest_tags__isnull=False))
                        .distinct().order_by("name"))
    tags: dict[int, list[str]] = {}
    for repository_id, tag in Tag.objects.filter(repository__in=repositories).values_list("repository_id", "name"):
        tags.setdefault(repository_id, []).append(tag)
    for repository_id, tag in ManifestTag.objects.filter(repository__in=repositories).values_list(
            "repository_id", "name"):
        tags.setdefault(repository_id, []).append(tag)
    from ..models import RepositoryGrant

    grants = list(RepositoryGrant.objects.filter(can_push=True).select_related("user", "group"))
    # Which /v2/ names are taken by this registry's own repositories (they shadow Docker Hub's).
    local = local_registry(host)
    own = {r.path for r in repositories if r.registry == local}
    rows = []
    for repository in repositories:
        name = _v2_name(repository, local, own)
        names = sorted(tags.get(repository.pk, []))
        tag = "latest" if "latest" in names else (names[0] if names else "latest")
        command = f"docker pull {host}/{name}:{tag}" if name else ""
        pushers = sorted({str(g.user or g.group) for g in grants if name and (
            g.path == name or (g.path.endswith("/*") and name.startswith(g.path[:-1])))})
        rows.append(RepositoryRow(repository, name, names, command, pushers))
    return rows


def pull_commands(image: Image, host: str) -> list[str]:
    """``docker pull`` commands that get ``image`` from this dashboard's /v2/, one per tag (two queries)."""
    tags = list(Tag.objects.filter(image=image).select_related("repository").order_by("repository__name", "name"))
    local = local_registry(host)
    shadowed = set(Repository.objects.filter(registry=local, path__in=[t.repository.path for t in tags
                                                                       if t.repository.registry == DEFAULT_DOMAIN])
                   .values_list("path", flat=True))
    out = []
    for tag in tags:
        name = _v2_name(tag.repository, local, shadowed)
        if name:
            out.append(f"docker pull {host}/{name}:{tag.name}")
    return out
