"""Retention policies: rules that keep a repository glob from filling the store.

For every repository whose name matches ``repository`` (Docker's reference glob, path.Match:
``team/*`` is one level under team), a policy:
- keeps the ``keep_last`` most recent tags (by when the tag last moved, then the image's
  creation) and untags the others, when ``keep_last`` is set;
- always keeps tags matching ``keep_tags`` (comma-separated globs such as ``v*,release-*``) and
  images labelled ``keep_label`` (``key`` or ``key=value``);
- untags every tag of an image unused for ``unused_for`` (no container uses it and it has not
  been pulled, by ``docker pull`` or through /v2/, for that long; never pulled counts from when
  it was added);
- deletes images left without a tag whose manifest digest is in a matching repository and which
  were created more than ``untagged_older_than`` ago.
Removal goes through ``docker rmi``'s rules (services.remove): an image another name or a
container still needs stays. The preview is the same run inside a transaction that is rolled
back, so it lists exactly what a run does: the names untagged, the images deleted and the
bytes freed (what ``docker system df``'s LayersSize drops by).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from ..errors import USER_ERRORS, BadRequest
from ..models import Container, Image, Job, RepoDigest, Repository, RetentionPolicy, Tag
from . import audit
from .images import compile_reference_pattern, label_conditions
from .jobs import JobProgress, create_job, handler
from .remove import remove_counted

_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, name: str) -> timedelta | None:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w``; empty: not set."""
    if not text or not text.strip():
        return None
    match = _DURATION.match(text)
    if match is None:
        raise BadRequest(gettext("%(name)s must be a duration such as 7d, 12h, 30m or 2w, not %(value)s")
                         % {"name": name, "value": text[:40]}, field=name)
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _globs(text: str) -> list[str]:
    return [g.strip() for g in (text or "").split(",") if g.strip()]


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """A policy's fields, checked (each error names its field)."""
    repository = str(data.get("repository") or "").strip()
    if not repository:
        raise BadRequest(gettext("a repository glob is required, e.g. team/*"), field="repository")
    try:
        compile_reference_pattern(repository)
    except BadRequest as exc:
        raise BadRequest(gettext("repository: %(problem)s") % {"problem": exc}, field="repository") from None
    for name in ("untagged_older_than", "unused_for", "schedule"):
        parse_duration(str(data.get(name) or ""), name)
    label = str(data.get("keep_label") or "")
    if label and not label.partition("=")[0]:
        raise BadRequest(gettext("keep_label is key or key=value"), field="keep_label")
    keep_last = data.get("keep_last")
    if keep_last is not None and (not isinstance(keep_last, int) or keep_last < 0):
        raise BadRequest(gettext("keep_last is a number of tags"), field="keep_last")
    return data


@dataclass
class Plan:
    untag: list[str] = field(default_factory=list)
    delete_untagged: list[str] = field(default_factory=list)


def _repositories(policy: RetentionPolicy) -> list[Repository]:
    pattern = compile_reference_pattern(policy.repository)
    if pattern.never:
        return []
    return list(Repository.objects.filter(name__reference_match=pattern).order_by("name"))


def plan(policy: RetentionPolicy) -> Plan:
    """What the rules select (before docker rmi's rules decide what can go)."""
    now = timezone.now()
    out = Plan()
    repositories = _repositories(policy)
    keep_globs = _globs(policy.keep_tags)
    labelled: set[str] = set()
    if policy.keep_label:
        labelled = set(Image.objects.filter(label_conditions([policy.keep_label], [])).values_list("id", flat=True))
    unused = parse_duration(policy.unused_for, "unused_for")
    used = set(Container.objects.values_list("image_id", flat=True).distinct())
    tags = (Tag.objects.filter(repository__in=repositories).select_related("repository", "image")
            .order_by("repository__name", "-updated_at", "-image__created", "name"))
    by_repository: dict[int, list[Tag]] = {}
    for tag in tags:
        by_repository.setdefault(tag.repository_id, []).append(tag)
    for repo_tags in by_repository.values():
        for position, tag in enumerate(repo_tags):
            if tag.image_id in labelled or any(fnmatch.fnmatchcase(tag.name, g) for g in keep_globs):
                continue
            beyond = policy.keep_last is not None and position >= policy.keep_last
            idle = False
            if unused is not None and tag.image_id not in used:
                last = tag.image.last_pulled_at or tag.image.added_at
                idle = last is not None and last < now - unused
            if beyond or idle:
                out.untag.append(f"{tag.repository.name}:{tag.name}")
    older = parse_duration(policy.untagged_older_than, "untagged_older_than")
    if older is not None:
        digests = RepoDigest.objects.filter(repository__in=repositories).values("image_id")
        candidates = (Image.objects.filter(pk__in=digests, tags__isnull=True)
                      .filter(Q(created__lt=now - older) | Q(created__isnull=True, added_at__lt=now - older))
                      .exclude(pk__in=labelled).order_by("created", "id"))
        out.delete_untagged = list(candidates.values_list("id", flat=True))
    return out


