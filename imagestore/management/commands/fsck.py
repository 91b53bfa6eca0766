"""``manage.py fsck [--repair]``: check the store against the database (like
``podman system check``); exit status 1 when something is broken."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from imagestore.services.fsck import fsck


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = ("Verify every referenced blob (exists, size, sha256), every image's layers and config, every "
            "container folder and snapshot; list orphans. --repair removes orphans and marks broken images; "
            "nothing a row references is ever deleted. Exit status 1 when something is broken.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--repair", action="store_true",
                            help="remove orphans (as collect_garbage would) and mark the images that are broken")
        parser.add_argument("--grace", type=int, default=None, metavar="SECONDS",
                            help="orphans younger than this are not listed or removed (default GC_GRACE_SECONDS)")

    def handle(self, *args: Any, **options: Any) -> None:
        run, report = fsck(repair=options["repair"], grace_seconds=options["grace"], trigger="command")
        for finding in report.findings:
            (self.stderr if finding.broken else self.stdout).write(finding.line())
        for line in report.repaired:
            self.stdout.write(f"repaired: {line}")
        orphans = sum(v["count"] for v in run.freed.values())
        verb = "removed" if run.repair else "would remove (run with --repair)"
        self.stdout.write(
            f"{report.blobs_checked} blob(s) verified ({filesizeformat(report.bytes_checked)}); "
            f"{len(report.broken_images)} broken image(s); {orphans} orphan(s), {verb} "
            f"{filesizeformat(run.freed_bytes)}; run {run.pk}"
        )
        if report.broken:
            raise CommandError(f"{report.broken} problem(s) break images or containers", returncode=1)
