"""The pages' forms: what each page reads from a request, checked before a service is called.

A service's error lands beside the field it is about (``ServiceError.field``, see
imagestore/errors.py), never found by reading its message: ``add_service_error``.
"""

from __future__ import annotations

import shlex
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from imagestore.errors import user_message


def add_service_error(form: forms.Form, exc: Exception, default: str | None = None) -> None:
    """Show a service's error on the form: beside its ``field`` when the form has that field,
    else beside ``default`` (None: above the form)."""
    field = getattr(exc, "field", None)
    form.add_error(field if field in form.fields else default, user_message(exc))


class StyledForm(forms.Form):
    """Bootstrap's classes on every widget, and ``is-invalid`` on those with an error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()

    def full_clean(self) -> None:
        super().full_clean()
        self._mark_invalid()

    def add_error(self, field: str | None, error: Any) -> None:
        super().add_error(field, error)
        self._mark_invalid()

    def _mark_invalid(self) -> None:
        for name in getattr(self, "_errors", None) or {}:
            if name in self.fields and "is-invalid" not in self.fields[name].widget.attrs["class"]:
                self.fields[name].widget.attrs["class"] += " is-invalid"


class ImageFilterForm(StyledForm):
    reference = forms.CharField(required=False, label=_("Reference"), max_length=512,
                                widget=forms.TextInput(attrs={"placeholder": "centos:*", "type": "search"}))
    dangling = forms.ChoiceField(required=False, label=_("Show"), choices=[
        ("", _("all")), ("true", _("dangling only")), ("false", _("tagged only"))])
    registry = forms.CharField(required=False, max_length=255, label=_("Registry"),
                               widget=forms.TextInput(attrs={"placeholder": "docker.io", "type": "search"}))
    order = forms.ChoiceField(required=False, choices=[(o, o) for o in (
        "-created", "created", "-size", "size", "repository", "-repository")])


class AuditFilterForm(StyledForm):
    """The Audit page's filters (the same as ``GET /api/v1/events/``'s)."""

    who = forms.CharField(required=False, max_length=255, label=_("Who"),
                          widget=forms.TextInput(attrs={"placeholder": "admin", "type": "search"}))
    action = forms.CharField(required=False, max_length=255, label=_("Action"),
                             widget=forms.TextInput(attrs={"placeholder": "tag,untag", "type": "search"}))
    object = forms.CharField(required=False, max_length=255, label=_("Object"),
                             widget=forms.TextInput(attrs={"placeholder": "busybox, sha256:8b44", "type": "search"}))
    since = forms.CharField(required=False, max_length=64, label=_("Since"),
                            widget=forms.TextInput(attrs={"placeholder": "24h, 2026-01-31"}))
    until = forms.CharField(required=False, max_length=64, label=_("Until"),
                            widget=forms.TextInput(attrs={"placeholder": "1h, 2026-02-01T12:00"}))
    outcome = forms.ChoiceField(required=False, label=_("Outcome"), choices=[
        ("", _("all")), ("ok", _("ok")), ("error", _("error"))])


class WebhookForm(StyledForm):
    name = forms.CharField(required=False, max_length=255, label=_("Name"))
    url = forms.URLField(max_length=2000, label=_("URL"), assume_scheme="https",
                         widget=forms.URLInput(attrs={"placeholder": "https://hooks.example.com/imagestore"}))
    events = forms.CharField(required=False, max_length=1000, label=_("Events"),
                             help_text=_("actions, comma-separated (tag, push, delete, ...); empty: all"))
    secret = forms.CharField(max_length=255, label=_("Secret"), widget=forms.PasswordInput,
                             help_text=_("signs each delivery: X-Signature-256: sha256=HMAC of the body"))


class RetentionPolicyForm(StyledForm):
    name = forms.CharField(max_length=255, label=_("Name"))
    repository = forms.CharField(max_length=255, label=_("Repositories"),
                                 widget=forms.TextInput(attrs={"placeholder": "team/*"}),
                                 help_text=_("a glob over repository names; * stays within one level"))
    keep_last = forms.IntegerField(required=False, min_value=0, label=_("Keep the most recent tags"))
    keep_tags = forms.CharField(required=False, max_length=255, label=_("Always keep tags"),
                                widget=forms.TextInput(attrs={"placeholder": "v*, release-*"}))
    untagged_older_than = forms.CharField(required=False, max_length=32, label=_("Delete untagged images older than"),
                                          widget=forms.TextInput(attrs={"placeholder": "7d"}))
    unused_for = forms.CharField(required=False, max_length=32, label=_("Untag images unused for"),
                                 widget=forms.TextInput(attrs={"placeholder": "30d"}))
    keep_label = forms.CharField(required=False, max_length=255, label=_("Always keep images labelled"),
                                 widget=forms.TextInput(attrs={"placeholder": "pinned=true"}))
    schedule = forms.CharField(required=False, max_length=32, label=_("Run every"),
                               widget=forms.TextInput(attrs={"placeholder": "1d"}), help_text=_("empty: by hand"))


class TagForm(StyledForm):
    repository = forms.CharField(max_length=512, label=_("Add a tag"),
                                 widget=forms.TextInput(attrs={"placeholder": "repo/name:tag"}))


class PullForm(StyledForm):
    reference = forms.CharField(max_length=512, label=_("Reference"),
                                widget=forms.TextInput(attrs={"placeholder": "centos:6.6"}))
    platform = forms.CharField(max_length=64, required=False, label=_("Platform"),
                               help_text=_("os/architecture, e.g. linux/arm64; empty: this server's"),
                               widget=forms.TextInput(attrs={"placeholder": "linux/amd64"}))


class SearchForm(StyledForm):
    term = forms.CharField(max_length=256, label=_("Term"),
                           widget=forms.TextInput(attrs={"type": "search", "placeholder": "mysql"}))
    registry = forms.CharField(required=False, max_length=255, label=_("Registry"),
                               widget=forms.TextInput(attrs={"placeholder": _("Docker Hub, a host:port, or local")}))
    stars = forms.IntegerField(required=False, min_value=0, label=_("Stars at least"))
    is_official = forms.BooleanField(required=False, label=_("official only"))
    is_automated = forms.BooleanField(required=False, label=_("automated only"))
    no_trunc = forms.BooleanField(required=False, label=_("full descriptions"))


class ImportForm(StyledForm):
    file = forms.FileField(required=False, label=_("File"),
                           help_text=_("a root filesystem tarball (.tar, .tar.gz, .tar.xz, zstd)"))
    url = forms.URLField(required=False, assume_scheme="https", label=_("URL"),
                         help_text=_("or an http(s) URL to fetch it from"))
    repository = forms.CharField(required=False, max_length=512, label=_("Repository"),
                                 help_text=_("repository[:tag], optional"))
    message = forms.CharField(required=False, max_length=4096, label=_("Message"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("file")) == bool(data.get("url")):
            raise forms.ValidationError(_("Give either a file or a URL."))
        return data


class LoadForm(StyledForm):
    file = forms.FileField(label=_("File"), help_text=_("an archive from docker save, skopeo or podman"))


class RegistryLoginForm(StyledForm):
    registry = forms.CharField(max_length=255, initial="docker.io", label=_("Registry"))
    username = forms.CharField(max_length=255, label=_("Username"))
    password = forms.CharField(widget=forms.PasswordInput, max_length=4096, label=_("Password"))


class RunForm(StyledForm):
    """``docker run`` from an image's page: what the container runs, its name and environment."""

    command = forms.CharField(required=False, max_length=4096, label=_("Command"),
                              widget=forms.TextInput(attrs={"placeholder": _("the image's own (e.g. /bin/sh)")}))
    name = forms.CharField(required=False, max_length=255, label=_("Name"))
    env = forms.CharField(required=False, max_length=65536, label=_("Environment (KEY=value, one a line)"),
                          widget=forms.Textarea(attrs={"rows": 2}))
    tty = forms.BooleanField(required=False, initial=True, label=_("Terminal (-it)"))

    def clean_command(self) -> list[str] | None:
        raw = self.cleaned_data["command"].strip()
        if not raw:
            return None
        try:
            return shlex.split(raw)
        except ValueError as exc:
            raise forms.ValidationError(_("cannot split the command: %(reason)s") % {"reason": exc}) from None

    def clean_env(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["env"].splitlines() if line.strip()]
        for line in lines:
            if "=" not in line or line.startswith("="):
                raise forms.ValidationError(_("%(line)s is not KEY=value") % {"line": repr(line)})
        return lines
