"""Checking the store against the database, like ``podman system check`` and the
registry's ``garbage-collect --dry-run``.

Verified: every blob a row references (it exists, has the recorded size, and its bytes
hash to its digest, streamed), every image's config (parses, and its rootfs.diff_ids
are the image's layers in order), every container's folder (and the snapshot an
overlay root is mounted on). Listed: what housekeeping would remove (unreferenced
blobs, container folders without a row, snapshots nobody needs, stray temporary files,
ended jobs' uploads and expired exports) and entries of the data root nobody owns.

``repair`` removes those orphans (through the same sweep as GC, which re-checks every
reference before deleting), marks the images a missing or corrupt blob breaks (and
unmarks those that are whole again), and rebuilds a missing snapshot an overlay
container needs. It never deletes anything a row references.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from ..blobs import BlobStore, get_store
from ..models import Container, HousekeepingRun, Image, ImageLayer, Job, Layer, Manifest
from ..oci.config import ImageConfig
from ..oci.errors import OCIError
from ..oci.layerindex import decode
from . import gc
from .jobs import JobProgress, create_job, handler
from .progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

KNOWN_TOP_LEVEL = {"sha256", "tmp", "uploads", "exports", "locks", "containers", "snapshots", "index"}
MAX_FINDINGS = 1000


@dataclass
class Finding:
    kind: str
    subject: str
    detail: str
    broken: bool = False
    images: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = f"{self.kind}: {self.subject}: {self.detail}"
        if self.images:
            text += f" (breaks {', '.join(i.split(':', 1)[-1][:12] for i in self.images)})"
        return text


@dataclass
class FsckReport:
    findings: list[Finding] = field(default_factory=list)
    broken_images: dict[str, str] = field(default_factory=dict)
    blobs_checked: int = 0
    bytes_checked: int = 0
    sweep: gc.Sweep | None = None
    repaired: list[str] = field(default_factory=list)

    @property
    def broken(self) -> int:
        return sum(1 for f in self.findings if f.broken)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)


def verify_blob(store: BlobStore, digest: str, size: int | None) -> tuple[str, str] | None:
    """(kind, detail) of what is wrong with a stored blob, or None when it is whole."""
    path = store.path(digest)
    try:
        actual_size = path.stat().st_size
    except FileNotFoundError:
        return "missing blob", "not in the store"
    if size is not None and actual_size != size:
        return "corrupt blob", f"{actual_size} bytes, the database says {size}"
    hasher = hashlib.sha256()
    try:
        for chunk in store.chunks(digest):
            hasher.update(chunk)
    except FileNotFoundError:
        return "missing blob", "not in the store"
    actual = f"sha256:{hasher.hexdigest()}"
    if actual != digest:
        return "corrupt blob", f"its bytes hash to {actual}"
    return None


def check(*, repair: bool = False, grace_seconds: float | None = None,
          progress: Progress = NULL_PROGRESS) -> FsckReport:
    store = get_store()
    report = FsckReport()

    # What the rows reference, read once.
    layers = {pk: (digest, size, diff_id)
              for pk, digest, size, diff_id in Layer.objects.values_list("id", "digest", "size", "diff_id").iterator()}
    images = dict(Image.objects.values_list("id", "config_size").iterator())
    image_layers: dict[str, list[int]] = defaultdict(list)
    newer: set[str] = set()
    for image_id, layer_id in ImageLayer.objects.order_by("image_id", "position").values_list(
            "image_id", "layer_id").iterator():
        image_layers[image_id].append(layer_id)
        if image_id not in images or layer_id not in layers:
            newer.add(image_id)
    # Registered while these reads ran (the three queries are not one snapshot): the next fsck
    # checks them; this one must neither crash on them nor call their blobs orphans.
    for image_id in newer:
        image_layers.pop(image_id, None)
        images.pop(image_id, None)
    expected: dict[str, int | None] = {}
    users: dict[str, set[str]] = defaultdict(set)
    for image_id, config_size in images.items():
        expected[image_id] = config_size
        users[image_id].add(image_id)
    for image_id, layer_ids in image_layers.items():
        for layer_id in layer_ids:
            users[layers[layer_id][0]].add(image_id)
    for digest, size, _diff_id in layers.values():
        expected.setdefault(digest, size)
    # Manifests served at /v2/ (their bytes are blobs too) and the blobs indexes and artifacts list.
    for digest, size, image_id, blobs in Manifest.objects.values_list("digest", "size", "image_id", "blobs").iterator():
        expected.setdefault(digest, size)
        if image_id:
            users[digest].add(image_id)
        for blob in blobs or []:
            expected.setdefault(str(blob), None)  # type: ignore[arg-type]  # size known by the manifest only

    # Every referenced blob, streamed through sha256.
    bad: dict[str, tuple[str, str]] = {}
    total = len(expected)
    for done, (digest, size) in enumerate(sorted(expected.items()), start=1):  # type: ignore[assignment]
        problem = verify_blob(store, digest, size)
        if problem is not None:
            bad[digest] = problem
        else:
            report.bytes_checked += size or 0
        report.blobs_checked = done
        progress.update("blobs", done, total, "Verifying")
    if bad:
        # A removal that committed while we read is not a loss: ask again for these.
        still = gc.referenced_among(list(bad))
        bad = {d: p for d, p in bad.items() if d in still}
    for digest, (kind, detail) in sorted(bad.items()):
        breaks = sorted(users.get(digest, ()))
        report.add(Finding(kind, digest, detail, broken=True, images=breaks))
        for image_id in breaks:
            what = "config" if digest == image_id else "layer"
            report.broken_images.setdefault(image_id, f"{what} blob {digest}: {kind} ({detail})")

    # Every image's config against its layers.
    for image_id in sorted(images):
        if image_id in bad:
            continue
        try:
            config = ImageConfig.parse(store.read_bytes(image_id))
        except (OCIError, ValueError, FileNotFoundError) as exc:
            reason = f"config does not parse: {exc}"
        else:
            have = [layers[pk][2] for pk in image_layers.get(image_id, [])]
            if [str(d) for d in config.diff_ids] == have:
                continue
            reason = f"its layers ({len(have)}) are not the config's rootfs.diff_ids ({len(config.diff_ids)})"
        if Image.objects.filter(pk=image_id).exists():
            report.add(Finding("broken image", image_id, reason, broken=True, images=[image_id]))
            report.broken_images.setdefault(image_id, reason)

    _check_containers(report, repair)
    _check_indexes(report, store, layers, bad, repair)
    _check_layout(report, store)

    # Orphans: what GC would remove now; with repair, it does.
    sweep = gc.sweep(grace_seconds, dry_run=not repair)
    report.sweep = sweep
    for item in sweep.removed:
        report.add(Finding(f"orphan in {item['folder']}", item["path"], f"{item['why']} ({item['bytes']} bytes)"))
    for error in sweep.errors:
        report.add(Finding("error", "housekeeping", error))

    if repair:
        _mark_images(report)
    return report


def _check_containers(report: FsckReport, repair: bool) -> None:
    from .containers import container_dir, ensure_snapshot, snapshot_dir

    for container in Container.objects.select_related("image").order_by("created_at"):
        directory = container_dir(container)
        if not directory.is_dir():
            report.add(Finding("container without its folder", container.id,
                               f"{container.name}: {directory.name} is missing", broken=True))
            continue
        if not (directory / "rootfs").exists():
            report.add(Finding("container without its root", container.id, f"{container.name}: rootfs is missing",
                               broken=True))
        if container.rootfs_mode == "overlay" and container.snapshot and not snapshot_dir(container.snapshot).is_dir():
            if repair and container.image_id not in report.broken_images:
                try:
                    if ensure_snapshot(container.image) == container.snapshot:
                        report.repaired.append(f"rebuilt snapshot {container.snapshot} for {container.name}")
                        continue
                except (OSError, OCIError) as exc:
                    log.warning("rebuilding snapshot %s failed: %s", container.snapshot, exc)
            report.add(Finding("missing snapshot", container.snapshot,
                               f"the overlay root of container {container.name} is mounted on it", broken=True))


def _check_indexes(report: FsckReport, store: BlobStore, layers: dict[int, tuple[str, int, str]],
                   bad: dict[str, tuple[str, str]], repair: bool) -> None:
    """Every layer has a readable index (with repair, a missing or unreadable one is rebuilt
    from its blob); files in the index folder that are not indexes are listed, left alone."""
    from . import layerindex

    for _pk, (digest, _size, diff_id) in sorted(layers.items()):
        path = layerindex.index_path(diff_id, store)
        problem = None
        try:
            with open(path, "rb") as f:
                decode(f, with_files=True)
        except FileNotFoundError:
            problem = "layer not indexed", "no index (manage.py index_layers makes it)"
        except OCIError as exc:
            problem = "unreadable layer index", str(exc)
        if problem is None:
            continue
        if repair and digest not in bad:
            layer = Layer.objects.filter(diff_id=diff_id).first()
            try:
                if layer is not None and layerindex.index_layer(layer, force=True):
                    report.repaired.append(f"indexed layer {diff_id}")
                    continue
            except (OCIError, OSError) as exc:
                problem = problem[0], f"{problem[1]}; indexing it failed: {exc}"
        report.add(Finding(problem[0], diff_id, problem[1]))
    for stored, path in layerindex.stored_indexes(store):
        if stored is None:
            report.add(Finding("stray in the index folder", str(path.relative_to(store.root)),
                               "not a layer index; left alone"))


def _check_layout(report: FsckReport, store: BlobStore) -> None:
    for stray in store.strays():
        report.add(Finding("stray in the blob tree", str(stray.relative_to(store.root)), "not a blob; left alone"))
    for entry in sorted(store.root.iterdir()):
        if entry.name not in KNOWN_TOP_LEVEL:
            report.add(Finding("unknown entry", entry.name, "nothing in the store owns it; left alone"))


def _mark_images(report: FsckReport) -> None:
    marked = [Image(id=image_id, broken=True, broken_reason=reason[:2000])
              for image_id, reason in report.broken_images.items()]
    Image.objects.bulk_update(marked, ["broken", "broken_reason"], batch_size=500)
    if marked:
        report.repaired.append(f"marked {len(marked)} image(s) broken")
    whole = Image.objects.filter(broken=True).exclude(pk__in=list(report.broken_images)).update(
        broken=False, broken_reason="")
    if whole:
        report.repaired.append(f"unmarked {whole} image(s) that are whole again")


def fsck(*, repair: bool = False, grace_seconds: float | None = None, trigger: str = "", job: Job | None = None,
         progress: Progress = NULL_PROGRESS) -> tuple[HousekeepingRun, FsckReport]:
    """Check (and with ``repair``, repair) the store; the run records the findings."""
    grace = settings.GC_GRACE_SECONDS if grace_seconds is None else grace_seconds
    run = HousekeepingRun.objects.create(what=HousekeepingRun.What.FSCK, trigger=trigger, repair=repair,
                                         dry_run=not repair, grace_seconds=int(grace), job=job)
    report = check(repair=repair, grace_seconds=grace, progress=progress)
    run.findings = [asdict(f) for f in report.findings[:MAX_FINDINGS]]
    run.broken = report.broken
    if report.sweep is not None:
        gc.record(run, report.sweep)
    else:
        run.finished_at = timezone.now()
        run.save()
    return run, report


def start_fsck(*, repair: bool = False, grace_seconds: int | None = None, owner: Any = None,
               trigger: str = "api") -> Job:
    return create_job(Job.Kind.FSCK, {"repair": bool(repair), "grace_seconds": grace_seconds, "trigger": trigger},
                      owner=owner)


@handler(Job.Kind.FSCK)
def run_fsck_job(job: Job, progress: JobProgress) -> dict[str, Any]:
    run, report = fsck(repair=bool(job.params.get("repair")), grace_seconds=job.params.get("grace_seconds"),
                       trigger=job.params.get("trigger") or "api", job=job, progress=progress)
    for finding in report.findings[:200]:
        progress.log(finding.line())
    for line in report.repaired:
        progress.log(line)
    progress.log(f"{report.blobs_checked} blob(s) verified, {report.broken} problem(s) that break something")
    return {**gc.summary(run), "findings": len(report.findings), "broken_images": sorted(report.broken_images)}
