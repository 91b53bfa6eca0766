"""``manage.py collect_garbage [--dry-run] [--grace SECONDS]``: the housekeeping sweep on demand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from imagestore.services.gc import FOLDERS, collect_garbage


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = ("Remove unreferenced blobs, ended jobs' uploads, expired exports, free locks, orphan container "
            "folders, unused snapshots and stale temporary files; print what was freed.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only print what would be removed")
        parser.add_argument("--grace", type=int, default=None, metavar="SECONDS",
                            help="keep what is younger than this (default GC_GRACE_SECONDS)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["grace"] is not None and options["grace"] < 0:
            raise CommandError("--grace must be 0 or more seconds")
        run = collect_garbage(options["grace"], dry_run=options["dry_run"], trigger="command")
        verb = "would remove" if run.dry_run else "removed"
        for item in run.removed:
            self.stdout.write(f"{verb} {item['path']} ({item['bytes']} bytes): {item['why']}")
        for folder in FOLDERS:
            totals = run.freed.get(folder)
            if totals:
                self.stdout.write(f"{folder}: {totals['count']} {verb}, {filesizeformat(totals['bytes'])}")
        self.stdout.write(f"total: {run.freed_count} {verb}, {filesizeformat(run.freed_bytes)}; run {run.pk}")
        for error in run.errors:
            self.stderr.write(f"error: {error}")
        if run.errors:
            raise CommandError(f"{len(run.errors)} error(s) during garbage collection", returncode=1)
