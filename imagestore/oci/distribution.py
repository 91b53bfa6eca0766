"""The OCI Distribution Spec v1.1 as a server speaks it: names, error codes, scopes, ranges,
manifest classification and Accept negotiation. No I/O, no Django.

Spec: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md
Token scopes: https://distribution.github.io/distribution/spec/auth/scope/
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import jsonbounds, mediatypes
from .config import encode
from .digest import Digest
from .errors import InvalidDigest, InvalidJSON, LimitExceeded, OCIError

# The spec's <name> and <reference> grammars ("Pulling manifests").
NAME_RE = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
NAME_MAX = 255
MAX_MANIFEST = jsonbounds.MAX_DOCUMENT  # 4 MiB, distribution's own limit

EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
IMAGE_CONFIGS = (mediatypes.OCI_CONFIG, mediatypes.DOCKER_CONFIG)
MANIFEST_TYPES = (mediatypes.OCI_MANIFEST, mediatypes.DOCKER_MANIFEST)
INDEX_TYPES = (mediatypes.OCI_INDEX, mediatypes.DOCKER_MANIFEST_LIST)
ALL_MANIFEST_TYPES = (*MANIFEST_TYPES, *INDEX_TYPES)


# --- errors ("Error Codes", spec section) --------------------------------------------------------

class DistributionError(OCIError):
    """One of the spec's error codes with the HTTP status it is sent with."""

    code = "UNSUPPORTED"
    status = 400

    def __init__(self, message: str = "", *, detail: Any = None, status: int | None = None) -> None:
        super().__init__(message or self.code.lower().replace("_", " "))
        self.message = message or self.code.lower().replace("_", " ")
        self.detail = detail
        if status is not None:
            self.status = status

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}


def _error(code: str, status: int) -> type[DistributionError]:
    name = "".join(part.capitalize() for part in code.split("_"))
    return type(name, (DistributionError,), {"code": code, "status": status})


BlobUnknown = _error("BLOB_UNKNOWN", 404)
BlobUploadInvalid = _error("BLOB_UPLOAD_INVALID", 400)
BlobUploadUnknown = _error("BLOB_UPLOAD_UNKNOWN", 404)
DigestInvalid = _error("DIGEST_INVALID", 400)
ManifestBlobUnknown = _error("MANIFEST_BLOB_UNKNOWN", 400)
ManifestInvalid = _error("MANIFEST_INVALID", 400)
ManifestUnknown = _error("MANIFEST_UNKNOWN", 404)
NameInvalid = _error("NAME_INVALID", 400)
NameUnknown = _error("NAME_UNKNOWN", 404)
SizeInvalid = _error("SIZE_INVALID", 400)
Unauthorized = _error("UNAUTHORIZED", 401)
Denied = _error("DENIED", 403)
Unsupported = _error("UNSUPPORTED", 405)
TooManyRequests = _error("TOOMANYREQUESTS", 429)
RangeInvalid = _error("BLOB_UPLOAD_INVALID", 416)


def check_name(name: str) -> str:
    if len(name) > NAME_MAX or not NAME_RE.match(name):
        raise NameInvalid(f"invalid repository name {name[:80]!r}", detail={"name": name[:NAME_MAX]})
    return name


def check_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise ManifestInvalid(f"invalid tag {tag[:80]!r}")
    return tag


def parse_digest(text: str, error: type[DistributionError] = DigestInvalid) -> Digest:
    try:
        digest = Digest.parse(text)
    except InvalidDigest as exc:
        raise error(str(exc)) from None
    if digest.algorithm != "sha256":  # the only algorithm the store keeps
        raise error(f"unsupported digest algorithm {digest.algorithm}")
    return digest


def is_digest(reference: str) -> bool:
    return ":" in reference


# --- scopes ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """``repository:team/app:pull,push`` (or ``registry:catalog:*``)."""

    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scope(text: str) -> Scope | None:
    """A scope from the token request; None for one this registry does not know."""
    # The name may hold a port-less host but never a colon; type and actions cannot either.
    type_, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not name or type_ not in ("repository", "registry"):
        return None
    wanted = frozenset(a for a in actions.split(",") if a)
    return Scope(type_, name, wanted)


# --- ranges ---------------------------------------------------------------------------------------

_CONTENT_RANGE_RE = re.compile(r"^(?:bytes )?(\d+)-(\d+)$")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_content_range(text: str) -> tuple[int, int]:
    """A chunk's ``Content-Range: <start>-<end>`` (inclusive), as the spec's chunked upload sends it."""
    match = _CONTENT_RANGE_RE.match(text.strip())
    if not match or int(match.group(2)) < int(match.group(1)):
        raise RangeInvalid(f"invalid Content-Range {text[:40]!r}")
    return int(match.group(1)), int(match.group(2))


