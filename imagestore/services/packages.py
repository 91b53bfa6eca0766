"""The packages inside an image, read from the package databases its layers' indexes kept
(no layer is read again), with the layer that installed each; stored as ImagePackage rows so
one query answers "which images hold openssl 1.0.1e"; and the image's SBOM (SPDX 2.3 JSON,
CycloneDX 1.5 JSON) with package URLs.

Which layer installed a package: a database file (dpkg's status, apk's installed) is rewritten
by every layer that installs something; walking its versions upward, a package's layer is the
lowest one from which it is listed, at its final version, in every later version of the file.
A Python or Node package's layer is the one that wrote its metadata file.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from ..errors import BadRequest
from ..models import Image, ImagePackage
from ..oci import packages as readers
from ..oci.packages import Package
from . import files

log = logging.getLogger(__name__)

SBOM_FORMATS = ("spdx-json", "cyclonedx-json")


def _distro(found: files.ImageContents) -> dict[str, str]:
    tree = found.merged
    for path in readers.OS_RELEASE:
        try:
            resolved = files.resolve(tree, path)
        except BadRequest:
            continue
        node = tree.nodes.get(resolved)
        if node is not None:
            data = found.indexes[node.layer].files.get(resolved)
            if data is not None:
                return readers.os_release(data)
    return {}


def read_packages(found: files.ImageContents) -> list[Package]:
    """Every package of the image's merged view, each with the layer that installed it."""
    tree = found.merged
    # Database files that hold several packages, by path: their versions, layer by layer.
    histories: dict[str, list[tuple[int, bytes]]] = {}
    singles: list[Package] = []
    for path, node in tree.nodes.items():
        found_reader = readers.reader_for(path)
        if found_reader is None or node.entry.type != "file":
            continue
        kind, reader = found_reader
        read: Callable[[bytes, str], list[Package]] = reader  # type: ignore[assignment]
        if kind in ("python", "npm"):
            data = found.indexes[node.layer].files.get(path)
            if data is not None:
                singles += [p.with_layer(node.layer) for p in read(data, path)]
            continue
        histories[path] = [(n, index.files[path]) for n, index in enumerate(found.indexes[:node.layer + 1])
                           if path in index.files]
    out = list(singles)
    for path, versions in histories.items():
        found_reader = readers.reader_for(path)
        assert found_reader is not None
        read = found_reader[1]  # type: ignore[assignment]
        since: dict[tuple[str, str, str], tuple[str, int]] = {}
        final: list[Package] = []
        for n, data in versions:
            listed = read(data, path)
            current = {}
            for package in listed:
                key = package.key()
                previous = since.get(key)
                current[key] = (package.version, previous[1] if previous and previous[0] == package.version else n)
            since = current
            final = listed
        out += [p.with_layer(since[p.key()][1]) for p in final]
    out.sort(key=lambda p: (p.kind, p.name, p.arch, p.path))
    return out


def scan_image(image: Image) -> list[ImagePackage]:
    """Read the image's packages and store them as its ImagePackage rows (replacing any)."""
    found = files.contents(image)
    distro = _distro(found)
    rows = [ImagePackage(image=image, kind=p.kind, name=p.name[:255], version=p.version[:255], arch=p.arch[:64],
                         source=p.source[:255], license=p.license, purl=readers.purl(p, distro), layer=p.layer,
                         path=p.path) for p in read_packages(found)]
    with transaction.atomic():
        ImagePackage.objects.filter(image=image).delete()
        ImagePackage.objects.bulk_create(rows, batch_size=1000)
        Image.objects.filter(pk=image.pk).update(packages_scanned_at=timezone.now())
    image.packages_scanned_at = timezone.now()
    return rows


def scan_quietly(image: Image) -> None:
    """Scan at arrival; a failure is logged (the packages are read again on first view)."""
    try:
        scan_image(image)
    except Exception:  # noqa: BLE001 - an image's arrival never fails for its package list
        log.exception("reading the packages of %s failed", image.id)


