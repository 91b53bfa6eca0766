from __future__ import annotations

import hashlib
import io
import json

import pytest

from imagestore.models import Image
from imagestore.services.history import image_history
from imagestore.services.load import load_archive
from tests.builders import tar_bytes

pytestmark = pytest.mark.django_db


def test_history_of_an_import_is_one_row_with_the_layer(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    [row] = image_history(image)
    layer = image.layers.get()
    assert row == {"Id": image.id, "Created": int(image.created.timestamp()), "CreatedBy": "",
                   "Tags": ["busybox:latest"], "Size": layer.uncompressed_size, "Comment": "Imported from -",
                   "Layer": layer.diff_id}


def _load_image_with_history(history: list[dict], layers: list[bytes]) -> Image:  # type: ignore[type-arg]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-05-01T10:00:00Z", "history": history,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]},
    }).encode()
    entries = [(f"l{i}/layer.tar", data) for i, data in enumerate(layers)]
    entries += [("c.json", config), ("manifest.json", json.dumps(
        [{"Config": "c.json", "RepoTags": ["hist:1"], "Layers": [f"l{i}/layer.tar" for i in range(len(layers))]}]
    ).encode())]
    load_archive(io.BytesIO(tar_bytes(entries)))
    return Image.objects.get()


def test_history_newest_first_with_empty_layers_sized_zero(db) -> None:  # type: ignore[no-untyped-def]
    base = tar_bytes([("bin/sh", b"x" * 1000)])
    app = tar_bytes([("app/run", b"y" * 3000)])
    image = _load_image_with_history([
        {"created": "2024-05-01T09:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in /"},
        {"created": "2024-05-01T09:00:01Z", "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
        {"created": "2024-05-01T10:00:00Z", "created_by": "/bin/sh -c make install", "comment": "built"},
    ], [base, app])
    rows = image_history(image)
    assert [r["CreatedBy"] for r in rows] == ["/bin/sh -c make install", '/bin/sh -c #(nop)  CMD ["sh"]',
                                             "/bin/sh -c #(nop) ADD file:abc in /"]
    assert [r["Size"] for r in rows] == [len(app), 0, len(base)]
    assert [r["Id"] for r in rows] == [image.id, "<missing>", "<missing>"]
    assert rows[0]["Tags"] == ["hist:1"] and rows[1]["Tags"] is None
    assert rows[0]["Comment"] == "built" and rows[0]["Created"] == 1714557600
    assert rows[1]["Layer"] is None and rows[2]["Layer"] == "sha256:" + hashlib.sha256(base).hexdigest()


def test_config_without_history_still_shows_every_layer(db) -> None:  # type: ignore[no-untyped-def]
    image = _load_image_with_history([], [tar_bytes([("a", b"1")]), tar_bytes([("b", b"22")])])
    rows = image_history(image)
    assert len(rows) == 2 and all(r["Layer"] for r in rows)
