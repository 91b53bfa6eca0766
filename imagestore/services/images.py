"""Finding images the ways ``docker`` accepts them, and listing them like ``docker images``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import CharField, F, Lookup, Q, QuerySet, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Concat
from django.db.models.lookups import Exact
from django.utils.translation import gettext

from ..dockertime import TimeValueError, docker_time
from ..errors import AmbiguousImage, BadRequest, ImageNotFound
from ..models import Image, RepoDigest, Tag
from ..oci import reference
from ..oci.errors import InvalidReference
from ..oci.platform import host_platform

_HEX_PREFIX_RE = re.compile(r"^(?:sha256:)?([a-f0-9]{1,64})$")


def _by_id_prefix(prefix: str, shown: str) -> Image | None:
    matches = list(Image.objects.filter(id__startswith=f"sha256:{prefix}").order_by("id")[:2])
    if len(matches) > 1:
        raise AmbiguousImage(gettext("multiple images found with provided prefix: %(shown)s") % {"shown": shown})
    return matches[0] if matches else None


def resolve_image(name: str) -> Image:
    """The image ``name`` means: a tag, a digest reference, an id, or a unique id prefix.

    Follows the daemon's order: a full id first, then a reference (``centos`` means
    ``docker.io/library/centos:latest``), then an id prefix (``8b44``).
    """
    return resolve_image_and_reference(name)[0]


def resolve_image_and_reference(name: str) -> tuple[Image, reference.Reference | None]:
    """Like ``resolve_image``; also the reference when ``name`` was a name, None for an id."""
    name = name.strip()
    if not name:
        raise BadRequest(gettext("an image name or id is required"))
    hex_match = _HEX_PREFIX_RE.match(name)
    if name.startswith("sha256:"):
        if not hex_match:
            raise InvalidReference(f"invalid image id: {name!r}")
        found = _by_id_prefix(hex_match.group(1), name)
        if found is None:
            raise ImageNotFound(name)
        return found, None
    if hex_match and len(name) == 64:
        found = Image.objects.filter(id=f"sha256:{name}").first()
        if found is None:
            raise ImageNotFound(name)
        return found, None
    try:
        ref = reference.parse_normalized(name)
    except InvalidReference:
        if hex_match:
            ref = None
        else:
            raise
    if ref is not None:
        found = _by_reference(ref)
        if found is not None:
            return found, ref.with_default_tag()
    if hex_match:
        found = _by_id_prefix(hex_match.group(1), name)
        if found is not None:
            return found, None
    raise ImageNotFound(name)


def _by_reference(ref: reference.Reference) -> Image | None:
    if ref.digest is not None:
        rows = list(
            RepoDigest.objects.select_related("image")
            .filter(repository__registry=ref.domain, repository__path=ref.path, digest=str(ref.digest))
        )
        # An index digest may name one image per platform: this server's own first.
        host = host_platform()
        rows.sort(key=lambda r: (r.image.os, r.image.architecture) != (host.os, host.architecture))
        return rows[0].image if rows else None
    tag = ref.tag or reference.DEFAULT_TAG
    row = (
        Tag.objects.select_related("image")
        .filter(repository__registry=ref.domain, repository__path=ref.path, name=tag)
        .first()
    )
    return row.image if row is not None else None


MAX_REFERENCE_PATTERN = 512  # longer than any name:tag (255 + 1 + 128) with room for wildcards
_GLOB_CLASS_SPECIALS = "]-^/"  # placed by hand in a GLOB class (see _glob_class)


@dataclass(frozen=True)
class ReferencePattern:
    """A ``reference=`` glob compiled for the database.

    Docker matches familiar names with Go's path.Match, where ``*`` and ``?`` never cross a
    ``/`` (https://pkg.go.dev/path#Match); here no class matches ``/`` either. Python's
    regex engine backtracks (on SQLite, Django's REGEXP is Python's ``re``):
    ``*?*?*?*?*?*?*?*?*?*?*?*?#`` took 43 s a row. So on
    SQLite the pattern is SQLite's own GLOB (matched in O(pattern x name), no backtracking
    blow-up), with path.Match's "no wildcard crosses a /" kept exactly by also requiring
    the name to hold as many ``/`` as the pattern's literal ones (each literal ``/`` takes
    one; wildcards and classes never match ``/``). PostgreSQL's regex engine is a
    non-backtracking automaton, so there the regex is kept.
    """

    regex: str
    glob: str
    slashes: int
    never: bool = False  # a class that can match nothing: the pattern matches no name


def _char_ranges_without(ranges: list[tuple[int, int]], drop: str) -> list[tuple[int, int]]:
    out = ranges
    for ch in map(ord, drop):
        out = [piece for lo, hi in out for piece in ((lo, min(hi, ch - 1)), (max(lo, ch + 1), hi))
               if piece[0] <= piece[1]]
    return out


def _regex_class(ranges: list[tuple[int, int]], negate: bool) -> str:
    def esc(code: int) -> str:
        return re.escape(chr(code)) if chr(code) in "\\^]-[" else chr(code)

    kept = ranges if negate else _char_ranges_without(ranges, "/")
    return "[" + ("^/" if negate else "") + "".join(esc(lo) if lo == hi else f"{esc(lo)}-{esc(hi)}"
                                                    for lo, hi in kept) + "]"


def _glob_class(ranges: list[tuple[int, int]], negate: bool) -> str | None:
    """An SQLite GLOB class matching what a path.Match class does, never ``/``; None when it
    matches nothing. GLOB has no escapes, so ``]`` goes first, ``-`` last, ``^`` not first."""
    specials = {c for c in _GLOB_CLASS_SPECIALS if any(lo <= ord(c) <= hi for lo, hi in ranges)}
    rest = "".join(chr(lo) if lo == hi else f"{chr(lo)}-{chr(hi)}"
                   for lo, hi in _char_ranges_without(ranges, _GLOB_CLASS_SPECIALS))
    if negate:
        specials.add("/")  # a negated class never matches / either
    else:
        specials.discard("/")
    if not negate and not rest and specials <= {"^"}:
        return "^" if specials else None  # outside a class ^ is literal
    body = ("]" if "]" in specials else "") + ("/" if "/" in specials else "") + rest
    tail = ("^" if "^" in specials else "") + ("-" if "-" in specials else "")
    if not body and tail == "^-":
        tail = "-^"  # a leading - is literal; a leading ^ would negate
    return "[" + ("^" if negate else "") + body + tail + "]"


def compile_reference_pattern(pattern: str) -> ReferencePattern:
    """A ``reference=`` glob (path.Match syntax), matched against ``name`` or ``name:tag``."""
    if not pattern or len(pattern) > MAX_REFERENCE_PATTERN:
        raise BadRequest(gettext("reference filter must be a non-empty pattern of at most "
                                 "%(MAX_REFERENCE_PATTERN)s characters")
                         % {"MAX_REFERENCE_PATTERN": MAX_REFERENCE_PATTERN})
    bad = BadRequest(gettext("invalid reference filter %(pattern)s: syntax error in pattern")
                     % {"pattern": repr(pattern)})
    rx: list[str] = []
    glob: list[str] = []
    slashes = 0
    never = False
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c in "*?":
            rx.append("[^/]*" if c == "*" else "[^/]")
            glob.append(c)
        elif c == "[":
            j = i + 1
            negate = j < n and pattern[j] == "^"
            if negate:
                j += 1
            chars: list[str] = []
            ranges: list[tuple[int, int]] = []
            while j < n and pattern[j] != "]":
                ch = pattern[j]
                if ch == "\\" and j + 1 < n:
                    j += 1
                    ch = pattern[j]
                if ch == "-" and chars and j + 1 < n and pattern[j + 1] != "]":
                    if ranges[-1][0] != ranges[-1][1] or chars[-1] == "-":
                        raise bad  # a range after a range (a-c-e): path.Match says bad pattern
                    chars.append("-")
                    hi = pattern[j + 1]
                    if hi == "\\" and j + 2 < n:
                        j += 1
                        hi = pattern[j + 1]
                    ranges[-1] = (ranges[-1][0], ord(hi))
                    chars.append(re.escape(hi) if hi in "\\^]-[" else hi)
                    j += 2
                    continue
                if ch == "-":
                    raise bad
                chars.append(re.escape(ch) if ch in "\\^]-[" else ch)
                ranges.append((ord(ch), ord(ch)))
                j += 1
            if j >= n or not chars or any(lo > hi for lo, hi in ranges):
                raise bad
            rx.append(_regex_class(ranges, negate))
            cls = _glob_class(ranges, negate)
            never = never or cls is None
            glob.append(cls or "")
            i = j
        else:
            if c == "\\":
                i += 1
                if i >= n:
                    raise bad
                c = pattern[i]
            rx.append(re.escape(c))
            glob.append(f"[{c}]" if c in "*?[" else c)
            slashes += c == "/"
        i += 1
    return ReferencePattern("^" + "".join(rx) + "$", "".join(glob), slashes, never)


def reference_pattern_regex(pattern: str) -> str:
    """The database regex for a ``reference=`` glob (PostgreSQL; see ReferencePattern)."""
    return compile_reference_pattern(pattern).regex


class ReferenceMatch(Lookup):
    """``field__reference_match=ReferencePattern``: GLOB plus a slash count on SQLite, the
    regex elsewhere (see ReferencePattern for why)."""

    lookup_name = "reference_match"
    prepare_rhs = False
    can_use_none_as_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        pattern: ReferencePattern = self.rhs
        if connection.vendor == "sqlite":
            sql = f"({lhs} GLOB %s AND LENGTH({lhs}) - LENGTH(REPLACE({lhs}, '/', '')) = %s)"
            return sql, (*lhs_params, pattern.glob, *lhs_params, *lhs_params, pattern.slashes)
        if "regex" in connection.operators:  # PostgreSQL: "~ %s"
            return f"{lhs} {connection.operators['regex'] % '%s'}", (*lhs_params, pattern.regex)
        return connection.ops.regex_lookup("regex") % (lhs, "%s"), (*lhs_params, pattern.regex)

    def process_rhs(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        return "%s", (self.rhs,)


CharField.register_lookup(ReferenceMatch)


@dataclass
class ImageFilters:
    reference: list[str] = field(default_factory=list)
    dangling: bool | None = None
    before: str | None = None
    since: str | None = None
    labels: list[str] = field(default_factory=list)
    not_labels: list[str] = field(default_factory=list)  # ``label!=key[=value]``
    until: datetime | None = None  # created at or before (``until=24h``, see dockertime)
    all: bool = False
    registry: str | None = None  # only names of this registry (dangling images have none)
    order: str = "-created"  # created, size or repository, "-" for descending
    update_available: bool | None = None  # the registry has a newer image for its tag (services.updates)


ORDERS = {"created": "row_created", "size": "row_size", "repository": "row_repository"}


def _image_conditions(filters: ImageFilters, prefix: str) -> Q:
    q = Q()
    if filters.before:
        pivot = resolve_image(filters.before)
        q &= Q(**{f"{prefix}created__lt": pivot.created})
    if filters.since:
        pivot = resolve_image(filters.since)
        q &= Q(**{f"{prefix}created__gt": pivot.created})
    if filters.until is not None:
        q &= Q(**{f"{prefix}created__lte": filters.until})
    if filters.update_available is not None:
        q &= Q(**{f"{prefix}update_available": filters.update_available})
    return q


def until_filter(values: list[str], now: datetime | None = None) -> datetime | None:
    """The ``until`` filter's moment (at most one, as Docker says), None when not given."""
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(gettext("more than one until filter specified"), field="until")
    try:
        return docker_time(values[0], now)
    except TimeValueError as exc:
        raise BadRequest(time_value_message(exc), field="until") from None


