"""The web UI in a real headless Chromium (Debian's, driven by Playwright) against a real
``adapters server`` process; see tests/support/browser.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from support.server import ServedRegistry, served_registry

if TYPE_CHECKING:
    from playwright.sync_api import Page


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedRegistry]:
    root = tmp_path_factory.mktemp("ui")
    with served_registry(root / "home", f"sqlite:///{root / 'catalog.db'}") as running:
        yield running


def test_the_browser_reaches_the_server(site: ServedRegistry, page: Page) -> None:
    response = page.goto(f"{site.url}/healthz")
    assert response is not None and response.status == 200
    assert "ok" in page.content().lower()
