"""Housekeeping of the data root: each folder has one owner and one retention rule.

| folder        | owner                                  | removed when                                            |
|---------------|----------------------------------------|---------------------------------------------------------|
| ``sha256/``   | Layer and Image rows                   | no row references the blob, older than the grace period |
| ``tmp/``      | blob writers, loads, commits, probes   | older than the grace period (pins: a day longer)        |
| ``uploads/``  | the import or load job naming it       | its job ended; with no job, older than the grace period; |
|               |                                        | never while its job is queued or running                |
| ``exports/``  | the save job whose id names it         | job failed or cancelled; succeeded: EXPORT_RETENTION    |
|               |                                        | after it finished; ``.partial`` once the job is not     |
|               |                                        | running                                                 |
| ``locks/``    | pulls (one flock per blob download)    | no pull holds it, older than the grace period           |
| ``containers/``| Container rows                        | no row, older than the grace period (unmounted first)   |
| ``snapshots/``| the containers whose ``snapshot`` it is | no container uses it and no overlay mounts it, older     |
|               |                                        | than the grace period                                   |
| ``index/``    | Layer rows (``services.layerindex``)   | no layer row has its diff_id, older than the grace      |
|               |                                        | period; files not named like an index are left alone    |

Anything else under the root is left alone (fsck lists it). Every run is recorded as
a HousekeepingRun with what it freed per folder.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import metrics
from ..blobs import (
    BlobStore,
    age_of,
    get_store,
    hold_lock_file,
    remove_lock_file,
    remove_tree,
    tree_age,
    tree_size,
)
from ..models import Container, HousekeepingRun, Image, Job, Layer, Manifest
from . import audit
from .jobs import JobProgress, create_job, handler

log = logging.getLogger(__name__)

FOLDERS = ("blobs", "tmp", "uploads", "exports", "locks", "containers", "snapshots", "index")
MAX_LISTED = 1000  # entries kept on the run's row; the counts and bytes cover everything
_BATCH = 500
_ACTIVE = (Job.State.QUEUED, Job.State.RUNNING)
_HEX64 = set("0123456789abcdef")


def _is_hex64(name: str) -> bool:
    return len(name) == 64 and set(name) <= _HEX64


def _batches(items: list[Any], size: int = _BATCH) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# --- blob references -------------------------------------------------------------------------------

def _manifest_blobs() -> Iterator[str]:
    """Blobs that indexes and artifacts served at /v2/ need (their rows list them; few rows)."""
    for blobs in Manifest.objects.filter(image__isnull=True).values_list("blobs", flat=True).iterator():
        yield from (str(b) for b in blobs or [])


def referenced_among(digests: list[str]) -> set[str]:
    """Which of ``digests`` a committed row references now (a layer's blob, an image's config,
    a manifest served at /v2/ or a blob one of them lists)."""
    wanted = set(digests)
    return (set(Layer.objects.filter(digest__in=digests).values_list("digest", flat=True))
            | set(Image.objects.filter(id__in=digests).values_list("id", flat=True))
            | set(Manifest.objects.filter(digest__in=digests).values_list("digest", flat=True))
            | (wanted & set(_manifest_blobs())))


def all_referenced() -> set[str]:
    return set(
        chain(
            Layer.objects.values_list("digest", flat=True).iterator(),
            Image.objects.values_list("id", flat=True).iterator(),
            Manifest.objects.values_list("digest", flat=True).iterator(),
            _manifest_blobs(),
        )
    )


def delete_blobs_on_commit(digests: Iterable[str]) -> None:
    """Delete these blobs once the current transaction commits, those no row needs then.

    A rollback drops the callback, so the blobs stay with the rows that come back.
    A deletion that fails is logged (robust): the next GC finds the blob unreferenced.
    """
    doomed = list(dict.fromkeys(digests))
    if doomed:
        transaction.on_commit(lambda: get_store().delete_unreferenced(doomed, referenced_among), robust=True)


# --- mounts -------------------------------------------------------------------------------------------

def _unescape(text: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as octal.
    return text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _mounts() -> tuple[list[Path], set[Path]]:
    """Mount points, and the lower dirs of overlay mounts, as this process sees them."""
    points: list[Path] = []
    lowers: set[Path] = set()
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return points, lowers
    for line in lines:
        head, _, tail = line.partition(" - ")
        fields = head.split()
        if len(fields) < 5:
            continue
        points.append(Path(_unescape(fields[4])))
        parts = tail.split()
        if parts and parts[0] == "overlay" and len(parts) >= 3:
            for option in parts[2].split(","):
                if option.startswith("lowerdir="):
                    lowers.update(Path(_unescape(p)) for p in option[len("lowerdir="):].split(":") if p)
    return points, lowers


# --- one sweep ------------------------------------------------------------------------------------------

@dataclass
class Sweep:
    """What one pass over the data root removed (or, dry, would remove)."""

    root: Path
    grace: float
    dry_run: bool
    export_retention: float
    now: float = field(default_factory=time.time)
    freed: dict[str, dict[str, int]] = field(default_factory=dict)
    removed: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mount_points: list[Path] = field(default_factory=list)
    overlay_lowers: set[Path] = field(default_factory=set)

    def shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def note(self, folder: str, path: Path, size: int, why: str) -> None:
        totals = self.freed.setdefault(folder, {"count": 0, "bytes": 0})
        totals["count"] += 1
        totals["bytes"] += size
        if len(self.removed) < MAX_LISTED:
            self.removed.append({"folder": folder, "path": self.shown(path), "bytes": size, "why": why})

    def error(self, folder: str, path: Path, exc: BaseException) -> None:
        self.errors.append(f"{folder}: {self.shown(path)}: {exc.__class__.__name__}: {exc}")

    def remove(self, folder: str, path: Path, why: str, *, shown_as: Path | None = None,
               size: int | None = None) -> bool:
        """Remove a file or tree (never through a mount point in it); False if it stays."""
        try:
            size = tree_size(path) if size is None else size
            if not self.dry_run:
                if not self._unmount_under(path):
                    raise OSError(f"a mount point under {self.shown(path)} could not be unmounted")
                remove_tree(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            self.error(folder, path, exc)
            return False
        self.note(folder, shown_as or path, size, why)
        return True

    def mounted(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(p == resolved or resolved in p.parents for p in self.mount_points)

    def _unmount_under(self, path: Path) -> bool:
        resolved = path.resolve()
        inside = sorted((p for p in self.mount_points if p == resolved or resolved in p.parents), reverse=True)
        for point in inside:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)
        return not any(os.path.ismount(p) for p in inside)

    def old(self, path: Path, *, linked: bool = False, tree: bool = False) -> bool:
        try:
            age = tree_age(path, self.now, linked=linked) if tree else age_of(path, self.now, linked=linked)
        except FileNotFoundError:
            return False
        return age >= self.grace


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except FileNotFoundError:
        return []


def _sweep_blobs(s: Sweep, store: BlobStore) -> None:
    candidates = [str(digest) for digest, _path in store.unreferenced(all_referenced(), s.grace)]
    for digest, size in store.delete_unreferenced(candidates, referenced_among, dry_run=s.dry_run):
        s.note("blobs", store.path(digest), size, "no image or layer references it")


def _sweep_tmp(s: Sweep, store: BlobStore) -> None:
    for leftover in store.stale_temporary(s.grace):
        s.remove("tmp", leftover, "temporary file older than the grace period")


def _sweep_uploads(s: Sweep, store: BlobStore) -> None:
    entries = _entries(s.root / "uploads")
    if not entries:
        return
    # Jobs name their upload by the path they were given; match both spellings.
    spelled: dict[str, Path] = {}
    for entry in entries:
        spelled[str(entry)] = entry
        spelled[str(entry.resolve())] = entry
    states: dict[Path, set[str]] = {}
    for batch in _batches(list(spelled)):
        rows = Job.objects.filter(params__upload_path__in=batch).values_list("state", "params__upload_path")
        for state, path in rows:
            states.setdefault(spelled[path], set()).add(state)
    for entry in entries:
        jobs = states.get(entry)
        if jobs and jobs & set(_ACTIVE):
            continue  # its job will read it
        if jobs:
            s.remove("uploads", entry, f"its job has {', '.join(sorted(jobs))}")
        elif s.old(entry, tree=True):
            s.remove("uploads", entry, "no job uses it and it is older than the grace period")


def _export_job_id(name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(name.split(".", 1)[0])
    except ValueError:
        return None


def _sweep_exports(s: Sweep, store: BlobStore) -> None:
    entries = _entries(s.root / "exports")
    ids = [i for i in (_export_job_id(e.name) for e in entries) if i is not None]
    jobs: dict[uuid.UUID, tuple[str, datetime | None]] = {}
    for batch in _batches(ids):
        for job_id, state, finished_at in Job.objects.filter(pk__in=batch).values_list("id", "state", "finished_at"):
            jobs[job_id] = (state, finished_at)
    for entry in entries:
        job = jobs.get(_export_job_id(entry.name))  # type: ignore[arg-type]
        if job is None:
            if s.now - _mtime(entry) >= max(s.grace, s.export_retention):
                s.remove("exports", entry, "no save job owns it and it is past the export retention")
            continue
        state, finished_at = job
        if state in _ACTIVE:
            continue
        if entry.name.endswith(".partial") or state != Job.State.SUCCEEDED:
            s.remove("exports", entry, f"its save job has {state}")
            continue
        finished = finished_at.timestamp() if finished_at else _mtime(entry)
        if s.now - finished >= s.export_retention:
            s.remove("exports", entry, f"kept {int(s.export_retention)} s after its save job succeeded")


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return time.time()


def _sweep_locks(s: Sweep, store: BlobStore) -> None:
    folder = s.root / "locks"
    entries = _entries(folder)
    for entry in entries:
        name = entry.name
        if name == "blob-names.lock":
            continue
        if _is_hex64(name):
            if not s.old(entry):
                continue
            note = folder / f"{name}.diffid"
            size = tree_size(entry) + tree_size(note)
            try:
                freed = _lock_is_free(entry) if s.dry_run else remove_lock_file(entry, also=[note])
            except OSError as exc:
                s.error("locks", entry, exc)
                continue
            if freed:
                s.note("locks", entry, size, "no pull holds it")
        elif name.endswith(".diffid") and _is_hex64(name[:-7]):
            if not (folder / name[:-7]).exists() and s.old(entry):
                s.remove("locks", entry, "note of a download no pull holds")
        elif s.old(entry, tree=True):
            s.remove("locks", entry, "stray file older than the grace period")


def _lock_is_free(path: Path) -> bool:
    import fcntl

    try:
        with open(path) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
            return True
    except BlockingIOError:
        return False
    except FileNotFoundError:
        return False


def _sweep_containers(s: Sweep, store: BlobStore) -> None:
    entries = _entries(s.root / "containers")
    names = [e.name for e in entries]
    known: set[str] = set()
    for batch in _batches(names):
        known.update(Container.objects.filter(pk__in=batch).values_list("id", flat=True))
    for entry in entries:
        if entry.name in known:
            continue
        # A container being created has its folder before its row: ctime, which a copy
        # (cp -a keeps old mtimes) cannot fake, says whether anything is still written.
        if not s.old(entry, linked=True, tree=True):
            continue
        if Container.objects.filter(pk=entry.name).exists():
            continue  # its row was committed while we looked
        s.remove("containers", entry, "no container row owns it")


def _sweep_snapshots(s: Sweep, store: BlobStore) -> None:
    folder = s.root / "snapshots"
    entries = _entries(folder)
    needed = {c.split(":", 1)[-1] for c in Container.objects.exclude(snapshot="").values_list("snapshot", flat=True)}
    lowers = {p.resolve() for p in s.overlay_lowers}
    for entry in entries:
        name = entry.name
        if name.startswith(".lock-"):
            if not (folder / name[len(".lock-"):]).exists() and s.old(entry):
                size = tree_size(entry)
                if s.dry_run or remove_lock_file(entry):
                    s.note("snapshots", entry, size, "lock of a snapshot that is gone")
        elif name.startswith((".building-", ".removing-")):
            if s.old(entry, linked=True, tree=True):
                s.remove("snapshots", entry, "left by an interrupted build or removal")
        elif name in needed or entry.resolve() in lowers or s.mounted(entry):
            continue
        elif s.old(entry, linked=True, tree=True):
            _remove_snapshot(s, folder, entry)


def _remove_snapshot(s: Sweep, folder: Path, entry: Path) -> None:
    """Under the lock ensure_snapshot takes, so a container being created keeps it."""
    with hold_lock_file(folder / f".lock-{entry.name}"):
        if Container.objects.filter(snapshot=f"sha256:{entry.name}").exists() or not s.old(entry, linked=True):
            return
        if s.dry_run:
            s.note("snapshots", entry, tree_size(entry), "no container uses it")
            return
        size = tree_size(entry)
        doomed = folder / f".removing-{uuid.uuid4().hex}"
        try:
            os.rename(entry, doomed)
        except OSError as exc:
            s.error("snapshots", entry, exc)
            return
    s.remove("snapshots", doomed, "no container uses it", shown_as=entry, size=size)


def _sweep_index(s: Sweep, store: BlobStore) -> None:
    from . import layerindex

    found = [(diff_id, path) for diff_id, path in layerindex.stored_indexes(store) if diff_id is not None]
    kept: set[str] = set()
    for batch in _batches([diff_id for diff_id, _ in found]):
        kept.update(Layer.objects.filter(diff_id__in=batch).values_list("diff_id", flat=True))
    for diff_id, path in found:
        # Written just before its layer's row (a pull or load in flight): the grace protects it.
        if diff_id not in kept and s.old(path):
            s.remove("index", path, "no layer has this diff_id")


SWEEPERS: list[tuple[str, Callable[[Sweep, BlobStore], None]]] = [
    ("blobs", _sweep_blobs),
    ("tmp", _sweep_tmp),
    ("uploads", _sweep_uploads),
    ("exports", _sweep_exports),
    ("locks", _sweep_locks),
    ("containers", _sweep_containers),
    ("snapshots", _sweep_snapshots),
    ("index", _sweep_index),
]


def sweep(grace_seconds: float | None = None, *, dry_run: bool = False) -> Sweep:
    """One pass over every folder; a folder that fails is an error on the run, not the end of it."""
    store = get_store()
    grace = settings.GC_GRACE_SECONDS if grace_seconds is None else grace_seconds
    s = Sweep(root=store.root, grace=float(grace), dry_run=dry_run,
              export_retention=float(settings.EXPORT_RETENTION))
    s.mount_points, s.overlay_lowers = _mounts()
    for folder, sweeper in SWEEPERS:
        try:
            sweeper(s, store)
        except Exception as exc:  # noqa: BLE001 - recorded on the run; the other folders still get swept
            log.exception("housekeeping of %s failed", folder)
            s.errors.append(f"{folder}: {exc.__class__.__name__}: {exc}")
    return s


def record(run: HousekeepingRun, s: Sweep, **fields: Any) -> HousekeepingRun:
    run.finished_at = timezone.now()
    run.freed = s.freed
    run.removed = s.removed
    run.errors = [*run.errors, *s.errors]
    for name, value in fields.items():
        setattr(run, name, value)
    run.save()
    return run


def collect_garbage(grace_seconds: float | None = None, *, dry_run: bool = False, trigger: str = "",
                    job: Job | None = None) -> HousekeepingRun:
    """Sweep the data root and record the run: what was freed (or would be) per folder."""
    grace = settings.GC_GRACE_SECONDS if grace_seconds is None else grace_seconds
    run = HousekeepingRun.objects.create(what=HousekeepingRun.What.GC, trigger=trigger, dry_run=dry_run,
                                         grace_seconds=int(grace), job=job)
    finished = record(run, sweep(grace, dry_run=dry_run))
    if not dry_run:
        metrics.GC_RUNS.inc()
        metrics.GC_FREED.inc(finished.freed_bytes)
        audit.remove_expired(settings.AUDIT_RETENTION_DAYS)  # the trail's retention rides on the hourly sweep
    return finished


def summary(run: HousekeepingRun) -> dict[str, Any]:
    """What a job's result and the API say about a run."""
    return {
        "run": run.pk, "what": run.what, "dry_run": run.dry_run, "repair": run.repair,
        "freed": run.freed, "freed_count": run.freed_count, "freed_bytes": run.freed_bytes,
        "broken": run.broken, "errors": run.errors,
    }


def start_collect_garbage(*, dry_run: bool = False, grace_seconds: int | None = None, owner: Any = None,
                          trigger: str = "api") -> Job:
    return create_job(Job.Kind.GC, {"dry_run": bool(dry_run), "grace_seconds": grace_seconds, "trigger": trigger},
                      owner=owner)


@handler(Job.Kind.GC)
def run_gc_job(job: Job, progress: JobProgress) -> dict[str, Any]:
    run = collect_garbage(job.params.get("grace_seconds"), dry_run=bool(job.params.get("dry_run")),
                          trigger=job.params.get("trigger") or "api", job=job)
    verb = "Would free" if run.dry_run else "Freed"
    progress.log(f"{verb} {run.freed_count} entries, {run.freed_bytes} bytes")
    for error in run.errors:
        progress.log(f"Error: {error}")
    return summary(run)
