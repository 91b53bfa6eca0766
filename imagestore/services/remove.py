"""``docker rmi`` with Docker's rules (moby daemon/images/image_delete.go).

- By name: untag; when that was the image's last reference, delete the image and
  the layers and blobs no other image uses.
- By id: when every reference is in one repository (at most one tag), untag them
  all and delete; tags in several repositories need ``force``.
- An image a stopped container uses needs ``force``; forced, its references go
  and the image stays, dangling, while the container needs it. A running
  container's image, or one with child images, is never deleted.
- Untagged parents are pruned unless ``noprune``.

Everything happens in one transaction holding the image and layer row locks that
tag and register_image also take, so a concurrent tag or pull ends consistent.
Blobs are deleted only after that transaction commits: a rollback keeps them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext

from ..blobs import get_store
from ..errors import USER_ERRORS, BadRequest, Conflict, ServiceError, status_for
from ..models import Container, Image, ImageLayer, Layer, Manifest, RepoDigest, Tag
from ..oci import reference
from ..oci.digest import Digest
from ..oci.errors import OCIError
from . import audit
from .gc import delete_blobs_on_commit
from .images import check_filter_names, label_conditions, resolve_image_and_reference, until_filter

Record = dict[str, str]


class _Removal:
    """What one removal did: Docker's records, and the bytes it freed on disk."""

    def __init__(self, dry_run: bool = False) -> None:
        self.records: list[Record] = []
        self.freed = 0
        self.dry_run = dry_run  # rows change inside a transaction rolled back; no blob is touched
        self.image_id = ""  # the image asked for
        self.deleted_images: list[str] = []

    def audit_events(self) -> list[tuple[str, dict[str, Any]]]:
        """Docker's ``untag`` and ``delete`` events for what this removal did."""
        events: list[tuple[str, dict[str, Any]]] = [
            ("untag", {"object_id": self.image_id, "names": [r["Untagged"]], "attributes": {"name": r["Untagged"]}})
            for r in self.records if "Untagged" in r
        ]
        events += [("delete", {"object_id": image_id, "attributes": {"name": image_id}})
                   for image_id in self.deleted_images]
        return events


class _Rollback(Exception):
    pass


@dataclass
class _DeleteConflict(Exception):
    image_id: str
    message: str
    hard: bool = False
    used: bool = False

    def error(self) -> Conflict:
        short = self.image_id.split(":", 1)[-1][:12]
        how = "cannot be forced" if self.hard else "must be forced"
        return Conflict(gettext("conflict: unable to delete %(short)s (%(how)s) - %(message)s")
                        % {"short": short, "how": how, "message": self.message})


def _references(image: Image) -> list[reference.Reference]:
    """The image's tags, then its digest references, as references."""
    refs = [
        reference.Reference(t.repository.registry, t.repository.path, tag=t.name)
        for t in Tag.objects.filter(image=image).select_related("repository").order_by("repository__name", "name")
    ]
    refs += [
        reference.Reference(d.repository.registry, d.repository.path, digest=Digest.parse(d.digest))
        for d in RepoDigest.objects.filter(image=image).select_related("repository").order_by("repository__name")
    ]
    return refs


def _remove_reference(ref: reference.Reference) -> None:
    if ref.digest is not None:
        RepoDigest.objects.filter(
            repository__registry=ref.domain, repository__path=ref.path, digest=str(ref.digest)
        ).delete()
        # The manifest /v2/ served under that digest goes with it (GC frees its bytes).
        Manifest.objects.filter(
            repository__registry=ref.domain, repository__path=ref.path, digest=str(ref.digest)
        ).delete()
    else:
        Tag.objects.filter(repository__registry=ref.domain, repository__path=ref.path, name=ref.tag).delete()


def _container_using(image: Image, running: bool | None) -> Container | None:
    qs = Container.objects.filter(image=image)
    if running is True:
        qs = qs.filter(state__in=[Container.State.RUNNING, Container.State.PAUSED, Container.State.RESTARTING])
    elif running is False:
        qs = qs.exclude(state__in=[Container.State.RUNNING, Container.State.PAUSED, Container.State.RESTARTING])
    return qs.order_by("created_at").first()


def _is_single_reference(refs: list[reference.Reference]) -> bool:
    tags = [r for r in refs if r.digest is None]
    return len(tags) <= 1 and len({r.name for r in refs}) <= 1


def remove_image(name: str, *, force: bool = False, noprune: bool = False) -> list[Record]:
    """Remove one image by name or id; the records say what was untagged and deleted."""
    with audit.action("delete", names=[name]):
        with transaction.atomic():  # the removal and its audit events together
            removal = _remove(name, force=force, noprune=noprune)
            audit.record_many(removal.audit_events())
        return removal.records


def remove_counted(name: str) -> _Removal:
    """``remove_image`` for a retention policy: what went, the images deleted and the bytes freed
    (the caller's transaction decides: inside one it rolls back, it is that policy's preview)."""
    with audit.action("delete", names=[name]), transaction.atomic():
        removal = _remove(name, force=False, noprune=False)
        audit.record_many(removal.audit_events())
    return removal


