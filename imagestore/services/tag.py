"""``docker tag``: give an image another name, or move a name to it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from ..errors import BadRequest, ImageNotFound
from ..models import Image, Tag
from ..oci import reference
from . import audit
from .repositories import get_or_create_repository


def parse_target(target: str | reference.Reference) -> reference.Reference:
    """The ``repository[:tag]`` to create; ``latest`` when no tag is given, never a digest."""
    ref = reference.parse_normalized(target) if isinstance(target, str) else target
    if ref.digest is not None:
        raise BadRequest(gettext("refusing to create a tag with a digest reference: %(ref)s") % {"ref": ref.familiar})
    return ref.with_default_tag()


def tag_image(image: Image, target: str | reference.Reference) -> Tag:
    with audit.action("tag", object_id=image.id, names=[str(getattr(target, "familiar", target))]):
        return _tag(image, target)


def _tag(image: Image, target: str | reference.Reference) -> Tag:
    ref = parse_target(target)
    with transaction.atomic():
        # Lock the image row: a concurrent removal either finished (and we say so)
        # or waits for this tag and then sees it.
        if not Image.objects.select_for_update().filter(pk=image.pk).exists():
            raise ImageNotFound(image.id)
        repository = get_or_create_repository(ref)
        tag, _ = Tag.objects.update_or_create(
            repository=repository, name=ref.tag, defaults={"image": image}
        )
        Image.objects.filter(pk=image.pk).update(last_tag_time=timezone.now())
        audit.record("tag", object_id=image.id, names=[ref.familiar], attributes={"name": ref.familiar})
    return tag
