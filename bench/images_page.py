"""First page of the images list with 10,000 images: median time of the rendered page
(Django's test client, so no network), against the 300 ms target. A throw-away SQLite
store unless DATABASE_URL says otherwise."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COUNT = int(os.environ.get("BENCH_IMAGES", "10000"))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-page-"))
    os.environ.setdefault("VAR_DIR", str(work / "var"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{work / 'bench.sqlite3'}")
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from imagestore.models import Image, Repository, Tag

    setup_test_environment()
    call_command("migrate", verbosity=0)
    now = timezone.now()
    repository = Repository.objects.create(registry="docker.io", path="library/bench")
    images = [Image(id="sha256:" + f"{i:064x}", config_size=100, created=now - timedelta(seconds=i), size=1000 + i)
              for i in range(COUNT)]
    Image.objects.bulk_create(images, batch_size=2000)
    Tag.objects.bulk_create([Tag(repository=repository, name=f"t{i}", image=images[i]) for i in range(COUNT // 2)],
                            batch_size=2000)
    user = User.objects.create_user("bench", is_staff=True)
    client = Client()
    client.force_login(user)
    client.get("/images/")
    times = []
    for _ in range(7):
        start = time.perf_counter()
        response = client.get("/images/")
        times.append(time.perf_counter() - start)
        assert response.status_code == 200
    median = statistics.median(times) * 1000
    print(f"images page, first page of {COUNT} images: median {median:.0f} ms over {len(times)} runs "
          f"(min {min(times) * 1000:.0f} ms); target < 300 ms: ratio {median / 300:.2f}x")


if __name__ == "__main__":
    main()
