"""What the dashboard's home page shows at a glance, read in a fixed number of queries whatever
the size of the store: counts, bytes (own and shared), disk by repository, the largest images,
jobs running, recent and failed, the last store check and garbage collection, updates known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Case, Count, IntegerField, Prefetch, Q, Sum, When
from django.utils import timezone

from ..models import Container, HousekeepingRun, Image, ImageLayer, Job, Layer, Repository, Tag
from .containers import reconcile_all
from .store_stats import cached

# Repositories drawn one by one in the disk chart; the rest are summed as one bar.
CHART_REPOSITORIES = 8
LARGEST_IMAGES = 10
RECENT_JOBS = 8
FAILED_JOBS = 5
# Failed jobs are "recent" for this long.
FAILED_WINDOW = timedelta(days=7)


@dataclass
class Overview:
    images: int = 0
    dangling: int = 0
    tags: int = 0
    repositories: int = 0
    containers: dict[str, int] = field(default_factory=dict)
    disk: int = 0  # bytes of blobs: compressed layers and configs
    own: int = 0  # uncompressed bytes of layers exactly one image uses
    shared: int = 0  # ...and of layers more than one image uses
    by_repository: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "bytes"}], largest first
    largest: list[Image] = field(default_factory=list)
    running_jobs: list[Job] = field(default_factory=list)
    recent_jobs: list[Job] = field(default_factory=list)
    failed_jobs: list[Job] = field(default_factory=list)
    failed_count: int = 0
    last_gc: HousekeepingRun | None = None
    last_fsck: HousekeepingRun | None = None
    broken_images: int = 0
    # None: the store does not know (no update check); else how many images have a newer one.
    updates_available: int | None = None

    @property
    def running_containers(self) -> int:
        return self.containers.get(Container.State.RUNNING, 0)

    @property
    def exited_containers(self) -> int:
        return self.containers.get(Container.State.EXITED, 0)

    @property
    def total_containers(self) -> int:
        return sum(self.containers.values())


def disk_by_repository(limit: int = CHART_REPOSITORIES) -> list[dict[str, Any]]:
    """Bytes on disk (compressed layers) per repository, each layer counted once per repository
    however many of its tags use it; the largest ``limit``, then one entry for the rest."""
    tag, image_layer, layer, repository = (m._meta.db_table for m in (Tag, ImageLayer, Layer, Repository))
    # One grouped query (a plain aggregate cannot say "each layer once per repository").
    sql = (f"SELECT r.name, SUM(l.size) FROM (SELECT DISTINCT t.repository_id AS rid, il.layer_id AS lid "
           f"FROM {tag} t JOIN {image_layer} il ON il.image_id = t.image_id) pairs "
           f"JOIN {repository} r ON r.id = pairs.rid JOIN {layer} l ON l.id = pairs.lid "
           f"GROUP BY r.name ORDER BY 2 DESC, r.name")
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = [{"name": name, "bytes": int(total or 0)} for name, total in cursor.fetchall()]
    if len(rows) > limit + 1:
        rest = rows[limit:]
        rows = rows[:limit] + [{"name": None, "bytes": sum(r["bytes"] for r in rest), "count": len(rest)}]
    return rows


def store_sums() -> dict[str, Any]:
    """The overview's store-wide counts and sums (cached until the store changes: store_stats.py)."""
    images = Image.objects.aggregate(n=Count("id"), configs=Sum("config_size"),
                                     broken=Count("id", filter=Q(broken=True)))
    users = Layer.objects.annotate(users=Count("image_layers__image", distinct=True))
    layers = users.aggregate(
        disk=Sum("size"),
        own=Sum(Case(When(users=1, then="uncompressed_size"), default=0, output_field=IntegerField())),
        shared=Sum(Case(When(users__gt=1, then="uncompressed_size"), default=0, output_field=IntegerField())))
    return {
        "images": images["n"] or 0, "broken_images": images["broken"] or 0,
        "dangling": Image.objects.filter(tags__isnull=True, children__isnull=True).count(),
        "tags": Tag.objects.count(),
        "repositories": Repository.objects.filter(tags__isnull=False).distinct().count(),
        "disk": (layers["disk"] or 0) + (images["configs"] or 0),
        "own": layers["own"] or 0, "shared": layers["shared"] or 0,
        "by_repository": disk_by_repository(),
    }


def job_lists() -> tuple[list[Job], list[Job]]:
    """Jobs queued or running (oldest first), and the latest jobs whatever their state."""
    running = list(Job.objects.filter(state__in=(Job.State.QUEUED, Job.State.RUNNING))
                   .select_related("owner").order_by("created_at")[:RECENT_JOBS])
    recent = list(Job.objects.select_related("owner").order_by("-created_at")[:RECENT_JOBS])
    return running, recent


def overview() -> Overview:
    reconcile_all()  # a container whose process ended says so here, as on the containers page
    view = Overview()
    for name, value in cached("overview", store_sums).items():
        setattr(view, name, value)
    view.containers = dict(Container.objects.values_list("state").annotate(n=Count("id")).order_by())
    tags = Prefetch("tags", queryset=Tag.objects.select_related("repository").order_by("repository__name", "name"))
    view.largest = list(Image.objects.order_by("-size", "id").prefetch_related(tags)[:LARGEST_IMAGES])
    view.running_jobs, view.recent_jobs = job_lists()
    since = timezone.now() - FAILED_WINDOW
    failed = Job.objects.filter(state=Job.State.FAILED, created_at__gte=since)
    view.failed_count = failed.count()
    view.failed_jobs = list(failed.select_related("owner").order_by("-created_at")[:FAILED_JOBS])
    view.last_gc = HousekeepingRun.objects.filter(what=HousekeepingRun.What.GC, dry_run=False).first()
    view.last_fsck = HousekeepingRun.objects.filter(what=HousekeepingRun.What.FSCK).first()
    # An update check (issue 13) records Image.update_available (True, False or None: unknown);
    # before it exists the card is not shown.
    if hasattr(Image, "update_available"):
        view.updates_available = Image.objects.filter(**{"update_available": True}).count()
    return view
