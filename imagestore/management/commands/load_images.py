"""``docker load -i FILE`` from the command line (``-`` reads standard input)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from imagestore.errors import COMMAND_ERRORS
from imagestore.services.load import load_archive


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # a data command: start fast, as the docker CLI does
    help = "Load the images of an archive written by docker save, skopeo or podman."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("input", help="the archive, or - for standard input")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["input"] == "-":
                lines = load_archive(sys.stdin.buffer)
            else:
                with open(options["input"], "rb") as source:
                    lines = load_archive(source)
        except COMMAND_ERRORS as exc:
            raise CommandError(str(exc)) from None
        for line in lines:
            self.stdout.write(line)
