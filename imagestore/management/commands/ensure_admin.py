"""Create the first admin user once: ``admin`` (or DJANGO_SUPERUSER_USERNAME).

The password comes from DJANGO_SUPERUSER_PASSWORD, or is generated and printed
this one time.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from imagestore.permissions import OPERATORS_GROUP


class Command(BaseCommand):
    help = "Create the first superuser if none exists, and the operators group."

    def handle(self, *args: Any, **options: Any) -> None:
        Group.objects.get_or_create(name=OPERATORS_GROUP)
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if generated:
            self.stdout.write(f"Created admin user {username!r} with password: {password}  (shown once)")
        else:
            self.stdout.write(f"Created admin user {username!r} with the password from DJANGO_SUPERUSER_PASSWORD")
