"""``docker search``: Docker Hub's ``/v1/search`` (or any index speaking it), a registry's
``/v2/_catalog`` when that is all it offers, and the store itself.

Results have Docker Hub's shape (name, description, star_count, is_official,
is_automated), filtered by ``stars``, ``is-official`` and ``is-automated`` and sorted by
stars, descriptions cut at 45 characters unless ``no_trunc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext

from ..errors import BadRequest, Forbidden
from ..models import Repository
from ..oci.outbound import read_json
from ..oci.redact import redact_url
from ..oci.registry import DOCKER_HUB, RegistryError
from ..permissions import is_operator
from .login import normalize_registry
from .registries import check_reachable, client_for, configured_registries, credentials_for, outbound_policy

LOCAL = "local"
MAX_LIMIT = 100
MAX_RESULTS_BODY = 1 << 20  # a page of at most MAX_LIMIT results, descriptions and all


@dataclass
class SearchFilters:
    stars: int = 0
    is_official: bool | None = None
    is_automated: bool | None = None


def _result(name: str, description: str = "", stars: int = 0, official: bool = False,
            automated: bool = False) -> dict[str, Any]:
    return {"name": name, "description": description or "", "star_count": int(stars or 0),
            "is_official": bool(official), "is_automated": bool(automated)}


def _finish(results: list[dict[str, Any]], filters: SearchFilters, limit: int, no_trunc: bool) -> list[dict[str, Any]]:
    kept = [
        r for r in results
        if r["star_count"] >= filters.stars
        and (filters.is_official is None or r["is_official"] == filters.is_official)
        and (filters.is_automated is None or r["is_automated"] == filters.is_automated)
    ]
    kept.sort(key=lambda r: (-r["star_count"], r["name"]))
    kept = kept[:limit]
    if not no_trunc:
        for r in kept:
            if len(r["description"]) > 45:
                r["description"] = r["description"][:42] + "..."
    return kept


def search_local(term: str, limit: int = 25) -> list[dict[str, Any]]:
    """Repositories of the store whose name, tags or description match."""
    rows = (
        Repository.objects.filter(Q(name__icontains=term) | Q(description__icontains=term) | Q(tags__name=term))
        .filter(Q(tags__isnull=False) | Q(repo_digests__isnull=False))
        .distinct()
        .order_by("-star_count", "name")[: max(limit, 1) * 4]
    )
    return [_result(r.name, r.description, r.star_count, r.is_official, r.is_automated) for r in rows]


def _index_search(base_url: str, term: str, limit: int, owner: Any) -> list[dict[str, Any]] | None:
    """``GET /v1/search``; None when the server does not offer it."""
    host = urlsplit(base_url).netloc
    credentials = credentials_for(owner, host)
    auth = (credentials.username, credentials.secret) if credentials else None
    url = base_url.rstrip("/") + "/v1/search"
    try:
        response = outbound_policy().session().get(url, params={"q": term, "n": str(limit)}, auth=auth,
                                                   timeout=(10, 30), stream=True)
    except requests.RequestException as exc:
        raise RegistryError(gettext("cannot reach %(value)s (%(name)s)")
                            % {"value": redact_url(url), "name": exc.__class__.__name__}, temporary=True) from None
    if response.status_code != 200:
        response.close()
    if response.status_code in (404, 405):
        return None
    if response.status_code in (401, 403):
        raise RegistryError(gettext("%(host)s: search needs a login to this index")
                            % {"host": host}, status=response.status_code)
    if response.status_code != 200:
        raise RegistryError(gettext("%(host)s: search answered %(status_code)s")
                            % {"host": host, "status_code": response.status_code}, status=response.status_code,
                            temporary=response.status_code >= 500)
    try:
        results = read_json(response, MAX_RESULTS_BODY, f"{host}: search results").get("results") or []
    except (ValueError, AttributeError, requests.RequestException):
        return None
    if not isinstance(results, list):
        return None
    return [_result(str(r.get("name", "")), str(r.get("description") or ""), r.get("star_count") or 0,
                    bool(r.get("is_official")), bool(r.get("is_automated"))) for r in results if isinstance(r, dict)]


def search(term: str, *, registry: str | None = None, limit: int = 25, filters: SearchFilters | None = None,
           no_trunc: bool = False, owner: Any = None) -> list[dict[str, Any]]:
    term = (term or "").strip()
    if not term:
        raise BadRequest(gettext("a search term is required"))
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(gettext("limit must be between 1 and %(MAX_LIMIT)s") % {"MAX_LIMIT": MAX_LIMIT})
    filters = filters or SearchFilters()
    if registry == LOCAL:
        return _finish(search_local(term, limit), filters, limit, no_trunc)
    host = normalize_registry(registry or DOCKER_HUB)
    _check_may_search(host, owner)
    if host == DOCKER_HUB:
        results = _index_search(settings.DOCKER_HUB_INDEX_URL, term, limit, owner)
        if results is None:
            raise RegistryError(gettext("%(DOCKER_HUB_INDEX_URL)s does not offer /v1/search")
                                % {"DOCKER_HUB_INDEX_URL": settings.DOCKER_HUB_INDEX_URL})
        return _finish(results, filters, limit, no_trunc)
    client = client_for(host, owner)
    results = _index_search(client.endpoint.base_url, term, limit, owner)
    if results is None:
        # Only the catalog: match names, as a registry without an index can.
        names = client.catalog()
        results = [_result(f"{host}/{name}") for name in names if term.lower() in name.lower()]
    return _finish(results, filters, limit, no_trunc)


def _check_may_search(host: str, owner: Any) -> None:
    """Anyone signed in may search Docker Hub, the registries the site is set up with and the store;
    naming any other registry makes the server connect where the user says, so it takes an operator.
    Either way the outbound policy decides before a connection is made."""
    if host not in configured_registries() and not is_operator(owner):
        raise Forbidden(gettext("searching %(host)s needs staff or the operators group: you may search Docker Hub, "
                                "the configured registries, and the local store (registry=%(LOCAL)s)")
                        % {"host": host, "LOCAL": LOCAL})
    check_reachable(host)


def index_search(query: str, limit: int) -> dict[str, Any]:
    """This dashboard's own ``/v1/search``, in Docker Hub's shape, over its repositories."""
    results = _finish(search_local(query, limit), SearchFilters(), limit, no_trunc=True) if query else []
    return {"num_results": len(results), "query": query, "page": 1, "num_pages": 1, "page_size": limit,
            "results": results}
