"""``manage.py create_token USER [--name N] [--expires-days N]``: prints a new API token's key,
the only time it is shown (only its hash is stored)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...errors import USER_ERRORS
from ...services.tokens import create_token


class Command(BaseCommand):
    help = "Create an API token for a user and print its key (shown once; only its hash is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="what the token is for")
        parser.add_argument("--expires-days", type=int, default=None,
                            help="days until it expires (0: never; default API_TOKEN_DEFAULT_EXPIRY_DAYS)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user named {options['username']!r}")
        days = options["expires_days"]
        if days is None:
            days = settings.API_TOKEN_DEFAULT_EXPIRY_DAYS
        try:
            _, key = create_token(user, name=options["name"], expires_days=days)
        except USER_ERRORS as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(key)
