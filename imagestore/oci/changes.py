"""Dockerfile instructions applied to an image config, as ``docker commit --change`` and
``docker import --change`` take them: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME."""

from __future__ import annotations

import json
import shlex
from typing import Any

from . import jsonbounds
from .errors import InvalidJSON, LimitExceeded, OCIError


class InvalidChange(OCIError, ValueError):
    pass


SUPPORTED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "WORKDIR", "VOLUME")


def _exec_or_shell(value: str) -> list[str]:
    """JSON form ``["a", "b"]`` as is; shell form runs through ``/bin/sh -c``."""
    stripped = value.strip()
    if stripped.startswith("["):
        try:
            # Exec form is a flat list: anything nested deeper is not it (and 100,000 brackets
            # must not become a RecursionError).
            parsed = jsonbounds.loads(stripped, what="the instruction", max_depth=1)
        except (InvalidJSON, LimitExceeded):
            parsed = None
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return parsed
    return ["/bin/sh", "-c", stripped]


def _pairs(value: str, instruction: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise InvalidChange(f"{instruction}: {exc}") from None
    if not words:
        raise InvalidChange(f"{instruction} needs at least one argument")
    if "=" not in words[0]:
        if instruction == "LABEL":
            raise InvalidChange("LABEL needs key=value pairs")
        return [(words[0], " ".join(words[1:]))]  # ENV key value (the old form)
    out = []
    for word in words:
        key, sep, val = word.partition("=")
        if not sep or not key:
            raise InvalidChange(f"{instruction}: {word!r} is not key=value")
        out.append((key, val))
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """A copy of the container config (``Cmd``, ``Env``, ...) with the instructions applied."""
    out = json.loads(json.dumps(config or {}))
    for line in changes:
        line = line.strip()
        if not line:
            continue
        instruction, _, value = line.partition(" ")
        instruction = instruction.upper()
        if instruction not in SUPPORTED:
            raise InvalidChange(f"{instruction} is not a valid change command (use one of {', '.join(SUPPORTED)})")
        if not value.strip() and instruction not in ("CMD", "ENTRYPOINT"):
            raise InvalidChange(f"{instruction} needs an argument")
        if instruction == "CMD":
            out["Cmd"] = _exec_or_shell(value)
        elif instruction == "ENTRYPOINT":
            out["Entrypoint"] = _exec_or_shell(value)
        elif instruction == "ENV":
            env = [e for e in out.get("Env") or []]
            for key, val in _pairs(value, "ENV"):
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={val}"]
            out["Env"] = env
        elif instruction == "LABEL":
            labels = dict(out.get("Labels") or {})
            labels.update(_pairs(value, "LABEL"))
            out["Labels"] = labels
        elif instruction == "EXPOSE":
            ports = dict(out.get("ExposedPorts") or {})
            for port in value.split():
                number, _, proto = port.partition("/")
                if not number.isdigit() or not 0 < int(number) < 65536 or proto not in ("", "tcp", "udp", "sctp"):
                    raise InvalidChange(f"EXPOSE: invalid port {port!r}")
                ports[f"{number}/{proto or 'tcp'}"] = {}
            out["ExposedPorts"] = ports
        elif instruction == "USER":
            out["User"] = value.strip()
        elif instruction == "WORKDIR":
            path = value.strip()
            if not path.startswith("/"):
                path = (out.get("WorkingDir") or "/").rstrip("/") + "/" + path
            out["WorkingDir"] = path
        elif instruction == "VOLUME":
            volumes = dict(out.get("Volumes") or {})
            for path in (_exec_or_shell(value) if value.strip().startswith("[") else value.split()):
                if path in ("/bin/sh", "-c"):
                    continue
                volumes[path] = {}
            out["Volumes"] = volumes
    return out