def image_packages(image: Image) -> Any:
    """The image's ImagePackage rows (read now if the image was never scanned)."""
    if image.packages_scanned_at is None:
        scan_image(image)
    return ImagePackage.objects.filter(image=image).order_by("kind", "name", "arch")


def search_packages(name: str = "", version: str = "", kind: str = "") -> Any:
    """Package rows across the store, with their images (``name`` exact, as the Heartbleed
    question asks: ``openssl`` at ``1.0.1e``)."""
    rows = ImagePackage.objects.select_related("image").order_by("name", "version", "image_id")
    if name:
        rows = rows.filter(name=name)
    if version:
        rows = rows.filter(version=version)
    if kind:
        rows = rows.filter(kind=kind)
    return rows


# --- SBOM ------------------------------------------------------------------------------------

def _image_name(image: Image) -> str:
    tags = sorted(f"{t.repository.name}:{t.name}" for t in image.tags.select_related("repository"))
    return tags[0] if tags else image.id


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def sbom(image: Image, fmt: str) -> dict[str, Any]:
    if fmt not in SBOM_FORMATS:
        raise BadRequest(gettext("unknown SBOM format %(format)s: use spdx-json or cyclonedx-json")
                         % {"format": fmt[:40]}, field="format")
    rows = list(image_packages(image))
    name = _image_name(image)
    return _spdx(image, name, rows) if fmt == "spdx-json" else _cyclonedx(image, name, rows)


def _spdx_id(n: int) -> str:
    return f"SPDXRef-Package-{n}"


def _spdx(image: Image, name: str, rows: list[ImagePackage]) -> dict[str, Any]:
    """SPDX 2.3 (https://spdx.github.io/spdx-spec/v2.3/): the image as the described package,
    containing one package per row, each with its purl as an external reference."""
    root = "SPDXRef-Image"
    packages: list[dict[str, Any]] = [{
        "SPDXID": root, "name": name, "versionInfo": image.id, "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False, "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": image.hex}],
    }]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": root}]
    for n, row in enumerate(rows, start=1):
        entry: dict[str, Any] = {
            "SPDXID": _spdx_id(n), "name": row.name, "versionInfo": row.version or "NOASSERTION",
            "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION",
            "sourceInfo": f"read from /{row.path} (layer {row.layer})",
        }
        if row.purl:
            entry["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                      "referenceLocator": row.purl}]
        packages.append(entry)
        relationships.append({"spdxElementId": root, "relationshipType": "CONTAINS", "relatedSpdxElement": _spdx_id(n)})
    return {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": name,
        "documentNamespace": f"https://imagestore.invalid/spdx/{image.hex}/{uuid.uuid4()}",
        "creationInfo": {"created": _now(), "creators": ["Tool: imagestore"]},
        "packages": packages, "relationships": relationships,
    }


_CDX_TYPES = {"deb": "library", "apk": "library", "rpm": "library", "python": "library", "npm": "library"}


def _cyclonedx(image: Image, name: str, rows: list[ImagePackage]) -> dict[str, Any]:
    """CycloneDX 1.5 JSON (https://cyclonedx.org/docs/1.5/json/): the image as the container
    component, one library component per package, with purl and licence where known."""
    components = []
    for row in rows:
        component: dict[str, Any] = {"type": _CDX_TYPES[row.kind], "bom-ref": row.purl or f"{row.kind}:{row.name}",
                                     "name": row.name, "version": row.version}
        if row.purl:
            component["purl"] = row.purl
        if row.license and len(row.license) < 200:
            component["licenses"] = [{"license": {"name": row.license}}]
        component["properties"] = [{"name": "imagestore:layer", "value": str(row.layer)},
                                   {"name": "imagestore:path", "value": "/" + row.path}]
        components.append(component)
    seen: set[str] = set()
    for component in components:  # bom-refs must be unique
        ref = component["bom-ref"]
        while ref in seen:
            ref += "#dup"
        component["bom-ref"] = ref
        seen.add(ref)
    return {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "metadata": {"timestamp": _now(), "component": {"type": "container", "bom-ref": image.id, "name": name,
                                                        "version": image.id}},
        "components": components,
    }
