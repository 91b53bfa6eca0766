"""Image manifests and descriptors (https://github.com/opencontainers/image-spec/blob/main/manifest.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import mediatypes
from .config import encode
from .digest import Digest, sha256_digest


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = dict(self.platform)
        return out


def oci_manifest(config: Descriptor, layers: list[Descriptor]) -> bytes:
    return encode(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
    )


def descriptor_for(media_type: str, data: bytes, **kwargs: Any) -> Descriptor:
    return Descriptor(media_type, sha256_digest(data), len(data), **kwargs)
