"""Image references, following distribution's reference grammar with no I/O.

Grammar: https://github.com/distribution/reference/blob/main/reference.go
Normalisation (docker.io, library/, latest): distribution/reference normalize.go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .digest import Digest
from .errors import InvalidDigest, InvalidReference, gettext_noop

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN_AND_PORT = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"

_REFERENCE_RE = re.compile(
    rf"^((?:{_DOMAIN_AND_PORT}/)?{_REMOTE_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$"
)
_ANCHORED_NAME_RE = re.compile(rf"^(?:({_DOMAIN_AND_PORT})/)?({_REMOTE_NAME})$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``domain`` is empty only for un-normalised parses."""

    domain: str
    path: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """The full repository name, ``docker.io/library/centos``."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def familiar_name(self) -> str:
        """The short name people type: ``centos``, ``user/app``, ``host:5000/app``."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_REPO_PREFIX) and self.path.count("/") == 1:
                return self.path[len(OFFICIAL_REPO_PREFIX):]
            return self.path
        return self.name

    def _suffix(self) -> str:
        out = ""
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    def __str__(self) -> str:
        return self.name + self._suffix()

    @property
    def familiar(self) -> str:
        return self.familiar_name + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.match(tag):
            raise InvalidReference.of(gettext_noop("invalid tag format: %(tag)s"), tag=repr(tag))
        return Reference(self.domain, self.path, tag, self.digest)

    def with_default_tag(self) -> Reference:
        """``docker pull centos`` means ``centos:latest`` (distribution's TagNameOnly)."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self


NO_COMPONENT = gettext_noop("invalid reference format: repository name must have at least one component")
NOT_LOWERCASE = gettext_noop("invalid reference format: repository name (%(name)s) must be lowercase")


def parse(value: str, shown: str | None = None) -> Reference:
    """Parse a reference as written, without defaults (distribution's ``Parse``).

    ``shown`` is what the person typed, named in errors instead of ``value``.
    """
    shown = value if shown is None else shown
    match = _REFERENCE_RE.match(value)
    if not match:
        if value == "":
            raise InvalidReference.of(NO_COMPONENT)
        if _REFERENCE_RE.match(value.lower()):
            raise InvalidReference.of(NOT_LOWERCASE, name=shown)
        raise InvalidReference.of(gettext_noop("invalid reference format: %(name)s"), name=repr(shown))
    name, tag, digest_text = match.groups()
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference.of(gettext_noop(
            "invalid reference format: repository name must not be more than %(limit)s characters"),
            limit=NAME_TOTAL_LENGTH_MAX)
    name_match = _ANCHORED_NAME_RE.match(name)
    assert name_match is not None  # the full pattern matched, so the name part does
    domain, path = name_match.group(1) or "", name_match.group(2)
    digest = None
    if digest_text:
        try:
            digest = Digest.parse(digest_text)
        except InvalidDigest as exc:
            raise InvalidReference.of(gettext_noop("invalid reference format: %(reason)s"), reason=str(exc)) from exc
    return Reference(domain, path, tag, digest)


def _split_docker_domain(value: str) -> tuple[str, str]:
    i = value.find("/")
    first = value[:i]
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, value
    else:
        domain, remainder = first, value[i + 1:]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse_normalized(value: str) -> Reference:
    """Parse what a person types (``centos``, ``host:5000/app:1``) into a full reference.

    Adds the ``docker.io`` domain and the ``library/`` prefix the way the docker
    CLI does; the tag stays unset (see ``with_default_tag``).
    """
    if not isinstance(value, str):
        raise InvalidReference.of(gettext_noop("invalid reference format: not a string"))
    if value == "":
        raise InvalidReference.of(NO_COMPONENT)
    if _IDENTIFIER_RE.match(value):
        raise InvalidReference.of(gettext_noop(
            "invalid repository name (%(name)s), cannot specify 64-byte hexadecimal strings"), name=value)
    domain, remainder = _split_docker_domain(value)
    remote = remainder.split(":", 1)[0].split("@", 1)[0]
    if remote.lower() != remote:
        raise InvalidReference.of(NOT_LOWERCASE, name=remote)
    ref = parse(f"{domain}/{remainder}", shown=value)
    if not ref.domain:
        raise InvalidReference.of(gettext_noop("invalid reference format: %(name)s"), name=repr(value))
    return ref


def parse_tagged(value: str) -> Reference:
    """A normalised reference with ``latest`` filled in when neither tag nor digest is given."""
    return parse_normalized(value).with_default_tag()