def time_value_message(exc: TimeValueError) -> str:
    """Docker's words for a time it cannot read, in the request's language."""
    if exc.reason is None:
        return gettext('failed to parse value as time or duration: "%(value)s"') % {"value": exc.value}
    return gettext('parsing time "%(value)s": %(reason)s') % {"value": exc.value, "reason": exc.reason}


def check_filter_names(given: dict[str, list[str]], accepted: set[str]) -> None:
    """Docker's Args.Validate: a filter it does not know is a 400, never silently ignored."""
    for name in given:
        if name not in accepted:
            raise BadRequest(gettext("invalid filter '%(name)s'") % {"name": name}, field="filters")


def _label_match(labels: list[str], prefix: str) -> Q:
    """Docker's MatchKVList: every ``key`` present, every ``key=value`` equal (any key,
    dots and dashes included: the key is a value of the query, never part of a lookup)."""
    q = Q()
    for label in labels:
        key, has_value, value = label.partition("=")
        if not key:
            raise BadRequest(gettext("invalid filter 'label=%(label)s'") % {"label": label}, field="filters")
        q &= Q(**{f"{prefix}labels__has_key": key})
        if has_value:
            q &= Q(Exact(KeyTextTransform(key, f"{prefix}labels"), value))
    return q


def label_conditions(labels: list[str], not_labels: list[str], prefix: str = "") -> Q:
    """``label=`` (every one must match) and ``label!=`` (an image matching every one of them
    is left out), as moby's image prune and list read them."""
    q = _label_match(labels, prefix) if labels else Q()
    if not_labels:
        q &= ~_label_match(not_labels, prefix)
    return q


