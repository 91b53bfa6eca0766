"""Pages for what is inside an image: its file tree (merged or one layer, a search, wasted
files marked, a text file shown), its packages (filter, SBOM download) and the side-by-side
diff of two images. Each view calls one service (services.files, packages, diff)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from imagestore.errors import USER_ERRORS, BadRequest
from imagestore.models import Image, Tag
from imagestore.services import diff as diff_service
from imagestore.services import files as file_service
from imagestore.services import packages as package_service
from imagestore.services.images import resolve_image

MAX_VIEW = 1 << 20  # bytes of a text file shown on the page; the rest is a download away
MAX_ROWS = 2000  # entries of one directory or search shown at once


def _error(request: HttpRequest, exc: Exception) -> HttpResponse:
    return render(request, "ui/error.html", {"message": str(exc)}, status=getattr(exc, "status", 400) or 400)


def _layer(request: HttpRequest) -> int | None:
    text = request.GET.get("layer", "")
    return int(text) if text.isdigit() and len(text) < 5 else None


def _crumbs(path: str) -> list[dict[str, str]]:
    parts = [p for p in path.split("/") if p]
    return [{"name": part, "path": "/" + "/".join(parts[:i + 1])} for i, part in enumerate(parts)]


@login_required
def image_files(request: HttpRequest, ref: str) -> HttpResponse:
    """The file tree: one directory (``path``), or a search (``glob``); ``layer`` for one
    layer's own entries; ``part=rows`` answers only the rows (htmx expands a directory)."""
    try:
        image = resolve_image(ref)
        layer = _layer(request)
        glob = request.GET.get("glob", "").strip()
        path = file_service.clean_path(request.GET.get("path"))
        rows = file_service.list_files(image, "/" + path, layer=layer, glob=glob or None)
        efficiency = file_service.efficiency(image, top=10_000)
        layer_count = len(file_service.contents(image).layers)
    except USER_ERRORS as exc:
        return _error(request, exc)
    wasted = {o["path"]: o for o in efficiency["offenders"]}
    for row in rows:
        row["wasted"] = wasted.get(row["path"])
        row["is_dir"] = row["type"] == "dir"
    context: dict[str, Any] = {
        "image": image, "rows": rows[:MAX_ROWS], "truncated": len(rows) > MAX_ROWS, "count": len(rows),
        "path": "/" + path, "crumbs": _crumbs(path), "layer": layer, "layers": range(layer_count), "glob": glob,
        "efficiency": efficiency,
    }
    if request.GET.get("part") == "rows":
        return render(request, "ui/_file_rows.html", context)
    return render(request, "ui/image_files.html", context)


@login_required
def image_file_view(request: HttpRequest, ref: str) -> HttpResponse:
    """A text file shown on the page (its first MiB), or a word that it is binary; without a
    path, the file tree."""
    if not request.GET.get("path"):
        return image_files(request, ref)
    try:
        image = resolve_image(ref)
        layer = _layer(request)
        found = file_service.read_content(image, request.GET.get("path") or "", layer=layer)
        if found.is_directory:
            found.chunks.close()  # type: ignore[attr-defined]
            raise BadRequest(_("/%(path)s is a directory") % {"path": found.path}, field="path")
        data = b""
        for chunk in found.chunks:
            data += chunk
            if len(data) > MAX_VIEW:
                break
        found.chunks.close()  # type: ignore[attr-defined]
    except USER_ERRORS as exc:
        return _error(request, exc)
    shown = data[:MAX_VIEW]
    binary = b"\0" in shown[:8192]
    text = "" if binary else shown.decode("utf-8", "replace")
    return render(request, "ui/image_file_view.html", {
        "image": image, "path": "/" + found.path, "crumbs": _crumbs(found.path), "entry": found.entry,
        "text": text, "binary": binary, "cut": len(data) > MAX_VIEW, "layer": layer,
        "size": found.entry.size,
    })


@login_required
def image_packages(request: HttpRequest, ref: str) -> HttpResponse:
    try:
        image = resolve_image(ref)
        rows = package_service.image_packages(image)
    except USER_ERRORS as exc:
        return _error(request, exc)
    name = request.GET.get("name", "").strip()[:255]
    kind = request.GET.get("kind", "")
    if name:
        rows = rows.filter(name__icontains=name)
    if kind in ("deb", "apk", "rpm", "python", "npm"):
        rows = rows.filter(kind=kind)
    return render(request, "ui/image_packages.html", {"image": image, "rows": list(rows[:5000]), "name": name,
                                                       "kind": kind})


def compare_choices(image: Image) -> list[tuple[str, str]]:
    """Other images to compare with, by tag (one query)."""
    tags = Tag.objects.exclude(image=image).select_related("repository").order_by("repository__name", "name")[:500]
    return [(t.image_id, f"{t.repository.name}:{t.name}") for t in tags]


@login_required
def image_diff(request: HttpRequest) -> HttpResponse:
    """Two images side by side: what changed from ``from`` to ``to``; without both, the picker."""
    if not (request.GET.get("from") and request.GET.get("to")):
        tags = Tag.objects.select_related("repository").order_by("repository__name", "name")[:500]
        choices = [(t.image_id, f"{t.repository.name}:{t.name}") for t in tags]
        return render(request, "ui/image_diff.html", {"choices": choices, "diff": None})
    try:
        old = resolve_image(request.GET.get("from", ""))
        new = resolve_image(request.GET.get("to", ""))
        diff = diff_service.diff_images(old, new)
    except USER_ERRORS as exc:
        return _error(request, exc)
    return render(request, "ui/image_diff.html", {"old": old, "new": new, "diff": diff})
