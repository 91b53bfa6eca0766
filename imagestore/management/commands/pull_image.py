"""``docker pull NAME[:TAG|@DIGEST]`` from the command line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from imagestore.errors import COMMAND_ERRORS
from imagestore.services.pull import pull_image


class _Lines:
    def __init__(self, command: BaseCommand) -> None:
        self.command = command

    def update(self, item: str, done: int, total: int | None, phase: str) -> None:
        return None

    def log(self, line: str) -> None:
        self.command.stdout.write(line)


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # a data command: start fast, as the docker CLI does
    help = "Pull an image from its registry (mirrors first for docker.io)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("reference")
        parser.add_argument("--platform", default=None, help="os/architecture[/variant], default this server's")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            pull_image(options["reference"], platform=options["platform"], progress=_Lines(self))
        except COMMAND_ERRORS as exc:
            raise CommandError(str(exc)) from None
