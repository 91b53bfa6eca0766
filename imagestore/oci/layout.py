"""OCI image layouts on disk (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import mediatypes
from .config import encode
from .digest import Digest
from .manifest import Descriptor

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
REF_NAME = "org.opencontainers.image.ref.name"


class LayoutWriter:
    """Writes blobs (hard-linked from the store when it can, else copied) and the index."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifests: list[Descriptor] = []

    def add_blob_file(self, digest: Digest, source: Path) -> None:
        target = self.blobs / digest.hex
        if target.exists():
            return
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)

    def add_blob_bytes(self, digest: Digest, data: bytes) -> None:
        target = self.blobs / digest.hex
        if not target.exists():
            target.write_bytes(data)

    def add_manifest(self, descriptor: Descriptor) -> None:
        self.manifests.append(descriptor)

    def finish(self) -> None:
        (self.root / "oci-layout").write_text(json.dumps(LAYOUT_VERSION))
        index = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": [d.to_json() for d in self.manifests],
        }
        (self.root / "index.json").write_bytes(encode(index))
