"""Typed errors of the OCI layer, each with a message a person can act on."""

from __future__ import annotations


def gettext_noop(message: str) -> str:
    """Marks ``message`` for the translation catalogue (``manage.py makemessages`` finds this
    name) without translating it: this layer imports no Django. The interfaces show an error in
    the request's language through ``imagestore.errors.user_message``."""
    return message


class OCIError(Exception):
    """Base of every error raised by imagestore.oci.

    Raised through ``of(template, **params)``, an error keeps its English ``template``
    (marked with ``gettext_noop``) and ``params`` beside the message, for translation."""

    # The input it is about, when the caller knows (imagestore.errors.about); None here.
    field: str | None = None
    template: str | None = None
    params: dict[str, object] = {}  # noqa: RUF012 - replaced per instance by of(), never changed

    @classmethod
    def of(cls, template: str, **params: object) -> OCIError:
        error = cls(template % params)
        error.template, error.params = template, params
        return error


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


class LimitExceeded(UnsafeArchive):
    """Input goes past a bound (decompressed size, document size, JSON depth, layer count).

    The message names the limit; ``limit`` is its value, so a caller can say which setting it is.
    """

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class SizeLimitExceeded(LimitExceeded):
    """A stream holds more bytes than its cap: a layer decompressed, or an archive in all."""


class InvalidJSON(CorruptArchive):
    """A JSON document (from an archive, a registry or a request) does not parse."""


def human_size(n: int) -> str:
    """``8 MiB`` for messages naming a byte limit (exact binary units when they fit)."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"
