"""Is a newer image available? For every tag that came from a registry (it has a RepoDigest
there), the registry's manifest digest for that tag is asked with a HEAD, through the same
client a pull uses (logins, docker.io's mirrors, the outbound policy), and compared with the
digests the store recorded when it pulled: ``Image.update_available`` is true when a tag of the
image now names another manifest, false when every checked tag still names one of ours, null
when nothing could be checked (imported, loaded or committed images, a registry that did not
answer). Requests to one registry are spaced (``UPDATE_CHECK_SPACING``), across processes.

Run periodically by Celery beat (``UPDATE_CHECK_INTERVAL``), on demand by
``POST /api/v1/images/{ref}/check-update/``; a pull of the tag clears it (services.pull).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from ..models import Image, RepoDigest, Tag
from ..oci.outbound import OutboundRefused, ResponseTooLarge
from ..oci.reference import Reference
from ..oci.registry import RegistryError
from .registries import client_for, endpoints_for

log = logging.getLogger(__name__)

RATE_WAIT = 30.0  # at most this long waiting for a registry's turn, then that tag is skipped


@dataclass
class TagCheck:
    tag: str
    local: list[str]
    remote: str | None
    error: str = ""

    @property
    def newer(self) -> bool | None:
        if self.remote is None:
            return None
        return self.remote not in self.local


def _wait_turn(registry: str) -> bool:
    """One request to ``registry`` per UPDATE_CHECK_SPACING seconds (an atomic cache ``add``
    in Redis or memory: the first to add the key goes, the others wait)."""
    spacing = settings.UPDATE_CHECK_SPACING
    if spacing <= 0:
        return True
    deadline = time.monotonic() + RATE_WAIT
    key = f"imagestore:update-check:{registry}"
    while time.monotonic() < deadline:
        try:
            if cache.add(key, 1, timeout=spacing):
                return True
        except Exception:  # noqa: BLE001 - a cache down is not a reason to stop checking
            log.warning("update check: the cache does not answer; not spacing requests to %s", registry)
            return True
        time.sleep(min(0.1, spacing))
    return False


def _remote_digest(ref: Reference, owner: Any) -> str:
    errors = []
    for endpoint, is_mirror in endpoints_for(ref.domain):
        client = client_for(ref.domain, owner, endpoint)
        try:
            digest, _media_type, _size = client.head_manifest(ref.path, str(ref.tag))
            return str(digest)
        except (RegistryError, OutboundRefused, ResponseTooLarge) as exc:
            if not is_mirror:
                errors.append(str(exc))
                break
            errors.append(str(exc))
    raise RegistryError("; ".join(errors))


def _count(outcome: str) -> None:
    """``imagestore_update_checks_total{outcome=current|newer|error}`` (imagestore.metrics)."""
    from .. import metrics

    metrics.UPDATE_CHECKS.labels(outcome=outcome).inc()


def check_images(images: list[Image], owner: Any = None) -> dict[str, list[TagCheck]]:
    """Check every registry tag of these images; their update fields are saved. Returns the
    checks per image id (a tag whose registry failed has ``remote`` None and the error)."""
    ids = [image.id for image in images]
    tags = list(Tag.objects.filter(image_id__in=ids).select_related("repository"))
    local: dict[tuple[str, int], list[str]] = defaultdict(list)
    for row in RepoDigest.objects.filter(image_id__in=ids).values("image_id", "repository_id", "digest"):
        local[(row["image_id"], row["repository_id"])].append(row["digest"])
    checks: dict[str, list[TagCheck]] = {image_id: [] for image_id in ids}
    for tag in tags:
        digests = local.get((tag.image_id, tag.repository_id))
        if not digests:
            continue  # not pulled under this name: nothing to compare with
        ref = Reference(tag.repository.registry, tag.repository.path, tag=tag.name)
        check = TagCheck(f"{tag.repository.name}:{tag.name}", sorted(digests), None)
        if not _wait_turn(ref.domain):
            check.error = f"{ref.domain}: rate limited, not checked this time"
        else:
            try:
                check.remote = _remote_digest(ref, owner)
            except (RegistryError, OutboundRefused, ResponseTooLarge) as exc:
                check.error = str(exc)
        _count("error" if check.remote is None else "newer" if check.newer else "current")
        checks[tag.image_id].append(check)
    now = timezone.now()
    for image in images:
        verdicts = [c.newer for c in checks[image.id] if c.newer is not None]
        if not verdicts:
            continue  # nothing answered: what was known stays
        image.update_available = any(verdicts)
        image.update_checked_at = now
        Image.objects.filter(pk=image.pk).update(update_available=image.update_available, update_checked_at=now)
    return checks


def check_image(image: Image, owner: Any = None) -> dict[str, Any]:
    """``POST /api/v1/images/{ref}/check-update/``: check now, answer per tag."""
    checks = check_images([image], owner)[image.id]
    image.refresh_from_db(fields=["update_available", "update_checked_at"])
    return {
        "image": image.id,
        "update_available": image.update_available,
        "update_checked_at": image.update_checked_at,
        "tags": [{"tag": c.tag, "local": c.local, "remote": c.remote, "update_available": c.newer,
                  "error": c.error} for c in checks],
    }


def check_all() -> int:
    """Beat: every image with a tag pulled from a registry, oldest check first."""
    images = list(Image.objects.filter(tags__isnull=False, repo_digests__isnull=False).distinct()
                  .order_by("update_checked_at", "id"))
    check_images(images)
    return len(images)


def mark_current(image: Image) -> None:
    """A pull of a tag just made ``image`` what the registry serves for it."""
    now = timezone.now()
    Image.objects.filter(pk=image.pk).update(update_available=False, update_checked_at=now)
    image.update_available, image.update_checked_at = False, now
    # The image the tag named before (now untagged, if no other tag names it) has no update to get.
    Image.objects.filter(update_available__isnull=False, tags__isnull=True).update(update_available=None)


def distribution_info(name: str, owner: Any = None) -> dict[str, Any]:
    """Docker's ``GET /distribution/{name}/json``: the descriptor the registry serves for a
    name and the platforms it holds, asked through the same client as a pull."""
    from ..oci import jsonbounds
    from ..oci.outbound import read_capped
    from ..oci.reference import parse_normalized
    from ..oci.registry import MAX_CONFIG

    ref = parse_normalized(name).with_default_tag()
    reference = str(ref.digest) if ref.digest else str(ref.tag)
    _wait_turn(ref.domain)
    errors: list[str] = []
    for endpoint, is_mirror in endpoints_for(ref.domain):
        client = client_for(ref.domain, owner, endpoint)
        try:
            data, media_type, digest = client.get_manifest(ref.path, reference)
            document = jsonbounds.loads(data, what="the registry's manifest")
            platforms: list[dict[str, Any]] = []
            if isinstance(document, dict) and isinstance(document.get("manifests"), list):
                platforms = [dict(m.get("platform") or {}) for m in document["manifests"] if isinstance(m, dict)]
            elif isinstance(document, dict) and isinstance(document.get("config"), dict):
                response = client.blob(ref.path, str(document["config"].get("digest")))
                config = jsonbounds.loads(read_capped(response, MAX_CONFIG, "image config"), what="image config")
                if isinstance(config, dict):
                    platform = {"architecture": config.get("architecture", ""), "os": config.get("os", "")}
                    if config.get("variant"):
                        platform["variant"] = config["variant"]
                    platforms = [platform]
            return {"Descriptor": {"mediaType": media_type, "digest": str(digest), "size": len(data)},
                    "Platforms": platforms}
        except (RegistryError, OutboundRefused, ResponseTooLarge) as exc:
            errors.append(str(exc))
            if not is_mirror:
                break
    raise RegistryError("; ".join(errors))
