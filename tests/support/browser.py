"""A real headless Chromium for the web UI's tests: Debian's ``chromium`` driven by
Playwright through ``executable_path`` (Playwright never downloads a browser here).

``.ci/install-chromium`` installs the browser and ``.ci/test`` sets
``ADAPTERS_REQUIRE_BROWSER=1``, so that a missing browser fails there; elsewhere the
browser tests skip when it is absent. With ``ADAPTERS_UI_SCREENSHOTS=1`` the tests also
write the screenshots embedded in docs/ui.md (``docs/ui/*.png``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_BROWSER_ENV = "ADAPTERS_REQUIRE_BROWSER"
SCREENSHOTS_ENV = "ADAPTERS_UI_SCREENSHOTS"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT_DIR = ROOT / "docs" / "ui"
# Wide enough for the tables, narrow enough that a PNG of a page stays small.
SCREENSHOT_WIDTH = 1000
# The top of a long page (the version page runs to several screens) is what a reader of
# the docs needs to see; the rest would only make the PNG large.
MAX_HEIGHT = 1300

# Flags that start chromium as root on a closed network without it reaching out:
# no sandbox (root), no GPU, no QUIC, no first-run, sync, component or background
# traffic, and no proxy between it and the test server on 127.0.0.1. Playwright adds
# --headless and a fresh profile directory in the temp directory of its own (it refuses
# --user-data-dir in launch()), removed when the browser closes.
LAUNCH_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]'"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which("chromium")):
        return f"no chromium at {CHROMIUM}: run bash .ci/install-chromium"
    return None


@contextmanager
def launch_browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=executable, headless=True, args=list(LAUNCH_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageErrors:
    """Uncaught script errors and console errors a page reported while a test ran."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )


def screenshots_wanted() -> bool:
    return os.environ.get(SCREENSHOTS_ENV) == "1"


def screenshot(page: Page, name: str) -> None:
    """Write docs/ui/<name>.png of the whole page when ``ADAPTERS_UI_SCREENSHOTS=1``."""
    if not screenshots_wanted():
        return
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else SCREENSHOT_WIDTH
    if width != SCREENSHOT_WIDTH:
        page.set_viewport_size({"width": SCREENSHOT_WIDTH, "height": 800})
    height = min(int(page.evaluate("() => document.documentElement.scrollHeight")), MAX_HEIGHT)
    page.screenshot(
        path=str(SCREENSHOT_DIR / f"{name}.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": SCREENSHOT_WIDTH, "height": height},
    )


def screenshot_at(page: Page, name: str, width: int) -> None:
    """Write docs/ui/<name>.png of the top of the page at ``width`` px (a phone's)."""
    if not screenshots_wanted():
        return
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": 800})
    height = min(int(page.evaluate("() => document.documentElement.scrollHeight")), MAX_HEIGHT)
    page.screenshot(
        path=str(SCREENSHOT_DIR / f"{name}.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": width, "height": height},
    )


def has_horizontal_overflow(page: Page) -> bool:
    """Whether the document is wider than the viewport (a sideways scroll bar)."""
    return bool(
        page.evaluate(
            "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
    )
