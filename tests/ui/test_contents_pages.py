"""The pages for what is inside an image: the file tree (directories, expand, layer toggle,
search, wasted files marked, a text file, downloads), packages with a filter and SBOM links,
the compare picker and the side-by-side diff, and the images table's update badge."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from imagestore.models import Image
from imagestore.services.import_ import import_image
from imagestore.services.load import load_archive
from tests.builders import directory, docker_archive, tar_bytes

pytestmark = pytest.mark.django_db

STATUS = b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n"


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def image() -> Image:
    base = tar_bytes([directory("etc"), ("etc/os-release", b"ID=debian\n"), ("var/lib/dpkg/status", STATUS),
                      ("opt/big.bin", b"x" * 5000)])
    top = tar_bytes([("opt/big.bin", b"y" * 6000)])
    load_archive(io.BytesIO(docker_archive([base, top], "inside/app:1")))
    return Image.objects.get(tags__name="1")


def test_the_file_tree_browses_expands_searches_and_marks_wasted_files(image: Image, member) -> None:  # type: ignore[no-untyped-def]
    client = _client(member)
    root = client.get(f"/images/{image.id}/files/").content.decode()
    assert 'data-entry="/etc"' in root and 'data-entry="/opt"' in root and "hx-get" in root
    etc = client.get(f"/images/{image.id}/files/", {"path": "/etc"}).content.decode()
    assert 'data-entry="/etc/os-release"' in etc and "/files/view/?path=/etc/os-release" in etc
    rows = client.get(f"/images/{image.id}/files/", {"path": "/opt", "part": "rows"}).content.decode()
    assert rows.lstrip().startswith("<tr") and 'class="table-warning"' in rows and "wasted" in rows
    base_only = client.get(f"/images/{image.id}/files/", {"path": "/opt", "layer": "0"}).content.decode()
    assert "4.9\xa0KB" in base_only or "4.9 KB" in base_only
    found = client.get(f"/images/{image.id}/files/", {"glob": "**/os-*"}).content.decode()
    assert 'data-entry="/etc/os-release"' in found and 'data-entry="/opt/big.bin"' not in found
    page = client.get(f"/images/{image.id}/files/view/", {"path": "/etc/os-release"}).content.decode()
    assert "ID=debian" in page and f"/api/v1/images/{image.id}/files/content/?path=/etc/os-release" in page
    assert client.get(f"/images/{image.id}/files/view/", {"path": "/nope"}).status_code == 404
    assert client.get(f"/images/{image.id}/files/view/", {"path": "/etc"}).status_code == 400


def test_packages_page_filters_and_links_the_sboms(image: Image, member) -> None:  # type: ignore[no-untyped-def]
    client = _client(member)
    page = client.get(f"/images/{image.id}/packages/").content.decode()
    assert "libc6" in page and "2.36-9" in page and "sbom/?format=spdx-json" in page and "cyclonedx-json" in page
    assert "libc6" not in client.get(f"/images/{image.id}/packages/", {"name": "zzz"}).content.decode()


def test_compare_picker_leads_to_the_side_by_side_diff(image: Image, member) -> None:  # type: ignore[no-untyped-def]
    other = import_image(io.BytesIO(tar_bytes([("etc/os-release", b"ID=alpine\n")])), repository="inside/other:1")
    client = _client(member)
    detail = client.get(f"/images/{image.id}/").content.decode()
    assert 'action="/images/diff/"' in detail and f'value="{other.id}"' in detail
    diff = client.get("/images/diff/", {"from": image.id, "to": other.id}).content.decode()
    assert "libc6" in diff and "/etc/os-release" in diff and "/opt/big.bin" in diff
    assert client.get("/images/diff/", {"from": image.id, "to": "nope:1"}).status_code == 404


def test_images_table_badges_an_update_and_offers_the_pull(image: Image, operator) -> None:  # type: ignore[no-untyped-def]
    Image.objects.filter(pk=image.pk).update(update_available=True)
    page = _client(operator).get("/images/").content.decode()
    assert "data-update-available" in page and 'name="reference" value="inside/app:1"' in page