def _apply_labels(qs: QuerySet, filters: ImageFilters, prefix: str) -> QuerySet:
    return qs.filter(label_conditions(filters.labels, filters.not_labels, prefix))


def list_image_rows(filters: ImageFilters) -> QuerySet:
    """One row per tag, plus one ``<none>:<none>`` row per untagged image, newest first.

    A single UNION query (no query per image), so the list page costs the same
    whatever its size. Rows: image, created, size, repository, tag (None when dangling).
    """
    tagged = Tag.objects.filter(_image_conditions(filters, "image__"))
    if filters.registry:
        tagged = tagged.filter(repository__registry=filters.registry)
    tagged = _apply_labels(tagged, filters, "image__")
    if filters.reference:
        ref_q = Q()
        for text in filters.reference:
            pattern = compile_reference_pattern(text)
            if not pattern.never:
                ref_q |= Q(repository__name__reference_match=pattern) | Q(row_ref__reference_match=pattern)
        if not ref_q:  # every pattern holds a class that matches nothing
            ref_q = Q(pk__in=[])
        familiar = Concat("repository__name", Value(":"), "name", output_field=CharField())
        tagged = tagged.alias(row_ref=familiar).filter(ref_q)
    tagged_rows = tagged.values(
        row_image=F("image_id"),
        row_created=F("image__created"),
        row_size=F("image__size"),
        row_repository=F("repository__name"),
        row_tag=F("name"),
        row_update=F("image__update_available"),
    )
    untagged = Image.objects.filter(tags__isnull=True).filter(_image_conditions(filters, ""))
    untagged = _apply_labels(untagged, filters, "")
    if not filters.all:
        # Like `docker images` without -a: hide intermediate (parent) images.
        untagged = untagged.filter(children__isnull=True)
    untagged_rows = untagged.values(
        row_image=F("id"),
        row_created=F("created"),
        row_size=F("size"),
        row_repository=Value(None, output_field=CharField()),
        row_tag=Value(None, output_field=CharField()),
        row_update=F("update_available"),
    )
    key = filters.order.lstrip("-")
    if key not in ORDERS:
        raise BadRequest(gettext("cannot order images by %(order)s (use created, size or repository)")
                         % {"order": repr(filters.order)})
    order = ("-" if filters.order.startswith("-") else "") + ORDERS[key]
    ordering = [order, "-row_created", "row_image", "row_repository", "row_tag"]
    if filters.dangling is True:
        # A reference or registry filter never matches an untagged image.
        rows = untagged_rows.none() if (filters.reference or filters.registry) else untagged_rows
        return rows.order_by(*ordering)
    if filters.dangling is False or filters.reference or filters.registry:
        return tagged_rows.order_by(*ordering)
    return tagged_rows.order_by().union(untagged_rows.order_by(), all=True).order_by(*ordering)