class _Preview(Exception):
    pass


def apply(policy: RetentionPolicy, *, dry_run: bool) -> dict[str, Any]:
    """Untag and delete what the policy selects; with ``dry_run`` the same inside a rolled-back
    transaction. Answers ``{"untag": [...], "delete": [...], "bytes_freed": N, "kept": [...]}``."""
    result: dict[str, Any] = {"untag": [], "delete": [], "bytes_freed": 0, "kept": []}
    try:
        with transaction.atomic():
            selected = plan(policy)
            for name in [*selected.untag, *selected.delete_untagged]:
                try:
                    with transaction.atomic():
                        removal = remove_counted(name)
                except USER_ERRORS as exc:  # a container uses it (409), or it went meanwhile
                    result["kept"].append({"name": name, "reason": str(exc)})
                    continue
                result["untag"] += [r["Untagged"] for r in removal.records if "Untagged" in r]
                result["delete"] += removal.deleted_images
                result["bytes_freed"] += removal.freed
            if dry_run:
                raise _Preview
    except _Preview:
        pass
    return result


def preview(policy: RetentionPolicy) -> dict[str, Any]:
    """Exactly what ``run`` would do now (the removal preview's own rules, rolled back)."""
    return apply(policy, dry_run=True)


def run(policy: RetentionPolicy, job: Job | None = None) -> dict[str, Any]:
    """Apply the policy: its removals and its ``policy_run`` event in one transaction."""
    with audit.action("policy_run", object_type="policy", object_id=str(policy.pk), names=[policy.name]), \
            transaction.atomic():
        result = apply(policy, dry_run=False)
        RetentionPolicy.objects.filter(pk=policy.pk).update(last_run_at=timezone.now())
        audit.record("policy_run", object_type="policy", object_id=str(policy.pk), names=[policy.name],
                     attributes={"untagged": len(result["untag"]), "deleted": len(result["delete"]),
                                 "bytes_freed": result["bytes_freed"], "kept": len(result["kept"])})
    return result


def start_run(policy: RetentionPolicy, owner: Any = None) -> Job:
    return create_job(Job.Kind.RETENTION, {"policy": policy.pk, "name": policy.name}, owner=owner)


@handler(Job.Kind.RETENTION)
def run_retention_job(job: Job, progress: JobProgress) -> dict[str, Any]:
    policy = RetentionPolicy.objects.filter(pk=job.params.get("policy")).first()
    if policy is None:
        raise BadRequest(gettext("the retention policy %(name)s no longer exists") % {"name": job.params.get("name")})
    actor = audit.current()
    actor.policy = policy.name
    with audit.acting(actor):
        result = run(policy, job)
    progress.log(f"Untagged {len(result['untag'])}, deleted {len(result['delete'])} image(s), "
                 f"freed {result['bytes_freed']} bytes")
    return result


def start_due_runs() -> list[Job]:
    """Beat, every minute: each active policy whose schedule has come round runs, as itself."""
    now = timezone.now()
    started = []
    for policy in RetentionPolicy.objects.filter(active=True).exclude(schedule=""):
        every = parse_duration(policy.schedule, "schedule")
        if every is None or (policy.last_run_at is not None and policy.last_run_at + every > now):
            continue
        if Job.objects.filter(kind=Job.Kind.RETENTION, params__policy=policy.pk,
                              state__in=[Job.State.QUEUED, Job.State.RUNNING]).exists():
            continue
        with audit.acting(audit.for_policy(policy.name)):
            # Marked now, so the next minute's beat does not start it again while it is queued.
            RetentionPolicy.objects.filter(pk=policy.pk).update(last_run_at=now)
            started.append(start_run(policy))
    return started
