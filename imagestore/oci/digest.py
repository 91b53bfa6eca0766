"""Content digests (https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .errors import InvalidDigest

# Registered algorithms and the length of their hex encoding.
_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_HEX_RE = re.compile(r"^[a-f0-9]+$")


@dataclass(frozen=True, order=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        return self.hex[:12]

    @classmethod
    def parse(cls, value: str) -> Digest:
        match = _DIGEST_RE.match(value)
        if not match:
            raise InvalidDigest(f"invalid digest format: {value!r}")
        algorithm, hexpart = match.groups()
        if algorithm not in _HEX_LENGTHS:
            raise InvalidDigest(f"unsupported digest algorithm: {algorithm!r}")
        if not _HEX_RE.match(hexpart):
            raise InvalidDigest(f"invalid digest: {value!r} is not lower-case hex")
        if len(hexpart) != _HEX_LENGTHS[algorithm]:
            raise InvalidDigest(f"invalid checksum digest length: {value!r}")
        return cls(algorithm, hexpart)

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)


def sha256_digest(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def is_hex_id(value: str) -> bool:
    """A full 64-hex image id, as ``docker`` accepts without its ``sha256:`` prefix."""
    return len(value) == 64 and bool(_HEX_RE.match(value))
