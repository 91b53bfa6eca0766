"""Docker's time values (``until=24h``, RFC 3339, Unix timestamps) read as the daemon reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from imagestore.dockertime import docker_time, parse_go_duration

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("text, seconds", [
    ("24h", 86400), ("10m", 600), ("1h30m", 5400), ("1.5h", 5400), ("300ms", 0.3), ("0", 0), ("-2m", -120),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["7d", "h", "10", "1h 2m", "", ".s"])
def test_what_go_does_not_call_a_duration(text: str) -> None:
    assert parse_go_duration(text) is None


@pytest.mark.parametrize("text, moment", [
    ("24h", NOW - timedelta(days=1)),
    ("0s", NOW),
    ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
    ("2024-01-02T15:04:05Z", datetime(2024, 1, 2, 15, 4, 5, tzinfo=UTC)),
    ("2024-01-02T15:04:05.5+02:00", datetime(2024, 1, 2, 15, 4, 5, 500000, tzinfo=timezone(timedelta(hours=2)))),
    ("2024-01-02T15", datetime(2024, 1, 2, 15, tzinfo=UTC)),
    ("1700000000", datetime.fromtimestamp(1700000000, UTC)),
    ("1700000000.250000000", datetime.fromtimestamp(1700000000.25, UTC)),
    ("0", datetime.fromtimestamp(0, UTC)),
])
def test_docker_time_forms(text: str, moment: datetime) -> None:
    assert docker_time(text, NOW) == moment


@pytest.mark.parametrize("text, message", [
    ("7d", 'failed to parse value as time or duration: "7d"'),
    ("yesterday", 'failed to parse value as time or duration: "yesterday"'),
    ("2024-13-01", 'parsing time "2024-13-01"'),
    ("2024-01-02T25:00", 'parsing time "2024-01-02T25:00"'),
    ("9" * 80, "failed to parse value as time or duration"),
])
def test_bad_time_values_say_what_docker_says(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        docker_time(text, NOW)
    assert message in str(caught.value)
