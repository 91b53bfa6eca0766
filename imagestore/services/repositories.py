"""Finding or creating the Repository row a reference names."""

from __future__ import annotations

from ..models import Repository
from ..oci.reference import Reference


def get_or_create_repository(ref: Reference) -> Repository:
    repository, _ = Repository.objects.get_or_create(
        registry=ref.domain,
        path=ref.path,
        defaults={"name": ref.familiar_name},
    )
    return repository
