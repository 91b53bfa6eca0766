"""The browser pages. Each view reads a form, calls one service, and renders; the live
parts (job progress) poll the REST API from small plain JavaScript."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from imagestore.errors import ServiceError
from imagestore.models import Container, Image, ImageLayer, Job
from imagestore.oci.errors import OCIError
from imagestore.permissions import is_operator
from imagestore.services.history import image_history
from imagestore.services.images import ImageFilters, list_image_rows, resolve_image
from imagestore.services.inspect import format_inspect, inspect_image
from imagestore.services.jobs import cancel_job, get_job
from imagestore.services.pull import start_pull
from imagestore.services.remove import remove_image
from imagestore.services.search import LOCAL, SearchFilters, search
from imagestore.services.tag import tag_image

Errors = (ServiceError, OCIError)


def _operator_only(request: HttpRequest) -> None:
    if not is_operator(request.user):
        raise PermissionDenied("changing images needs staff or the operators group")


class ImageFilterForm(forms.Form):
    reference = forms.CharField(required=False, label="Reference", max_length=512,
                                widget=forms.TextInput(attrs={"placeholder": "centos:*", "type": "search"}))
    dangling = forms.ChoiceField(required=False, choices=[("", "all"), ("true", "dangling only"),
                                                          ("false", "tagged only")])


@login_required
def images(request: HttpRequest) -> HttpResponse:
    form = ImageFilterForm(request.GET or None)
    rows: Any = []
    page = None
    if form.is_valid() or not request.GET:
        data = form.cleaned_data if request.GET else {}
        dangling = {"true": True, "false": False}.get(data.get("dangling") or "")
        try:
            queryset = list_image_rows(ImageFilters(reference=[data["reference"]] if data.get("reference") else [],
                                                    dangling=dangling))
            page = Paginator(queryset, 50).get_page(request.GET.get("page"))
            rows = list(page.object_list)
        except Errors as exc:
            form.add_error("reference", str(exc))
    ids = [r["row_image"] for r in rows]
    in_use = set(Container.objects.filter(image_id__in=ids).values_list("image_id", flat=True))
    for row in rows:
        row["in_use"] = row["row_image"] in in_use
        row["short_id"] = row["row_image"].split(":", 1)[1][:12]
    return render(request, "ui/images.html", {"form": form, "rows": rows, "page": page,
                                              "can_change": is_operator(request.user)})


class TagForm(forms.Form):
    repository = forms.CharField(max_length=512, widget=forms.TextInput(attrs={"placeholder": "repo/name:tag"}))


@login_required
@require_http_methods(["GET", "POST"])
def image_detail(request: HttpRequest, ref: str) -> HttpResponse:
    try:
        image = resolve_image(ref)
    except Errors as exc:
        return render(request, "ui/error.html", {"message": str(exc)}, status=getattr(exc, "status", 400) or 400)
    tag_form = TagForm()
    if request.method == "POST":
        _operator_only(request)
        action = request.POST.get("action")
        if action == "tag":
            tag_form = TagForm(request.POST)
            if tag_form.is_valid():
                try:
                    tag = tag_image(image, tag_form.cleaned_data["repository"])
                    messages.success(request, f"Tagged {tag}")
                    return HttpResponseRedirect(request.path)
                except Errors as exc:
                    tag_form.add_error("repository", str(exc))
        elif action == "remove":
            try:
                records = remove_image(request.POST.get("name") or image.id, force=request.POST.get("force") == "1")
            except Errors as exc:
                messages.error(request, str(exc))
                return HttpResponseRedirect(request.path)
            messages.success(request, "; ".join(f"{k}: {v}" for r in records for k, v in r.items()))
            if Image.objects.filter(pk=image.pk).exists():
                return HttpResponseRedirect(request.path)
            return HttpResponseRedirect(reverse("ui-images"))
    data = inspect_image(image)
    template = request.GET.get("format", "")
    formatted = error = ""
    if template:
        try:
            formatted = format_inspect(data, template)
        except Errors as exc:
            error = str(exc)
    links = list(ImageLayer.objects.filter(image=image).select_related("layer").order_by("position"))
    shared = dict(ImageLayer.objects.filter(layer__in=[link.layer_id for link in links]).values("layer")
                  .annotate(n=Count("image", distinct=True)).values_list("layer", "n"))
    history = image_history(image)
    return render(request, "ui/image_detail.html", {
        "image": image, "inspect": data, "inspect_json": json.dumps(data, indent=2),
        "layers": [{"link": link, "shared_with": shared.get(link.layer_id, 1) - 1} for link in links],
        "history": history, "containers": list(image.containers.all()), "tag_form": tag_form,
        "format": template, "formatted": formatted, "format_error": error, "can_change": is_operator(request.user),
    })


class PullForm(forms.Form):
    reference = forms.CharField(max_length=512, widget=forms.TextInput(attrs={"placeholder": "centos:6.6"}))
    platform = forms.CharField(max_length=64, required=False,
                               widget=forms.TextInput(attrs={"placeholder": "linux/amd64 (default: this server's)"}))


@login_required
@require_http_methods(["GET", "POST"])
def pull(request: HttpRequest) -> HttpResponse:
    form = PullForm(request.POST or None, initial={"reference": request.GET.get("reference", "")})
    if request.method == "POST":
        _operator_only(request)
        if form.is_valid():
            try:
                job = start_pull(form.cleaned_data["reference"], form.cleaned_data["platform"] or None,
                                 owner=request.user)
                return HttpResponseRedirect(reverse("ui-job", args=[job.id]))
            except Errors as exc:
                field = "platform" if "platform" in str(exc) else "reference"
                form.add_error(field, str(exc))
    return render(request, "ui/pull.html", {"form": form, "can_change": is_operator(request.user)})


@login_required
def jobs(request: HttpRequest) -> HttpResponse:
    page = Paginator(Job.objects.select_related("owner").order_by("-created_at"), 50).get_page(request.GET.get("page"))
    return render(request, "ui/jobs.html", {"page": page})


@login_required
@require_http_methods(["GET", "POST"])
def job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    try:
        job = get_job(job_id)
    except Errors as exc:
        return render(request, "ui/error.html", {"message": str(exc)}, status=404)
    if request.method == "POST":
        _operator_only(request)
        try:
            cancel_job(job)
            messages.success(request, "Cancel requested")
        except Errors as exc:
            messages.error(request, str(exc))
        return HttpResponseRedirect(request.path)
    return render(request, "ui/job.html", {"job": job, "can_change": is_operator(request.user)})


class SearchForm(forms.Form):
    term = forms.CharField(max_length=256, widget=forms.TextInput(attrs={"type": "search", "placeholder": "mysql"}))
    registry = forms.CharField(required=False, max_length=255,
                               widget=forms.TextInput(attrs={"placeholder": "Docker Hub, a host:port, or local"}))
    stars = forms.IntegerField(required=False, min_value=0)
    is_official = forms.BooleanField(required=False, label="official only")
    is_automated = forms.BooleanField(required=False, label="automated only")
    no_trunc = forms.BooleanField(required=False, label="full descriptions")


@login_required
def search_page(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    results = None
    if request.GET and form.is_valid():
        data = form.cleaned_data
        try:
            results = search(
                data["term"], registry=(data["registry"] or None), no_trunc=data["no_trunc"], owner=request.user,
                filters=SearchFilters(data["stars"] or 0, True if data["is_official"] else None,
                                      True if data["is_automated"] else None),
            )
        except Errors as exc:
            form.add_error("registry" if data.get("registry") else "term", str(exc))
    return render(request, "ui/search.html", {"form": form, "results": results, "local": LOCAL,
                                              "can_change": is_operator(request.user)})
