"""The browser pages. Each view reads a form (ui/forms.py), calls one service, and renders;
the live parts (job progress) poll the REST API from small plain JavaScript."""

from __future__ import annotations

import csv
import json
import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods
from django_htmx.middleware import HtmxDetails

from imagestore.downloads import archive_response
from imagestore.errors import USER_ERRORS, user_message
from imagestore.models import (
    AuditEvent,
    Container,
    Image,
    ImageLayer,
    Job,
    RegistryCredential,
    RetentionPolicy,
    Webhook,
    WebhookDelivery,
)
from imagestore.oci.redact import redact_text
from imagestore.permissions import is_operator
from imagestore.services import audit
from imagestore.services import containers as container_service
from imagestore.services import retention as retention_service
from imagestore.services import webhooks as webhook_service
from imagestore.services.containers.console import run_container
from imagestore.services.history import image_history
from imagestore.services.images import (
    ImageFilters,
    count_image_rows,
    image_sizes,
    list_image_rows,
    resolve_image,
    store_totals,
)
from imagestore.services.import_ import start_import_from
from imagestore.services.inspect import format_inspect, inspect_image
from imagestore.services.jobs import cancel_job, get_job
from imagestore.services.load import start_load_from
from imagestore.services.login import login, logout
from imagestore.services.overview import job_lists
from imagestore.services.overview import overview as overview_of_store
from imagestore.services.pull import start_pull
from imagestore.services.push import start_push
from imagestore.services.registries import registry_settings
from imagestore.services.remove import preview_removal, remove_image, remove_images
from imagestore.services.search import LOCAL, SearchFilters, search
from imagestore.services.tag import tag_image

from .contents import compare_choices
from .forms import (
    AuditFilterForm,
    ImageFilterForm,
    ImportForm,
    LoadForm,
    PullForm,
    RegistryLoginForm,
    RetentionPolicyForm,
    RunForm,
    SearchForm,
    TagForm,
    WebhookForm,
    add_service_error,
)

Errors = USER_ERRORS


class HtmxHttpRequest(HttpRequest):
    """A request through django-htmx's middleware (``request.htmx``: is it htmx asking, and what for)."""

    htmx: HtmxDetails


def _operator_only(request: HttpRequest) -> None:
    if not is_operator(request.user):
        raise PermissionDenied(_("Changing images needs staff or the operators group."))


@login_required
def overview(request: HtmxHttpRequest) -> HttpResponse:
    """The home page: the store at a glance. While jobs run, htmx refreshes their card alone."""
    if request.htmx and request.GET.get("part") == "jobs":
        running, recent = job_lists()
        return render(request, "ui/_overview_jobs.html", {"running_jobs": running, "recent_jobs": recent,
                                                          "can_change": is_operator(request.user)})
    view = overview_of_store()
    chart = [{"label": row["name"] or ngettext("%(count)d other repository", "%(count)d other repositories",
                                               row["count"]) % {"count": row["count"]},
              "bytes": row["bytes"], "size": filesizeformat(row["bytes"])} for row in view.by_repository]
    return render(request, "ui/overview.html", {
        "view": view, "chart": chart, "running_jobs": view.running_jobs, "recent_jobs": view.recent_jobs,
        "largest_size": view.largest[0].size if view.largest else 0,
        "store_bytes": view.own + view.shared, "can_change": is_operator(request.user),
    })


