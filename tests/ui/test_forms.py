"""A service's error lands beside the field it is about (``ServiceError.field``), never found
by reading its message."""

from __future__ import annotations

import pytest

from imagestore.errors import BadRequest, about
from imagestore.oci.errors import InvalidReference
from imagestore.services.import_ import start_import_from
from imagestore.services.login import normalize_registry
from imagestore.services.pull import start_pull
from ui.forms import PullForm, RegistryLoginForm, add_service_error

pytestmark = pytest.mark.django_db


def _raised(call, *args, **kwargs) -> Exception:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception) as info:
        call(*args, **kwargs)
    return info.value


def test_services_name_the_input_their_error_is_about() -> None:
    assert _raised(start_pull, "centos", "linux").field == "platform"  # type: ignore[attr-defined]
    assert _raised(start_pull, "Bad:Ref").field == "reference"  # type: ignore[attr-defined]
    assert _raised(start_import_from, url="http://127.0.0.1:1/x", repository="Bad").field == "repository"  # type: ignore[attr-defined]
    assert _raised(normalize_registry, "bad host!").field == "registry"  # type: ignore[attr-defined]


def test_about_marks_only_errors_without_a_field() -> None:
    with pytest.raises(InvalidReference) as info, about("reference"):
        raise InvalidReference("invalid reference format")
    assert info.value.field == "reference"
    with pytest.raises(BadRequest) as named, about("reference"):
        raise BadRequest("x", field="platform")
    assert named.value.field == "platform"


def test_the_form_shows_the_error_beside_its_field_or_the_default() -> None:
    form = PullForm({"reference": "centos", "platform": "linux"})
    assert form.is_valid()
    add_service_error(form, BadRequest("invalid platform", field="platform"), "reference")
    assert form.errors == {"platform": ["invalid platform"]}
    login = RegistryLoginForm({"registry": "r", "username": "u", "password": "p"})
    assert login.is_valid()
    add_service_error(login, BadRequest("no such field here", field="tag"), "registry")
    add_service_error(login, BadRequest("about the request"))
    assert login.errors == {"registry": ["no such field here"], "__all__": ["about the request"]}