def preview_removal(name: str, *, force: bool = False, noprune: bool = False) -> list[Record]:
    """What ``remove_image`` would report, without removing anything (for a confirmation).
    Raises the same conflicts it would."""
    outcome: list[Record] = []
    try:
        with transaction.atomic():
            outcome = _remove(name, force=force, noprune=noprune, dry_run=True).records
            raise _Rollback
    except _Rollback:
        pass
    return outcome


def _remove(name: str, *, force: bool, noprune: bool, dry_run: bool = False) -> _Removal:
    removal = _Removal(dry_run)
    records = removal.records
    with transaction.atomic():
        image, ref = resolve_image_and_reference(name)
        image = Image.objects.select_for_update().get(pk=image.pk)
        removal.image_id = image.id
        refs = _references(image)
        removed_repository_ref = False
        if ref is not None:
            if ref.digest is not None:
                ref = reference.Reference(ref.domain, ref.path, digest=ref.digest)
            if not force and len(refs) == 1:
                container = _container_using(image, None)
                if container is not None:
                    raise Conflict(
                        gettext('conflict: unable to remove repository reference "%(ref)s" (must force) - '
                                "container %(container_short_id)s is using its referenced image %(image_short_id)s")
                        % {"ref": ref.familiar, "container_short_id": container.short_id,
                           "image_short_id": image.short_id}
                    )
            _remove_reference(ref)
            records.append({"Untagged": ref.familiar})
            refs = [r for r in refs if r != ref]
            if ref.digest is None and not any(r.digest is None and r.name == ref.name for r in refs):
                # The repository's last tag went: its digest references go with it.
                for other in [r for r in refs if r.digest is not None and r.name == ref.name]:
                    _remove_reference(other)
                    records.append({"Untagged": other.familiar})
                    refs.remove(other)
            if refs:
                return removal
            removed_repository_ref = True
        elif _is_single_reference(refs):
            if not force:
                try:
                    _check_conflicts(image, hard_only=False, ignore_references=True)
                except _DeleteConflict as conflict:
                    raise conflict.error() from None
            for other in refs:
                _remove_reference(other)
                records.append({"Untagged": other.familiar})
            refs = []
        try:
            _delete(image, removal, force=force, prune=not noprune)
        except _DeleteConflict as conflict:
            if removed_repository_ref and (conflict.used or not _is_dangling(image)):
                return removal  # untagging was what was asked; the image stays
            raise conflict.error() from None
    return removal


def _is_dangling(image: Image) -> bool:
    return not Tag.objects.filter(image=image).exists() and not RepoDigest.objects.filter(image=image).exists()


def _check_conflicts(image: Image, *, hard_only: bool, ignore_references: bool = False) -> None:
    if Image.objects.filter(parent=image).exists():
        raise _DeleteConflict(image.id, "image has dependent child images", hard=True)
    running = _container_using(image, True)
    if running is not None:
        raise _DeleteConflict(
            image.id, f"image is being used by running container {running.short_id}", hard=True, used=True
        )
    if hard_only:
        return
    if not ignore_references and not _is_dangling(image):
        raise _DeleteConflict(image.id, "image is referenced in multiple repositories")
    stopped = _container_using(image, False)
    if stopped is not None:
        raise _DeleteConflict(image.id, f"image is being used by stopped container {stopped.short_id}", used=True)