@login_required
def images(request: HttpRequest) -> HttpResponse:
    form = ImageFilterForm(request.GET or None)
    rows: Any = []
    page = None
    if form.is_valid() or not request.GET:
        data = form.cleaned_data if request.GET else {}
        dangling = {"true": True, "false": False}.get(data.get("dangling") or "")
        try:
            filters = ImageFilters(
                reference=[data["reference"]] if data.get("reference") else [], dangling=dangling,
                registry=data.get("registry") or None, order=data.get("order") or "-created")
            queryset = list_image_rows(filters)
            paginator = Paginator(queryset, 50)
            paginator.count = count_image_rows(filters, queryset)  # type: ignore[misc]
            page = paginator.get_page(request.GET.get("page"))
            rows = list(page.object_list)
        except Errors as exc:
            add_service_error(form, exc, "reference")
    ids = [r["row_image"] for r in rows]
    in_use = set(Container.objects.filter(image_id__in=ids).values_list("image_id", flat=True))
    sizes = image_sizes(ids)
    for row in rows:
        row["in_use"] = row["row_image"] in in_use
        row["short_id"] = row["row_image"].split(":", 1)[1][:12]
        row.update(sizes.get(row["row_image"], {}))
    return render(request, "ui/images.html", {"form": form, "rows": rows, "page": page, "totals": store_totals(),
                                              "max_size": max((r["row_size"] or 0 for r in rows), default=0),
                                              "can_change": is_operator(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def image_detail(request: HttpRequest, ref: str) -> HttpResponse:
    try:
        image = resolve_image(ref)
    except Errors as exc:
        return render(request, "ui/error.html", {"message": user_message(exc)},
                      status=getattr(exc, "status", 400) or 400)
    tag_form = TagForm()
    run_form = RunForm()
    if request.method == "POST":
        _operator_only(request)
        action = request.POST.get("action")
        if action == "run":
            run_form = RunForm(request.POST)
            ran = _run_from_image(request, image, run_form)
            if ran is not None:
                return ran
        elif action == "tag":
            tag_form = TagForm(request.POST)
            if tag_form.is_valid():
                try:
                    tag = tag_image(image, tag_form.cleaned_data["repository"])
                    messages.success(request, _("Tagged %(tag)s") % {"tag": tag})
                    return HttpResponseRedirect(request.path)
                except Errors as exc:
                    add_service_error(tag_form, exc, "repository")
        elif action == "remove":
            try:
                records = remove_image(request.POST.get("name") or image.id, force=request.POST.get("force") == "1")
            except Errors as exc:
                messages.error(request, user_message(exc))
                return HttpResponseRedirect(request.path)
            messages.success(request, "; ".join(removal_lines(records)))
            if Image.objects.filter(pk=image.pk).exists():
                return HttpResponseRedirect(request.path)
            return HttpResponseRedirect(reverse("ui-images"))
    confirm: dict[str, Any] | None = None
    if request.GET.get("confirm") == "remove" and is_operator(request.user):
        force = request.GET.get("force") == "1"
        confirm = {"force": force}
        try:
            confirm["lines"] = removal_lines(preview_removal(image.id, force=force))
        except Errors as exc:
            confirm["conflict"] = user_message(exc)
    data = inspect_image(image)
    template = request.GET.get("format", "")
    formatted = error = ""
    if template:
        try:
            formatted = format_inspect(data, template)
        except Errors as exc:
            error = user_message(exc)
    links = list(ImageLayer.objects.filter(image=image).select_related("layer").order_by("position"))
    shared = dict(ImageLayer.objects.filter(layer__in=[link.layer_id for link in links]).values("layer")
                  .annotate(n=Count("image", distinct=True)).values_list("layer", "n"))
    history = image_history(image)
    steps = [dockerfile_step(row) for row in reversed(history)]
    made_by = {row["Layer"]: dockerfile_step(row) for row in history if row.get("Layer")}
    from imagestore.services.registry_serve import pull_commands

    return render(request, "ui/image_detail.html", {
        "image": image, "inspect": data, "inspect_json": json.dumps(data, indent=2),
        "registry_pulls": pull_commands(image, request.get_host()) if settings.REGISTRY_API_ENABLED else [],
        "layers": [{"link": link, "shared_with": shared.get(link.layer_id, 1) - 1, "colour": i % 6,
                    "made_by": made_by.get(link.layer.diff_id, "")} for i, link in enumerate(links)],
        "layers_total": sum(link.layer.uncompressed_size for link in links),
        "history": history, "containers": list(image.containers.all()), "tag_form": tag_form, "run_form": run_form,
        "format": template, "formatted": formatted, "format_error": error, "can_change": is_operator(request.user),
        "confirm": confirm, "steps": steps,
        "push_as": {tag: _push_identity(request, tag) for tag in data["RepoTags"]},
        "compare_with": compare_choices(image),
    })


# Docker's removal records ({"Untagged": name} / {"Deleted": id}) as the pages say them.
REMOVAL_WORDS = {"Untagged": gettext_lazy("Untagged: %(name)s"), "Deleted": gettext_lazy("Deleted: %(name)s")}


def removal_lines(records: list[dict[str, str]]) -> list[str]:
    return [str(REMOVAL_WORDS[key]) % {"name": value} if key in REMOVAL_WORDS else f"{key}: {value}"
            for record in records for key, value in record.items()]


def dockerfile_step(row: dict[str, Any]) -> str:
    """A history entry read back as the Dockerfile line that made it."""
    created_by = (row.get("CreatedBy") or "").strip()
    for prefix in ("/bin/sh -c #(nop) ", "/bin/sh -c #(nop)"):
        if created_by.startswith(prefix):
            return created_by[len(prefix):].strip()
    if created_by.startswith("/bin/sh -c "):
        return "RUN " + created_by[len("/bin/sh -c "):]
    if created_by:
        return f"RUN {created_by}" if not created_by.split()[0].isupper() else created_by
    return f"# {row.get('Comment') or 'layer'}"


@login_required
@require_http_methods(["GET", "POST"])
def pull(request: HttpRequest) -> HttpResponse:
    form = PullForm(request.POST if request.method == "POST" else None,
                    initial={"reference": request.GET.get("reference", "")})
    if request.method == "POST":
        _operator_only(request)
        if form.is_valid():
            try:
                job = start_pull(form.cleaned_data["reference"], form.cleaned_data["platform"] or None,
                                 owner=request.user)
                return HttpResponseRedirect(reverse("ui-job", args=[job.id]))
            except Errors as exc:
                add_service_error(form, exc, "reference")
    return render(request, "ui/pull.html", {"form": form, "can_change": is_operator(request.user)})


@login_required
def jobs(request: HttpRequest) -> HttpResponse:
    page = Paginator(Job.objects.select_related("owner").order_by("-created_at"), 50).get_page(request.GET.get("page"))
    return render(request, "ui/jobs.html", {"page": page, "can_change": is_operator(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def job_detail(request: HtmxHttpRequest, job_id: str) -> HttpResponse:
    try:
        job = get_job(job_id)
    except Errors as exc:
        return render(request, "ui/error.html", {"message": user_message(exc)}, status=404)
    if request.method == "POST":
        _operator_only(request)
        try:
            cancel_job(job)
            messages.success(request, _("Cancel requested"))
        except Errors as exc:
            messages.error(request, user_message(exc))
        return HttpResponseRedirect(request.path)
    # Shown, not saved: a URL's credentials in a line or the error are "***" (imagestore.oci.redact).
    job.log = [redact_text(str(line)) for line in job.log or []]
    job.error = redact_text(job.error or "")
    # htmx asks for the progress part alone every second while the job runs (ui/_job_progress.html).
    template = "ui/_job_progress.html" if request.htmx else "ui/job.html"
    return render(request, template, {"job": job, "can_change": is_operator(request.user), "watching": job.id})


@login_required
@require_http_methods(["GET", "POST"])
def webhooks_page(request: HttpRequest) -> HttpResponse:
    """Operators' webhooks: add one, switch one on or off, remove one, read its delivery log."""
    if not is_operator(request.user):
        return render(request, "ui/error.html", {"message": _("Webhooks are for operators.")}, status=403)
    form = WebhookForm()
    if request.method == "POST":
        hook_id = request.POST.get("webhook")
        if request.POST.get("action") == "add":
            form = WebhookForm(request.POST)
            if form.is_valid():
                try:
                    webhook_service.create_webhook(url=form.cleaned_data["url"], secret=form.cleaned_data["secret"],
                                                   events=form.cleaned_data["events"], name=form.cleaned_data["name"],
                                                   owner=request.user)
                    messages.success(request, _("Webhook added"))
                    return HttpResponseRedirect(request.path)
                except Errors as exc:
                    add_service_error(form, exc)
        elif hook_id and hook_id.isdigit():
            hook = Webhook.objects.filter(pk=int(hook_id)).first()
            if hook is not None and request.POST.get("action") == "delete":
                hook.delete()
                messages.success(request, _("Webhook removed"))
            elif hook is not None and request.POST.get("action") == "toggle":
                webhook_service.change_webhook(hook, active=not hook.active)
            return HttpResponseRedirect(request.path)
    hooks = list(Webhook.objects.order_by("name", "id"))
    deliveries = list(WebhookDelivery.objects.select_related("webhook").order_by("-created_at", "-id")[:50])
    return render(request, "ui/webhooks.html", {"form": form, "hooks": hooks, "deliveries": deliveries})


@login_required
@require_http_methods(["GET", "POST"])
def retention_page(request: HttpRequest) -> HttpResponse:
    """Retention policies: add, preview (exactly what a run removes), run as a job, remove."""
    if not is_operator(request.user):
        return render(request, "ui/error.html", {"message": _("Retention policies are for operators.")}, status=403)
    form = RetentionPolicyForm()
    previewed: dict[str, Any] | None = None
    chosen: RetentionPolicy | None = None
    if request.method == "POST":
        action = request.POST.get("action")
        policy_id = request.POST.get("policy") or ""
        chosen = RetentionPolicy.objects.filter(pk=int(policy_id)).first() if policy_id.isdigit() else None
        if action == "add":
            form = RetentionPolicyForm(request.POST)
            if form.is_valid():
                try:
                    data = retention_service.validate(dict(form.cleaned_data))
                    RetentionPolicy.objects.create(**data)
                    messages.success(request, _("Policy added"))
                    return HttpResponseRedirect(request.path)
                except Errors as exc:
                    add_service_error(form, exc)
                except IntegrityError:
                    form.add_error("name", _("A policy of that name exists"))
        elif chosen is not None and action == "preview":
            previewed = retention_service.preview(chosen)
        elif chosen is not None and action == "run":
            job = retention_service.start_run(chosen, owner=request.user)
            return HttpResponseRedirect(reverse("ui-job", args=[job.id]))
        elif chosen is not None and action == "delete":
            chosen.delete()
            messages.success(request, _("Policy removed"))
            return HttpResponseRedirect(request.path)
    return render(request, "ui/retention.html", {"form": form, "policies": RetentionPolicy.objects.order_by("name"),
                                                 "previewed": previewed, "chosen": chosen})


AUDIT_PAGE_SIZE = 50


@login_required
def audit_page(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The audit trail with filters; ``?format=csv`` or ``?format=jsonl`` streams the whole
    filtered trail as a download (operators only, as the API)."""
    if not is_operator(request.user):
        return render(request, "ui/error.html", {"message": _("The audit trail is for operators.")}, status=403)
    form = AuditFilterForm(request.GET)
    rows = AuditEvent.objects.none()
    if form.is_valid():
        try:
            rows = audit.events(audit.filters_from(request.GET))
        except Errors as exc:
            add_service_error(form, exc)
    export = request.GET.get("format")
    if export in ("csv", "jsonl") and not form.errors:
        return _audit_export(rows, export)
    page = Paginator(rows.select_related(None), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "ui/audit.html", {"form": form, "page": page})


class _Echo:
    def write(self, value: str) -> str:
        return value


def _audit_export(rows: Any, export: str) -> StreamingHttpResponse:
    """The rows as CSV or JSON Lines, streamed from the database in chunks (never held whole)."""
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if export == "csv":
        writer = csv.writer(_Echo())

        def lines() -> Any:
            yield writer.writerow(audit.EXPORT_FIELDS)
            for event in rows.iterator(chunk_size=500):
                row = audit.event_row(event)
                yield writer.writerow([json.dumps(row[f]) if isinstance(row[f], (list, dict)) else row[f]
                                       for f in audit.EXPORT_FIELDS])
        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(
            (json.dumps(audit.event_row(event)) + "\n" for event in rows.iterator(chunk_size=500)),
            content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{export}"'
    return response


# Toasts say when a job of the user's own ends; this many at most per answer (the rest follow).
TOASTS_AT_ONCE = 5


@login_required
def job_toasts(request: HttpRequest) -> HttpResponse:
    """The user's jobs ended since ``since`` (ISO 8601), as toasts (ui/_job_watch.html)."""
    since = parse_datetime(request.GET.get("since", "")) if len(request.GET.get("since", "")) < 64 else None
    if since is None or timezone.is_naive(since):
        since = timezone.now()
    ended = Job.objects.filter(owner_id=request.user.pk, finished_at__gt=since)
    watching = _uuid_or_none(request.GET.get("exclude"))
    if watching is not None:  # the job whose own page this is says it has ended itself
        ended = ended.exclude(pk=watching)
    jobs = list(ended.order_by("finished_at")[:TOASTS_AT_ONCE])
    for job in jobs:
        job.error = redact_text(job.error or "")
    last = jobs[-1].finished_at if jobs else None
    return render(request, "ui/_job_toasts.html", {
        "jobs": jobs, "since": (last or since).isoformat(), "watching": watching or ""})


def _uuid_or_none(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text or "")
    except ValueError:
        return None


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
            add_service_error(form, exc, "registry" if data.get("registry") else "term")
    return render(request, "ui/search.html", {"form": form, "results": results, "local": LOCAL,
                                              "can_change": is_operator(request.user)})


# --- import, load, save ---------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest) -> HttpResponse:
    posted = request.method == "POST"
    form = ImportForm(request.POST if posted else None, request.FILES if posted else None)
    if request.method == "POST":
        _operator_only(request)
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = start_import_from(upload=data["file"], url=data["url"] or None,
                                        repository=data["repository"] or None, message=data["message"],
                                        owner=request.user)
                return HttpResponseRedirect(reverse("ui-job", args=[job.id]))
            except Errors as exc:
                add_service_error(form, exc)
    return render(request, "ui/upload.html", {"form": form, "title": _("Import a root filesystem"), "kind": "import",
                                              "button": _("Import"), "can_change": is_operator(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def load_page(request: HttpRequest) -> HttpResponse:
    posted = request.method == "POST"
    form = LoadForm(request.POST if posted else None, request.FILES if posted else None)
    if request.method == "POST":
        _operator_only(request)
        if form.is_valid():
            try:
                job = start_load_from(form.cleaned_data["file"], owner=request.user)
                return HttpResponseRedirect(reverse("ui-job", args=[job.id]))
            except Errors as exc:
                add_service_error(form, exc)
    return render(request, "ui/upload.html", {"form": form, "title": _("Load images from an archive"), "kind": "load",
                                              "button": _("Load"), "can_change": is_operator(request.user)})


@login_required
@require_http_methods(["POST"])
def images_bulk(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The images table's selection: save it (a download), or remove it (operators)."""
    names = request.POST.getlist("name")
    if not names:
        messages.error(request, _("Select at least one image."))
        return HttpResponseRedirect(reverse("ui-images"))
    if request.POST.get("action") == "save":
        try:
            return archive_response(names, "images.tar")
        except Errors as exc:
            messages.error(request, user_message(exc))
            return HttpResponseRedirect(reverse("ui-images"))
    _operator_only(request)
    for result in remove_images(names, force=request.POST.get("force") == "1"):
        if "error" in result:
            messages.error(request, _("%(name)s: %(error)s") % {"name": result["name"], "error": result["error"]})
        else:
            lines = "; ".join(removal_lines(result["records"]))
            messages.success(request, _("%(name)s: %(records)s") % {"name": result["name"], "records": lines})
    return HttpResponseRedirect(reverse("ui-images"))


# --- registries ---------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def registries(request: HttpRequest) -> HttpResponse:
    form = RegistryLoginForm(request.POST if request.method == "POST" and not request.POST.get("logout") else None)
    if request.method == "POST":
        _operator_only(request)
        if request.POST.get("logout"):
            try:
                logout(request.user, request.POST["logout"])
            except Errors as exc:
                messages.error(request, user_message(exc))
                return HttpResponseRedirect(request.path)
            messages.success(request, _("Logged out of %(registry)s") % {"registry": request.POST["logout"]})
            return HttpResponseRedirect(request.path)
        if form.is_valid():
            data = form.cleaned_data
            try:
                credential = login(request.user, data["registry"], data["username"], data["password"])
                messages.success(request, _("Logged in to %(registry)s as %(username)s") % {
                    "registry": credential.registry, "username": credential.username})
                return HttpResponseRedirect(request.path)
            except Errors as exc:
                add_service_error(form, exc, "registry")
    credentials = RegistryCredential.objects.filter(owner_id=request.user.pk).order_by("registry")
    return render(request, "ui/registries.html", {"form": form, "credentials": credentials,
                                                  "settings": registry_settings(),
                                                  "can_change": is_operator(request.user)})


@login_required
def repositories(request: HttpRequest) -> HttpResponse:
    """This dashboard as a registry: each repository's ``docker pull`` command and who may push."""
    from imagestore.services.registry_serve import repository_rows

    host = request.get_host()
    return render(request, "ui/repositories.html", {"rows": repository_rows(host), "host": host,
                                                    "enabled": settings.REGISTRY_API_ENABLED})


def _push_identity(request: HttpRequest, tag: str) -> str:
    """Whose login a push of ``tag`` would use: the user's own for that registry, if any."""
    from imagestore.oci.reference import parse_normalized

    registry = parse_normalized(tag).domain
    credential = RegistryCredential.objects.filter(owner_id=request.user.pk, registry=registry).first()
    if credential:
        return _("as %(username)s") % {"username": credential.username}
    return _("anonymously (no login for this registry)")


@login_required
@require_http_methods(["POST"])
def push(request: HttpRequest, ref: str) -> HttpResponse:
    _operator_only(request)
    try:
        job = start_push(ref, owner=request.user)
    except Errors as exc:
        messages.error(request, user_message(exc))
        return HttpResponseRedirect(reverse("ui-images"))
    return HttpResponseRedirect(reverse("ui-job", args=[job.id]))


# --- containers ---------------------------------------------------------------------------------------

# What the containers page says once an action is done (%(name)s: the container's name).
CONTAINER_DONE = {"start": gettext_lazy("Started %(name)s"), "stop": gettext_lazy("Stopped %(name)s"),
                  "remove": gettext_lazy("Removed %(name)s")}


@login_required
@require_http_methods(["GET", "POST"])
def containers(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        _operator_only(request)
        try:
            container = container_service.get_container(request.POST.get("container", ""))
            action = request.POST.get("action")
            if action == "start":
                container_service.start_container(container)
            elif action == "stop":
                container_service.stop_container(container)
            elif action == "remove":
                container_service.remove_container(container, force=request.POST.get("force") == "1")
            done = CONTAINER_DONE.get(action or "") or _("%(name)s: done")
            messages.success(request, done % {"name": container.name})
        except Errors as exc:
            messages.error(request, user_message(exc))
        return HttpResponseRedirect(request.path)
    container_service.reconcile_all()
    rows = Container.objects.select_related("image").order_by("-created_at")
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "ui/containers.html", {"containers": page.object_list, "page": page,
                                                  "can_change": is_operator(request.user)})


# The end of a container's log shown on its page.
LOG_TAIL_BYTES = 64 * 1024


@login_required
def container_detail(request: HttpRequest, ref: str) -> HttpResponse:
    """A container's state and log tail; operators get its terminal (ui/terminal.py)."""
    try:
        container = container_service.reconcile(container_service.get_container(ref))
    except Errors as exc:
        return render(request, "ui/error.html", {"message": user_message(exc)},
                      status=getattr(exc, "status", 400) or 400)
    log_path = container_service.container_dir(container) / "container.log"
    log = ""
    if log_path.is_file():
        with open(log_path, "rb") as handle:
            handle.seek(max(0, log_path.stat().st_size - LOG_TAIL_BYTES))
            log = handle.read().decode("utf-8", "replace")
    return render(request, "ui/container_detail.html", {
        "container": container, "log": log, "can_change": is_operator(request.user),
        "running": container.state in container_service.RUNNING_STATES,
        "open": request.GET.get("terminal", "") if request.GET.get("terminal") in ("exec", "attach") else "",
    })


def _run_from_image(request: HttpRequest, image: Image, form: RunForm) -> HttpResponse | None:
    """Create and start a container; its page then opens its terminal."""
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        container = run_container(image.id, cmd=data["command"], env=data["env"], name=data["name"], tty=data["tty"])
    except Errors as exc:
        add_service_error(form, exc)
        return None
    url = reverse("ui-container", args=[container.id])
    return HttpResponseRedirect(f"{url}?terminal={'attach' if data['tty'] else 'exec'}")
