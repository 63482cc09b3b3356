"""One seeded database, one ``computenet serve`` and one Chromium for all browser tests."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.beds.dashboard import CHROMIUM, Seeded, launch_chromium, seed, serve

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("COMPUTENET_TEST_ARTIFACTS", ROOT / "out" / "browser"))
"""Where the browser tests leave their screenshots (git-ignored)."""
POLL_MS = 300  # the page's live-update interval in the tests (2 s by default)


@dataclass
class Dashboard:
    url: str
    seeded: Seeded
    browser: Any
    artifacts: Path

    def page(self, token: str | None = None) -> Any:
        """A fresh browser context (its own sign-in), signed in with ``token`` if given."""
        from tests.beds.dashboard import sign_in

        context = self.browser.new_context(viewport={"width": 1400, "height": 950})
        context.add_init_script(f"window.CN_POLL_MS = {POLL_MS};")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        if token is not None:
            sign_in(page, self.url, token)
        return page


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed (pip install -e .[dev])")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("dashboard")
    seeded = seed(f"sqlite:///{home / 'cn.db'}", {"acme": 24, "globex": 16})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serve(seeded.db_url, home) as url, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            yield Dashboard(url, seeded, browser, ARTIFACTS)
        finally:
            browser.close()