def _delete(image: Image, removal: _Removal, *, force: bool, prune: bool, quiet: bool = False) -> None:
    records = removal.records
    try:
        _check_conflicts(image, hard_only=force)
    except _DeleteConflict:
        if quiet:
            return
        raise
    for other in _references(image):
        _remove_reference(other)
        records.append({"Untagged": other.familiar})
    if Container.objects.filter(image=image).exists():
        # Forced past a stopped container: the image stays, dangling, while it is used.
        return
    parent_id = image.parent_id
    records.append({"Deleted": image.id})
    removal.deleted_images.append(image.id)
    chains, freed = _delete_image_rows(image, dry_run=removal.dry_run)
    records.extend({"Deleted": chain_id} for chain_id in chains)
    removal.freed += freed
    if prune and parent_id:
        parent = Image.objects.select_for_update().filter(pk=parent_id).first()
        if parent is not None and _is_dangling(parent):
            _delete(parent, removal, force=False, prune=True, quiet=True)


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Layer chain ids (https://github.com/opencontainers/image-spec/blob/main/config.md#layer-chainid)."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def _delete_image_rows(image: Image, *, dry_run: bool = False) -> tuple[list[str], int]:
    """Delete the image and the layers only it used; returns the chain ids removed and bytes freed."""
    links = list(ImageLayer.objects.filter(image=image).select_related("layer").order_by("position"))
    layer_ids = [link.layer_id for link in links]
    locked = {row.pk: row for row in Layer.objects.select_for_update().filter(pk__in=layer_ids)}
    shared = {
        row["layer"]
        for row in ImageLayer.objects.filter(layer__in=layer_ids)
        .exclude(image=image)
        .values("layer")
        .annotate(n=Count("id"))
    }
    chains = chain_ids([link.layer.diff_id for link in links])
    removed_chains = [chains[i] for i, link in enumerate(links) if link.layer_id not in shared]
    doomed = [locked[pk] for pk in dict.fromkeys(layer_ids) if pk not in shared and pk in locked]
    image_id = image.id
    image.delete()  # ImageLayer rows cascade
    Layer.objects.filter(pk__in=[row.pk for row in doomed]).delete()
    # Blobs go once this transaction commits (a rollback keeps them, with their rows),
    # and only those no row references then: see gc.delete_blobs_on_commit.
    store = get_store()
    still_used = set(Layer.objects.filter(digest__in=[row.digest for row in doomed]).values_list("digest", flat=True))
    freed = 0
    gone = []
    for row in doomed:
        if row.digest not in still_used and store.exists(row.digest):
            freed += row.size
            gone.append(row.digest)
    if store.exists(image_id):
        freed += image.config_size
        gone.append(image_id)
    if not dry_run:
        delete_blobs_on_commit(gone)
    return removed_chains, freed


def remove_images(names: list[str], *, force: bool = False, noprune: bool = False) -> list[dict[str, Any]]:
    """``docker rmi A B C``: each name's records or error; one failing does not stop the others."""
    results: list[dict[str, Any]] = []
    for name in names:
        try:
            results.append({"name": name, "records": remove_image(name, force=force, noprune=noprune)})
        except USER_ERRORS as exc:
            results.append({"name": name, "error": str(exc), "status": status_for(exc)})
    return results


PRUNE_FILTERS = {"dangling", "label", "label!", "until"}  # moby daemon/images/image_prune.go


def prune_options(given: dict[str, list[str]], now: datetime | None = None) -> dict[str, Any]:
    """``prune_images`` keywords from Docker's prune filters (``dangling``, ``until``,
    ``label``, ``label!``): an unknown filter or a bad value is a 400 with Docker's words."""
    check_filter_names(given, PRUNE_FILTERS)
    dangling = True
    for value in given.get("dangling", []):
        if value.lower() in ("true", "1"):
            dangling = True
        elif value.lower() in ("false", "0"):
            dangling = False
        else:
            raise BadRequest(gettext("invalid filter 'dangling=%(value)s'") % {"value": value}, field="filters")
    for label in given.get("label", []) + given.get("label!", []):
        if not label.partition("=")[0]:
            raise BadRequest(gettext("invalid filter 'label=%(label)s'") % {"label": label}, field="filters")
    return {"all": not dangling, "until": until_filter(given.get("until", []), now),
            "labels": list(given.get("label", [])), "not_labels": list(given.get("label!", []))}


def prune_images(*, all: bool = False, until: datetime | None = None, labels: list[str] | None = None,
                 not_labels: list[str] | None = None) -> dict[str, Any]:
    """``docker image prune [-a] [--filter until=... --filter label=...]``: dangling images
    (with ``all``, every image no container uses) created at or before ``until`` and matching
    the labels are removed; answers Docker's ImagesDeleted records and SpaceReclaimed bytes."""
    with audit.action("prune"):
        result = _prune(all=all, until=until, labels=labels, not_labels=not_labels)
        attributes = {"reclaimed": result["SpaceReclaimed"], "all": all}
        if until is not None:
            attributes["until"] = until.isoformat()
        if labels or not_labels:
            attributes["label"] = ",".join([*(labels or []), *(f"!{label}" for label in not_labels or [])])
        audit.record("prune", object_type="image", attributes=attributes)
    return result


def _prune(*, all: bool, until: datetime | None, labels: list[str] | None,
           not_labels: list[str] | None) -> dict[str, Any]:
    deleted: list[Record] = []
    freed = 0
    candidates = Image.objects.filter(containers__isnull=True)
    if not all:
        candidates = candidates.filter(tags__isnull=True, repo_digests__isnull=True)
    if until is not None:
        candidates = candidates.filter(created__lte=until)  # no created time: never "old enough"
    candidates = candidates.filter(label_conditions(labels or [], not_labels or []))
    pending = list(candidates.values_list("id", flat=True).distinct())
    # Children before parents: repeat while a pass removes something.
    while pending:
        progressed, left = False, []
        for image_id in pending:
            if Image.objects.filter(parent_id=image_id).exists():
                left.append(image_id)
                continue
            try:
                removal = _prune_one(image_id)
            except (ServiceError, OCIError, _DeleteConflict):
                continue  # in use, or changed under us: not for pruning
            deleted.extend(removal.records)
            freed += removal.freed
            progressed = True
        if not progressed:
            break
        pending = [i for i in left if Image.objects.filter(pk=i).exists()]
    return {"ImagesDeleted": deleted, "SpaceReclaimed": freed}


def _prune_one(image_id: str) -> _Removal:
    removal = _Removal()
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is None or Container.objects.filter(image=image).exists():
            return removal
        # Untag every reference, then delete (as ``prune -a`` does); noprune: a parent
        # is pruned on its own turn, only if it is a candidate itself.
        removal.image_id = image.id
        _delete(image, removal, force=True, prune=False)
        audit.record_many(removal.audit_events())
    return removal