def count_image_rows(filters: ImageFilters, rows: QuerySet) -> int:
    """How many rows ``list_image_rows(filters)`` holds: for the unfiltered list (the images
    page's first view) cached until the store changes (services/store_stats.py), since counting
    a UNION of every tag and image is a full scan."""
    import dataclasses

    from .store_stats import cached

    if dataclasses.replace(filters, order="-created", all=False) == ImageFilters():  # no filter at all
        return cached(f"image-rows:{'all' if filters.all else 'top'}", rows.count)
    return rows.count()


def image_summaries(filters: ImageFilters) -> list[dict[str, object]]:
    """One entry per image with its tags and digests (the Engine API's ImageSummary),
    in three queries whatever the number of images."""
    from ..models import RepoDigest

    order: list[str] = []
    rows: dict[str, dict[str, object]] = {}
    for row in list_image_rows(filters):
        image_id = row["row_image"]
        if image_id not in rows:
            order.append(image_id)
            rows[image_id] = {"created": row["row_created"], "size": row["row_size"], "tags": []}
        if row["row_repository"] is not None:
            rows[image_id]["tags"].append(f"{row['row_repository']}:{row['row_tag']}")  # type: ignore[attr-defined]
    extra = {i.pk: i for i in Image.objects.filter(pk__in=order).only("id", "parent_id", "labels")}
    digests: dict[str, list[str]] = {}
    for digest in RepoDigest.objects.filter(image_id__in=order).select_related("repository"):
        digests.setdefault(digest.image_id, []).append(f"{digest.repository.name}@{digest.digest}")
    out = []
    for image_id in order:
        row = rows[image_id]
        created = row["created"]
        out.append({
            "Id": image_id,
            "ParentId": extra[image_id].parent_id or "",
            "RepoTags": sorted(row["tags"]),  # type: ignore[call-overload]
            "RepoDigests": sorted(digests.get(image_id, [])),
            "Created": int(created.timestamp()) if created else 0,  # type: ignore[attr-defined]
            "Size": row["size"],
            "SharedSize": -1,
            "Labels": extra[image_id].labels or None,
            "Containers": -1,
        })
    return out


