"""Docker's time values in filters and query parameters (``until=24h``, ``since=2024-01-02``,
``until=1733230000.5``), read as the daemon reads them: moby api/types/time/timestamp.go
(``GetTimestamp`` then ``ParseTimestamps``) and Go's ``time.ParseDuration``.

Plain Python: the errors are ValueError with Docker's own wording, which callers turn into
their interface's 400.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

# Go's time.ParseDuration units (https://pkg.go.dev/time#ParseDuration), in seconds.
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_RFC3339ISH = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
    r"(Z|z|[+-]\d{2}:\d{2})?$"
)
MAX_TIME_VALUE = 64  # longer than any timestamp Docker writes


class TimeValueError(ValueError):
    """A value Docker cannot read as a time: ``value`` as given, ``reason`` when it looked like
    a date (None: neither a time nor a duration). ``str()`` is Docker's English message."""

    def __init__(self, value: str, reason: str | None = None) -> None:
        self.value, self.reason = value, reason
        super().__init__(f'parsing time "{value}": {reason}' if reason is not None
                         else f'failed to parse value as time or duration: "{value}"')


def parse_go_duration(value: str) -> float | None:
    """Seconds for a Go duration (``1h30m``, ``-1.5h``, ``300ms``, ``0``), None if it is not one."""
    text = value
    sign = 1.0
    if text[:1] in "+-" and text:
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        return None
    total, pos = 0.0, 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None or match.group(1) in ("", "."):
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def parse_unix(value: str) -> float:
    """``seconds[.fraction]`` (ParseTimestamps): ValueError otherwise."""
    secs, dot, frac = value.partition(".")
    if not re.fullmatch(r"-?[0-9]+", secs) or (dot and not re.fullmatch(r"[0-9]+", frac)):
        raise TimeValueError(value)
    return int(secs) + (int(frac) / 10 ** len(frac) if dot else 0.0)


def docker_time(value: str, now: datetime | None = None) -> datetime:
    """The moment ``value`` names: a duration before ``now`` (``10m``), an RFC 3339 date or
    time (``2024-01-02``, ``2024-01-02T15:04:05Z``, local time when no zone is given), or a
    Unix timestamp (``1733230000``, ``1733230000.123456789``)."""
    now = now or datetime.now(UTC)
    text = value.strip()
    if not text or len(text) > MAX_TIME_VALUE:
        raise TimeValueError(value[:MAX_TIME_VALUE])
    duration = parse_go_duration(text) if text != "0" else None
    if duration is not None:
        return now - timedelta(seconds=duration)
    match = _RFC3339ISH.match(text)
    if match is not None:
        year, month, day, hour, minute, second, frac, zone = match.groups()
        if zone is None:
            tz = now.tzinfo or UTC
        elif zone in ("Z", "z"):
            tz = UTC
        else:
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            offset = timedelta(hours=hours, minutes=minutes)
            tz = timezone(-offset if zone[0] == "-" else offset)
        try:
            moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                              int(second or 0), tzinfo=tz)
        except ValueError as exc:
            raise TimeValueError(text, str(exc)) from None
        return moment + timedelta(microseconds=int((frac or "0").ljust(9, "0")) / 1000)
    if "-" in text.lstrip("-"):
        raise TimeValueError(text, "cannot parse as RFC 3339")
    try:
        return datetime.fromtimestamp(parse_unix(text), UTC)
    except (OverflowError, OSError, ValueError):
        raise TimeValueError(text) from None
