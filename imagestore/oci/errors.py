"""Typed errors of the OCI layer, each with a message a person can act on."""

from __future__ import annotations


class OCIError(Exception):
    """Base of every error raised by imagestore.oci."""


class InvalidReference(OCIError, ValueError):
    """A string is not a valid image reference (distribution's grammar)."""


class InvalidDigest(OCIError, ValueError):
    """A string is not a valid content digest (``algorithm:hex``)."""


class DigestMismatch(OCIError):
    """Bytes read do not hash to the digest they were announced with."""

    def __init__(self, expected: str, actual: str, what: str = "blob") -> None:
        super().__init__(f"{what} digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class UnsafeArchive(OCIError, ValueError):
    """A tar archive holds an entry that would escape its root, or exceeds a bound."""


class CorruptArchive(OCIError, ValueError):
    """An archive or compressed stream cannot be read (truncated, bad header, ...)."""
