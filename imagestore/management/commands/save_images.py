"""``docker save -o FILE NAME...`` from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from imagestore.errors import COMMAND_ERRORS
from imagestore.services.save import save_to_file


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # a data command: start fast, as the docker CLI does
    help = "Save images (names, tags or ids) into one archive, as docker save writes it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("names", nargs="+")
        parser.add_argument("-o", "--output", required=True, help="the archive to write")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            size = save_to_file(options["names"], Path(options["output"]).resolve())
        except COMMAND_ERRORS as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{size} bytes")