def image_sizes(image_ids: list[str]) -> dict[str, dict[str, int]]:
    """Each image's own bytes (layers no other image uses) and shared bytes, in two queries
    whatever the number of images: their layer links, then how many images use each of those
    layers (both by index; a correlated count per link took a second on PostgreSQL at 10,000
    images, bench/images_page.py)."""
    from django.db.models import Count

    from ..models import ImageLayer

    out: dict[str, dict[str, int]] = {i: {"unique": 0, "shared": 0} for i in image_ids}
    links = list(ImageLayer.objects.filter(image_id__in=image_ids)
                 .values_list("image_id", "layer_id", "layer__uncompressed_size").order_by())
    users = dict(ImageLayer.objects.filter(layer_id__in={layer for _, layer, _ in links}).values("layer_id")
                 .annotate(n=Count("image_id", distinct=True)).values_list("layer_id", "n").order_by())
    for image_id, layer_id, size in links:
        out[image_id]["shared" if users.get(layer_id, 1) > 1 else "unique"] += size
    return out


def store_totals() -> dict[str, int]:
    """Images, bytes on disk (blobs), and bytes of layers more than one image uses (cached
    until the store changes: services/store_stats.py)."""
    from .store_stats import cached

    return cached("totals", _store_totals)


def _store_totals() -> dict[str, int]:
    from django.db.models import Count, Sum

    from ..models import Layer

    layer_totals = Layer.objects.aggregate(disk=Sum("size"))
    shared = (Layer.objects.annotate(users=Count("image_layers__image", distinct=True)).filter(users__gt=1)
              .aggregate(total=Sum("uncompressed_size")))
    configs = Image.objects.aggregate(n=Count("id"), configs=Sum("config_size"))
    return {"images": configs["n"] or 0, "disk": (layer_totals["disk"] or 0) + (configs["configs"] or 0),
            "shared": shared["total"] or 0}