def parse_range(text: str, size: int) -> tuple[int, int] | None:
    """A blob GET's ``Range: bytes=start-end`` as (start, end inclusive); None when the header
    cannot be satisfied (then 416), or names several ranges (then the whole blob is sent)."""
    match = _RANGE_RE.match(text.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    if not match.group(1):  # the last N bytes
        length = int(match.group(2))
        if length == 0:
            return None
        return max(size - length, 0), size - 1
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


# --- manifests ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: dict[str, Any] | None = None
    artifact_type: str = ""
    annotations: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedManifest:
    """A manifest a client pushed, checked against the image spec's required fields."""

    media_type: str
    document: dict[str, Any]
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str = ""

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def is_image(self) -> bool:
        """A container image (as opposed to an artifact): an image config and tar layers."""
        return self.config is not None and self.config.media_type in IMAGE_CONFIGS

    @property
    def blobs(self) -> list[Descriptor]:
        return ([self.config] if self.config else []) + list(self.layers)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} is not a descriptor")
    media_type = value.get("mediaType")
    size = value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where} has no mediaType")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestInvalid(f"{where} has no valid size")
    digest = parse_digest(str(value.get("digest")), ManifestInvalid)
    platform = value.get("platform")
    annotations = value.get("annotations")
    return Descriptor(media_type, digest, size, platform if isinstance(platform, dict) else None,
                      str(value.get("artifactType") or ""), annotations if isinstance(annotations, dict) else {})


def parse_manifest(data: bytes, content_type: str) -> ParsedManifest:
    """Check a pushed manifest: JSON within bounds, a known media type agreeing with the body's
    own ``mediaType``, and well-formed descriptors (image-spec manifest.md and image-index.md)."""
    if len(data) > MAX_MANIFEST:
        raise ManifestInvalid(f"the manifest is larger than {MAX_MANIFEST >> 20} MiB", status=413)
    try:
        document = jsonbounds.loads(data, what="the manifest")
    except (InvalidJSON, LimitExceeded) as exc:
        raise ManifestInvalid(str(exc)) from None
    if not isinstance(document, dict):
        raise ManifestInvalid("the manifest is not a JSON object")
    if document.get("schemaVersion") != 2:
        raise ManifestInvalid("only schemaVersion 2 manifests are accepted")
    declared = document.get("mediaType")
    content_type = content_type.split(";", 1)[0].strip()
    media_type = str(declared or content_type or "")
    if not media_type:
        media_type = mediatypes.OCI_INDEX if "manifests" in document else mediatypes.OCI_MANIFEST
    if media_type not in ALL_MANIFEST_TYPES:
        raise ManifestInvalid(f"unsupported manifest media type {media_type[:100]}")
    if declared and content_type and content_type in ALL_MANIFEST_TYPES and content_type != declared:
        raise ManifestInvalid(f"Content-Type {content_type} differs from the manifest's mediaType {declared}")
    subject = _descriptor(document["subject"], "subject") if document.get("subject") is not None else None
    artifact_type = document.get("artifactType") or ""
    if not isinstance(artifact_type, str):
        raise ManifestInvalid("artifactType is not a string")
    if media_type in INDEX_TYPES:
        children = document.get("manifests")
        if not isinstance(children, list):
            raise ManifestInvalid("an index needs a manifests list")
        manifests = tuple(_descriptor(child, f"manifests[{i}]") for i, child in enumerate(children))
        return ParsedManifest(media_type, document, manifests=manifests, subject=subject,
                              artifact_type=artifact_type)
    layers_value = document.get("layers")
    if not isinstance(layers_value, list):
        raise ManifestInvalid("a manifest needs a layers list")
    config = _descriptor(document.get("config"), "config")
    layers = tuple(_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers_value))
    if not artifact_type and config.media_type not in IMAGE_CONFIGS and config.media_type != EMPTY_CONFIG:
        artifact_type = config.media_type  # image-spec: the config's type is the artifact's then
    return ParsedManifest(media_type, document, config=config, layers=layers, subject=subject,
                          artifact_type=artifact_type)


# --- content negotiation --------------------------------------------------------------------------

def accepted_types(accept_headers: list[str]) -> list[str]:
    """The media types an ``Accept`` header (or several) names, in order, without parameters."""
    out: list[str] = []
    for header in accept_headers:
        for part in header.split(","):
            media_type = part.split(";", 1)[0].strip()
            if media_type:
                out.append(media_type)
    return out


def acceptable(media_type: str, accepted: list[str]) -> bool:
    """No Accept (or ``*/*``) takes anything; else the type must be named."""
    return not accepted or "*/*" in accepted or media_type in accepted


def docker_manifest(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """The Docker v2 schema 2 form of an image manifest (for clients that accept only it);
    built as distribution's schema2 package writes it. Layers in zstd have no Docker form."""
    docker_layer = {mediatypes.OCI_LAYER_GZIP: mediatypes.DOCKER_LAYER_GZIP,
                    mediatypes.OCI_LAYER_TAR: mediatypes.DOCKER_LAYER_TAR}
    return encode({
        "schemaVersion": 2,
        "mediaType": mediatypes.DOCKER_MANIFEST,
        "config": {"mediaType": mediatypes.DOCKER_CONFIG, "size": config.size, "digest": str(config.digest)},
        "layers": [{"mediaType": docker_layer.get(layer.media_type, layer.media_type), "size": layer.size,
                    "digest": str(layer.digest)} for layer in layers],
    })


def has_docker_form(layers: list[Descriptor]) -> bool:
    return all(layer.media_type in (mediatypes.OCI_LAYER_GZIP, mediatypes.OCI_LAYER_TAR,
                                    mediatypes.DOCKER_LAYER_GZIP, mediatypes.DOCKER_LAYER_TAR) for layer in layers)
