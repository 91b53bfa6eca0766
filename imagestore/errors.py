"""Errors the services raise; every interface maps them to a status and a message.

The OCI layer's own errors (InvalidReference, CorruptArchive, ...) pass through
unchanged and are mapped the same way (see ``status_for``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.utils.translation import gettext

from .oci.errors import CorruptArchive, DigestMismatch, InvalidDigest, InvalidReference, OCIError, UnsafeArchive


class ServiceError(Exception):
    """An operation refused or failed for a reason a person can act on.

    The message is in the language of the request that caused it (``gettext`` with named
    placeholders where the error is raised: ``gettext("No such image: %(name)s") % {...}``), so
    the REST API's ``detail`` and the pages show it in Chinese when the request asks for it; a
    job's error is written by the worker, in English, as Docker's clients expect them.

    ``field`` names the input it is about (the service's parameter, which the API and the
    pages' forms name alike: ``reference``, ``platform``, ``repository``, ``registry``,
    ``password``...), or None when it is about the request as a whole. Forms put the message
    beside that field (ui.forms.add_service_error) instead of reading the message's words.
    """

    status = 500
    field: str | None = None

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        if field is not None:
            self.field = field


class NotFound(ServiceError):
    status = 404


class ImageNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(gettext("No such image: %(name)s") % {"name": name})
        self.name = name


class JobNotFound(NotFound):
    pass


class Forbidden(ServiceError):
    """The signed-in user may not do this (operators may)."""

    status = 403


class Conflict(ServiceError):
    status = 409


class BadRequest(ServiceError):
    status = 400


class AmbiguousImage(BadRequest):
    pass


class TooLarge(ServiceError, RequestDataTooBig):
    """An upload past IMAGESTORE_MAX_UPLOAD_SIZE (a SuspiciousOperation too, so a plain Django
    view that meets it answers 400 rather than 500 even where nothing maps it to 413)."""

    status = 413


class JobQueueUnavailable(ServiceError):
    """The job broker did not take a job's task: nothing was started, try again later."""

    status = 503


class JobCancelled(ServiceError):
    """Raised inside a running job when a person asked to cancel it."""

    status = 409


# What an operation raises for bad input or a refused action (as opposed to a bug):
# interfaces catch exactly these and show their message.
USER_ERRORS: tuple[type[Exception], ...] = (ServiceError, OCIError)
# ...and, from the command line, a file that cannot be read or written.
COMMAND_ERRORS: tuple[type[Exception], ...] = (*USER_ERRORS, OSError)


@contextmanager
def about(field: str) -> Iterator[None]:
    """Errors raised inside are about the input ``field``, unless they already name another:
    ``with about("reference"): parse_normalized(reference)`` marks the OCI layer's
    InvalidReference (whose messages know nothing of forms) as the reference's."""
    try:
        yield
    except USER_ERRORS as exc:
        if getattr(exc, "field", None) is None:
            exc.field = field  # type: ignore[attr-defined]
        raise


def user_message(exc: BaseException) -> str:
    """An error's message in the active language: the OCI layer's errors carry their English
    template and its parameters (``OCIError.of``), translated here; the services' are
    translated where they are raised."""
    template = getattr(exc, "template", None)
    if template:
        return gettext(template) % getattr(exc, "params", {})
    return str(exc)


def status_for(exc: BaseException) -> int | None:
    """The HTTP status an error means, or None for an unexpected one (a bug)."""
    if isinstance(exc, ServiceError):
        return exc.status
    if isinstance(exc, (InvalidReference, InvalidDigest, CorruptArchive, UnsafeArchive, DigestMismatch)):
        return 400
    if isinstance(exc, OCIError):
        return 400
    # Django's refusals of a request it will not parse (too many fields, a body over
    # DATA_UPLOAD_MAX_MEMORY_SIZE, a malformed multipart), as Django itself answers them.
    if isinstance(exc, RequestDataTooBig):
        return 413
    if isinstance(exc, SuspiciousOperation):
        return 400
    return None
