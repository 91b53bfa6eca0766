import pytest

from tests.integration.conftest import redis_broker, start_dashboard, start_worker  # noqa: F401 - shared fixtures


@pytest.fixture(autouse=True)
def _django_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    """Playwright's sync API keeps an event loop on the test's thread; the test's own
    database calls are still synchronous, which Django must be told."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
