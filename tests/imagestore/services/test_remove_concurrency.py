"""rmi racing tag and import: whatever the interleaving, the store stays consistent.

Runs on the suite's database (PostgreSQL in CI, where rows are locked for real).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

import pytest
from django.db import connection

from imagestore.blobs import get_store
from imagestore.errors import ImageNotFound
from imagestore.models import Image, ImageLayer, Tag
from imagestore.services.import_ import import_image
from imagestore.services.remove import remove_image
from imagestore.services.tag import tag_image
from tests.builders import simple_rootfs_tar

pytestmark = pytest.mark.django_db(transaction=True)


def _race(*actions: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(i: int, action: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[i] = action()
        except Exception as exc:  # noqa: BLE001 - the outcome is what we check
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _assert_consistent() -> None:
    store = get_store()
    for image in Image.objects.all():
        assert store.exists(image.id), f"config of surviving {image.short_id} was deleted"
    for link in ImageLayer.objects.select_related("layer"):
        assert store.exists(link.layer.digest), f"layer blob of surviving image {link.image_id} was deleted"
    assert not Tag.objects.exclude(image__in=Image.objects.all()).exists()


def test_tag_racing_the_removal_of_the_last_tag(db) -> None:  # type: ignore[no-untyped-def]
    for round_ in range(8):
        image = import_image(io.BytesIO(simple_rootfs_tar(f"tag-{round_}")), repository=f"x:{round_}")
        removed, tagged = _race(lambda: remove_image(f"x:{round_}"),  # noqa: B023 - used within the round
                                lambda: tag_image(image, f"y:{round_}"))  # noqa: B023
        if isinstance(tagged, ImageNotFound):
            assert not Image.objects.filter(pk=image.pk).exists()  # removal won; tag refused
        else:
            assert isinstance(tagged, Tag), tagged
            assert Image.objects.filter(pk=image.pk).exists()  # tag won; removal only untagged x
            assert removed == [{"Untagged": f"x:{round_}"}]
        _assert_consistent()


def test_import_racing_the_removal_of_the_image_holding_its_layer(db) -> None:  # type: ignore[no-untyped-def]
    for round_ in range(8):
        rootfs = simple_rootfs_tar(f"import-{round_}")
        import_image(io.BytesIO(rootfs), repository=f"old:{round_}")
        removed, imported = _race(lambda: remove_image(f"old:{round_}"),  # noqa: B023
                                  lambda: import_image(io.BytesIO(rootfs), repository=f"new:{round_}"))  # noqa: B023
        assert isinstance(removed, list), removed
        assert isinstance(imported, Image), imported
        _assert_consistent()
        assert get_store().exists(imported.layers.get().digest)
