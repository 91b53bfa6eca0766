"""Image configuration JSON (https://github.com/opencontainers/image-spec/blob/main/config.md).

The image id is the sha256 of the config bytes exactly as stored, so configs are
written once, compactly, and never re-serialised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .digest import Digest, sha256_digest
from .errors import InvalidJSON, LimitExceeded, OCIError
from .jsonbounds import loads as bounded_loads


class InvalidConfig(OCIError, ValueError):
    """An image config is not valid JSON or lacks what an image needs."""


# Docker refuses images of more layers than this (an overlay mount stacks at most so
# many lower directories: moby's layer/layer_store.go maxLayerDepth).
MAX_LAYERS = 127


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with trailing zero fractions trimmed, as Go's RFC3339Nano writes."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += ("." + f"{value.microsecond:06d}").rstrip("0")
    return text + "Z"


def parse_time(text: str) -> datetime:
    """Parse RFC 3339 times, including nanosecond fractions Python cannot hold."""
    value = text.strip()
    if value.endswith("Z") or value.endswith("z"):
        value = value[:-1] + "+00:00"
    if "." in value:
        head, _, rest = value.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        value = f"{head}.{(digits + '000000')[:6]}{rest}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidConfig(f"invalid time {text!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


@dataclass(frozen=True)
class ImageConfig:
    """The fields of a config the store indexes; ``raw`` is the whole document."""

    raw: dict[str, Any]
    digest: Digest
    size: int
    diff_ids: list[Digest] = field(default_factory=list)

    @property
    def created(self) -> datetime | None:
        text = self.raw.get("created")
        return parse_time(text) if text else None

    @property
    def author(self) -> str:
        return str(self.raw.get("author") or "")

    @property
    def architecture(self) -> str:
        return str(self.raw.get("architecture") or "")

    @property
    def os(self) -> str:
        return str(self.raw.get("os") or "")

    @property
    def variant(self) -> str:
        return str(self.raw.get("variant") or "")

    @property
    def comment(self) -> str:
        return str(self.raw.get("comment") or "")

    @property
    def docker_version(self) -> str:
        return str(self.raw.get("docker_version") or "")

    @property
    def container_config(self) -> dict[str, Any]:
        config = self.raw.get("config")
        return config if isinstance(config, dict) else {}

    @property
    def labels(self) -> dict[str, str]:
        labels = self.container_config.get("Labels")
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}

    @property
    def history(self) -> list[dict[str, Any]]:
        history = self.raw.get("history")
        return [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []

    @classmethod
    def parse(cls, data: bytes) -> ImageConfig:
        try:
            raw = bounded_loads(data, what="the image config")  # 4 MiB, 64 levels (oci.jsonbounds)
        except InvalidJSON as exc:
            raise InvalidConfig(str(exc).replace("the image config", "image config", 1)) from exc
        if not isinstance(raw, dict):
            raise InvalidConfig("image config is not a JSON object")
        rootfs = raw.get("rootfs")
        if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
            raise InvalidConfig("image config has no rootfs of type 'layers'")
        diff_ids_raw = rootfs.get("diff_ids") or []
        if not isinstance(diff_ids_raw, list):
            raise InvalidConfig("image config rootfs.diff_ids is not a list")
        if len(diff_ids_raw) > MAX_LAYERS:
            raise LimitExceeded(f"the image has {len(diff_ids_raw)} layers, more than the limit of {MAX_LAYERS}",
                                MAX_LAYERS)
        try:
            diff_ids = [Digest.parse(str(d)) for d in diff_ids_raw]
        except OCIError as exc:
            raise InvalidConfig(f"image config has a bad diff_id: {exc}") from exc
        config = cls(raw=raw, digest=sha256_digest(data), size=len(data), diff_ids=diff_ids)
        if raw.get("created"):
            config.created  # noqa: B018 - validates the time now rather than on first use
        return config


def encode(document: Any) -> bytes:
    """Compact JSON, the way Go's encoder writes it, so ids stay stable."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def new_layer_config(
    *,
    diff_ids: list[Digest],
    created: datetime,
    architecture: str,
    os: str,
    variant: str = "",
    comment: str = "",
    author: str = "",
    config: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> bytes:
    """A config for an image made here (import, commit), as Docker writes one."""
    document: dict[str, Any] = {"architecture": architecture}
    if author:
        document["author"] = author
    if comment:
        document["comment"] = comment
    document["config"] = config or {}
    document["created"] = format_time(created)
    document["history"] = history if history is not None else []
    document["os"] = os
    document["rootfs"] = {"type": "layers", "diff_ids": [str(d) for d in diff_ids]}
    if variant:
        document["variant"] = variant
    return encode(document)
