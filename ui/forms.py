"""The pages' forms: what each page reads from a request, checked before a service is called.

A service's error lands beside the field it is about (``ServiceError.field``, see
imagestore/errors.py), never found by reading its message: ``add_service_error``.
"""

from __future__ import annotations

import shlex
from typing import Any

from django import forms


def add_service_error(form: forms.Form, exc: Exception, default: str | None = None) -> None:
    """Show a service's error on the form: beside its ``field`` when the form has that field,
    else beside ``default`` (None: above the form)."""
    field = getattr(exc, "field", None)
    form.add_error(field if field in form.fields else default, str(exc))


class ImageFilterForm(forms.Form):
    reference = forms.CharField(required=False, label="Reference", max_length=512,
                                widget=forms.TextInput(attrs={"placeholder": "centos:*", "type": "search"}))
    dangling = forms.ChoiceField(required=False, choices=[("", "all"), ("true", "dangling only"),
                                                          ("false", "tagged only")])
    registry = forms.CharField(required=False, max_length=255,
                               widget=forms.TextInput(attrs={"placeholder": "docker.io", "type": "search"}))
    order = forms.ChoiceField(required=False, choices=[(o, o) for o in (
        "-created", "created", "-size", "size", "repository", "-repository")])


class TagForm(forms.Form):
    repository = forms.CharField(max_length=512, widget=forms.TextInput(attrs={"placeholder": "repo/name:tag"}))


class PullForm(forms.Form):
    reference = forms.CharField(max_length=512, widget=forms.TextInput(attrs={"placeholder": "centos:6.6"}))
    platform = forms.CharField(max_length=64, required=False,
                               widget=forms.TextInput(attrs={"placeholder": "linux/amd64 (default: this server's)"}))


class SearchForm(forms.Form):
    term = forms.CharField(max_length=256, widget=forms.TextInput(attrs={"type": "search", "placeholder": "mysql"}))
    registry = forms.CharField(required=False, max_length=255,
                               widget=forms.TextInput(attrs={"placeholder": "Docker Hub, a host:port, or local"}))
    stars = forms.IntegerField(required=False, min_value=0)
    is_official = forms.BooleanField(required=False, label="official only")
    is_automated = forms.BooleanField(required=False, label="automated only")
    no_trunc = forms.BooleanField(required=False, label="full descriptions")


class ImportForm(forms.Form):
    file = forms.FileField(required=False, help_text="a root filesystem tarball (.tar, .tar.gz, .tar.xz, zstd)")
    url = forms.URLField(required=False, assume_scheme="https", help_text="or an http(s) URL to fetch it from")
    repository = forms.CharField(required=False, max_length=512, help_text="repository[:tag], optional")
    message = forms.CharField(required=False, max_length=4096)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("file")) == bool(data.get("url")):
            raise forms.ValidationError("Give either a file or a URL.")
        return data


class LoadForm(forms.Form):
    file = forms.FileField(help_text="an archive from docker save, skopeo or podman")


class RegistryLoginForm(forms.Form):
    registry = forms.CharField(max_length=255, initial="docker.io")
    username = forms.CharField(max_length=255)
    password = forms.CharField(widget=forms.PasswordInput, max_length=4096)


class RunForm(forms.Form):
    """``docker run`` from an image's page: what the container runs, its name and environment."""

    command = forms.CharField(required=False, max_length=4096, label="Command",
                              widget=forms.TextInput(attrs={"placeholder": "the image's own (e.g. /bin/sh)"}))
    name = forms.CharField(required=False, max_length=255, label="Name")
    env = forms.CharField(required=False, max_length=65536, label="Environment (KEY=value, one a line)",
                          widget=forms.Textarea(attrs={"rows": 2}))
    tty = forms.BooleanField(required=False, initial=True, label="Terminal (-it)")

    def clean_command(self) -> list[str] | None:
        raw = self.cleaned_data["command"].strip()
        if not raw:
            return None
        try:
            return shlex.split(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"cannot split the command: {exc}") from None

    def clean_env(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["env"].splitlines() if line.strip()]
        for line in lines:
            if "=" not in line or line.startswith("="):
                raise forms.ValidationError(f"{line!r} is not KEY=value")
        return lines
