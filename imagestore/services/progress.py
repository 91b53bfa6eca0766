"""The small interface services report progress through.

A service calls ``progress.update(item, done, total, phase)`` per item (a layer,
the input file) and ``progress.log(line)`` for lines a person reads. A job maps it
onto its row (throttled); a direct call can pass ``NULL_PROGRESS``.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def update(self, item: str, done: int, total: int | None, phase: str) -> None: ...

    def log(self, line: str) -> None: ...


class NullProgress:
    def update(self, item: str, done: int, total: int | None, phase: str) -> None:
        return None

    def log(self, line: str) -> None:
        return None


NULL_PROGRESS = NullProgress()


class RecordingProgress:
    """Keeps everything reported, for callers that answer synchronously."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, object]] = {}
        self.lines: list[str] = []

    def update(self, item: str, done: int, total: int | None, phase: str) -> None:
        self.items[item] = {"current": done, "total": total, "phase": phase}

    def log(self, line: str) -> None:
        self.lines.append(line)
