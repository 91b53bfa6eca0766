"""The URL of the database this process is using, for the helper processes it starts
(a container's supervisor must write to the same database, the test database included)."""

from __future__ import annotations

from urllib.parse import quote

from django.db import connection


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "postgres")
    password = f":{quote(str(db['PASSWORD']))}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
