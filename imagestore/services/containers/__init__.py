"""Containers: a writable root over a shared read-only snapshot of the image, run by an OCI
runtime (runc) under a supervisor process that outlives the web server.

Files of a container live in ``<IMAGESTORE_ROOT>/containers/<id>/``: ``rootfs/`` (its
root filesystem), ``config.json`` (the runtime bundle), ``container.log`` (stdout and
stderr). Snapshots live in ``<IMAGESTORE_ROOT>/snapshots/<chain id>/``, one per layer
chain, shared by every container of that image and removed with the last of them.

One module per concern: ``lookup`` (finding containers, their folders, errors),
``snapshots``, ``roots`` (overlay or copied writable roots), ``lifecycle`` (create, run,
stop, wait, logs, remove), ``attach`` (a running process's I/O), ``exec`` (``docker exec``),
``files`` (``docker cp``), ``diff`` (``docker diff``). Callers use
the names re-exported here.
"""

from .diff import RUNTIME_MOUNT_POINTS, container_changes
from .files import archive_of, copy_into, copy_out, path_stat
from .lifecycle import (
    MAX_PASSWD_SIZE,
    STOP_TIMEOUT_MAX,
    WAIT_CONDITIONS,
    Waiter,
    _runc,
    _user_ids,
    bundle_config,
    container_log_frames,
    container_logs,
    create_container,
    kill_container,
    reconcile,
    reconcile_all,
    record_exit,
    remove_container,
    rename_container,
    start_container,
    stop_container,
    wait_container,
    wait_for,
)
from .lookup import (
    RUNNING_STATES,
    ContainerNotFound,
    RuntimeUnavailable,
    container_dir,
    get_container,
    rootfs,
    runtime_binary,
    snapshot_dir,
)
from .roots import _mount_overlay, ensure_rootfs
from .snapshots import ensure_snapshot, release_snapshot

__all__ = [
    "MAX_PASSWD_SIZE", "RUNNING_STATES", "RUNTIME_MOUNT_POINTS", "STOP_TIMEOUT_MAX", "ContainerNotFound",
    "RuntimeUnavailable", "_mount_overlay", "_runc", "_user_ids", "archive_of", "bundle_config", "container_changes",
    "container_dir", "container_logs", "copy_into", "copy_out", "create_container", "ensure_rootfs",
    "ensure_snapshot", "get_container", "kill_container", "path_stat", "reconcile", "reconcile_all",
    "release_snapshot", "remove_container", "rootfs", "runtime_binary", "snapshot_dir", "start_container",
    "stop_container", "wait_container", "WAIT_CONDITIONS", "container_log_frames", "record_exit", "rename_container",
    "Waiter",
    "wait_for",
]
