"""``docker import`` from the command line: ``manage.py import_image FILE|- [REPOSITORY[:TAG]] [-m MESSAGE]``."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from imagestore.errors import COMMAND_ERRORS
from imagestore.services.import_ import import_image


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # a data command: start fast, as the docker CLI does
    help = "Import a root filesystem tarball (plain, gzip, bzip2, xz or zstd) as an image."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="the tarball, or - for standard input")
        parser.add_argument("repository", nargs="?", default=None, help="REPOSITORY[:TAG] to tag the image")
        parser.add_argument("-m", "--message", default="", help="commit message for the imported image")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        try:
            if path == "-":
                image = import_image(sys.stdin.buffer, repository=options["repository"], message=options["message"])
            else:
                with open(path, "rb") as source:
                    image = import_image(source, source_name="-", total=os.path.getsize(path),
                                         repository=options["repository"], message=options["message"])
        except COMMAND_ERRORS as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(image.id)
