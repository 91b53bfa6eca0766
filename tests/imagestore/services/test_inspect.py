from __future__ import annotations

import json

import pytest

from imagestore.blobs import get_store
from imagestore.errors import BadRequest
from imagestore.services.inspect import format_inspect, inspect_image
from imagestore.services.tag import tag_image

pytestmark = pytest.mark.django_db


def test_inspect_has_dockers_shape(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    tag_image(image, "centos:latest")
    data = inspect_image(image)
    config = json.loads(get_store().read_bytes(image.id))
    assert data["Id"] == image.id
    assert data["RepoTags"] == ["centos:6.6", "centos:latest"]
    assert data["RepoDigests"] == []
    assert data["Parent"] == ""
    assert data["Comment"] == "Imported from -"
    assert data["Created"] == config["created"]
    assert data["Architecture"] == config["architecture"] and data["Os"] == "linux"
    assert data["Size"] == image.size
    assert data["RootFS"] == {"Type": "layers", "Layers": config["rootfs"]["diff_ids"]}
    assert data["Config"]["Cmd"] is None and data["Config"]["Env"] is None
    assert data["Metadata"]["LastTagTime"].endswith("Z")
    for key in ("DockerVersion", "Author", "GraphDriver"):
        assert key in data


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.Architecture}}", "{arch}"),
        ("{{.Config.Cmd}}", "[]"),
        ("{{json .RepoTags}}", '["centos:6.6"]'),
        ("{{.Os}}/{{.Architecture}}", "linux/{arch}"),
        ("{{range .RepoTags}}{{.}};{{end}}", "centos:6.6;"),
        ("{{len .RootFS.Layers}}", "1"),
        ("{{json .Config.Labels}}", "null"),
    ],
)
def test_format_templates_like_docker_inspect_f(make_image, template: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    data = inspect_image(image)
    assert format_inspect(data, template) == expected.format(arch=data["Architecture"])


def test_json_of_config_is_the_whole_object(make_image) -> None:  # type: ignore[no-untyped-def]
    data = inspect_image(make_image())
    assert json.loads(format_inspect(data, "{{json .Config}}")) == data["Config"]


@pytest.mark.parametrize("template", ["{{.Architecture", "{{nosuchfunc .Os}}", "{{end}}", "{{range .RepoTags}}"])
def test_bad_template_is_a_clear_error(make_image, template: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadRequest, match="template"):
        format_inspect(inspect_image(make_image()), template)
