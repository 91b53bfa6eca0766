"""``manage.py index_layers [--force]``: index the layers stored before indexing existed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from imagestore.errors import COMMAND_ERRORS
from imagestore.models import Image
from imagestore.services.layerindex import backfill
from imagestore.services.packages import scan_image


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = ("Index every stored layer that has no index yet (one read of its blob each), then read the "
            "packages of the images never scanned.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--force", action="store_true", help="index every layer again, indexed or not")

    def handle(self, *args: Any, **options: Any) -> None:
        result = backfill(force=options["force"])
        for diff_id in result.indexed:
            self.stdout.write(f"indexed {diff_id}")
        for diff_id, reason in result.failed:
            self.stderr.write(f"failed {diff_id}: {reason}")
        self.stdout.write(f"{len(result.indexed)} indexed, {result.skipped} already indexed, "
                          f"{len(result.failed)} failed")
        unscanned = Image.objects.all() if options["force"] else Image.objects.filter(packages_scanned_at=None)
        scanned = 0
        for image in unscanned.order_by("id").iterator():
            try:
                scan_image(image)
                scanned += 1
            except COMMAND_ERRORS as exc:
                self.stderr.write(f"packages of {image.id}: {exc}")
        self.stdout.write(f"packages read for {scanned} image(s)")
        if result.failed:
            raise CommandError(f"{len(result.failed)} layer(s) could not be indexed", returncode=1)
